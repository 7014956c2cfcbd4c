"""The report's pixel inspector in a real headless browser (Debian's chromium via Selenium).

Skipped when no browser is installed, unless CI is set (``.ci/run`` sets it
and installs chromium and chromium-driver): then missing tools fail the test.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from pff import ops
from pff.explain import Explanation, explain_image, load_explainable, render_report
from pff.explain.report import ImageSection
from pff.models import ModelCard, create, save

_IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing() -> list[str]:
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        missing.append("chromium (apt-get install chromium)")
    if not shutil.which("chromedriver"):
        missing.append("chromedriver (apt-get install chromium-driver)")
    return missing


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        reason = "no headless browser: missing " + ", ".join(missing)
        if _IN_CI:
            pytest.fail(reason + " (CI is set: .ci/run installs them)")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _open(driver, path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.body.dataset.ready") != "0")
    assert driver.execute_script("return document.body.dataset.ready") == "1"


def _point(driver, index: int, x: int, y: int, width: int, height: int) -> dict:
    """Moves the pointer over pixel (x, y) of image ``index``'s input; returns what the inspector shows."""
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("css selector", f'.inspector[data-index="{index}"] canvas.before')
    size = canvas.size  # CSS pixels; offsets are from the element's centre
    ox = (x + 0.5) / width * size["width"] - size["width"] / 2
    oy = (y + 0.5) / height * size["height"] - size["height"] / 2
    ActionChains(driver).move_to_element_with_offset(canvas, round(ox), round(oy)).perform()
    shown = driver.execute_script(f"return window.pffInspectors[{index}].last")
    shown["picture"] = driver.execute_script(
        f'return document.querySelector(\'.inspector[data-index="{index}"] canvas.filter\').toDataURL()'
    )
    shown["text"] = driver.find_element("css selector", f'.inspector[data-index="{index}"] .readout').text
    return shown


def test_pointing_at_two_pixels_shows_their_two_filters(browser, tmp_path):
    k, h, w = 5, 12, 16
    filters = np.zeros((k * k, h, w), dtype=np.float32)
    filters[k * k // 2 + 1, :, : w // 2] = 1.0  # left: read one pixel to the right
    filters[:, :, w // 2 :] = -0.02  # right: a free-form filter with negative taps
    filters[k * k // 2, :, w // 2 :] = 1.48
    before = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    after = ops.filter_flow(torch.from_numpy(before.transpose(2, 0, 1))[None], torch.from_numpy(filters)[None])
    after = after[0].clamp(0, 1).numpy().transpose(1, 2, 0)
    expl = Explanation("synthetic", before, np.ascontiguousarray(after), filters)
    report = tmp_path / "report.html"
    report.write_text(render_report([ImageSection(expl)]), encoding="utf-8")
    _open(browser, report)

    left = _point(browser, 0, 3, 5, w, h)
    right = _point(browser, 0, 12, 7, w, h)
    assert (left["x"], left["y"], right["x"], right["y"]) == (3, 5, 12, 7)
    assert left["picture"] != right["picture"]
    for shown in (left, right):
        x, y = shown["x"], shown["y"]
        np.testing.assert_allclose(shown["filter"], filters[:, y, x], atol=1.5 / 255 / 2)
        np.testing.assert_allclose(shown["flow"], [1.0 if x < w // 2 else 0.0, 0.0], atol=1e-6)
        assert shown["before"] == list(np.floor(before[y, x] * 255 + 0.5).astype(int))
        assert shown["after"] == list(np.floor(after[y, x] * 255 + 0.5).astype(int))
        assert f"x={x} y={y}" in shown["text"]
    assert "dx= 1.000" in left["text"] and "dx= 0.000" in right["text"]


def test_report_of_a_model_shows_the_models_filter(browser, tmp_path):
    torch.manual_seed(0)
    model = create("pff-tiny", channels="y", kernel=5)
    with torch.no_grad():
        for p in model.predictor.out.parameters():
            p.copy_(0.3 * torch.randn(p.shape))
    save(model, ModelCard(task="jpeg", channels="y", model=model.config), tmp_path / "m")
    restorer = load_explainable(tmp_path / "m", "jpeg")
    image = (np.random.default_rng(1).random((18, 22, 3)) * 255).astype(np.uint8)
    expl = explain_image(restorer, image, name="photo")
    report = tmp_path / "report.html"
    report.write_text(render_report([ImageSection(expl), ImageSection(expl)]), encoding="utf-8")
    _open(browser, report)

    shown = [_point(browser, 1, x, y, 22, 18) for x, y in ((2, 3), (17, 14))]
    assert shown[0]["picture"] != shown[1]["picture"]
    for s in shown:
        truth = expl.filters[:, s["y"], s["x"]]
        step = (truth.max() - truth.min()) / 255
        np.testing.assert_allclose(s["filter"], truth, atol=step / 2 + 1e-6)
        assert len(s["before"]) == 1  # a Y model: one value
