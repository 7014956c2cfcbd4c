"""Values a user cares about: shipped models beat their input, the README's Set5 row holds,
the Restorer's filters reproduce its output, and cards refuse requests they do not fit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pff.cli import main
from pff.color import rgb_to_ycbcr
from pff.cli.demo import DEMOS, degrade, sample
from pff.degrade import modcrop, upsample
from pff.errors import PffError
from pff.models import TASK_MODELS, available, default_model, read_card
from pff.models.zoo import card_from_dict, card_to_dict
from pff.ops import filter_flow
from pff.restore import Restorer

_SET5 = Path(__file__).resolve().parents[2] / "shared" / "data" / "test" / "set5"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


@pytest.mark.parametrize("name", available())
def test_each_shipped_model_beats_its_input_on_the_demo_sample(name):
    card = read_card(name)
    clean = modcrop(sample(card.task), card.scale)  # 160 px: cropped to 159 for x3
    degraded = degrade(card.task, clean, card.scale)
    restored = Restorer.from_pretrained(name).restore(degraded)
    shown = upsample(degraded, card.scale) if card.task == "sr" else degraded
    assert _psnr(restored, clean) > _psnr(shown, clean) + 0.2


def test_the_task_tables_agree():
    from pff.degrade import TASKS

    assert set(TASK_MODELS) == set(TASKS) == {task for task, _ in DEMOS}
    assert read_card(default_model("sr")).scale == 4


@pytest.mark.skipif(not _SET5.is_dir(), reason="../shared/data is not here")
@pytest.mark.parametrize(("model", "scale", "psnr"), [("sr-x4", 4, 31.31), ("sr-x2", 2, 37.24), ("sr-x3", 3, 33.46)])
def test_readme_set5_rows_hold(tmp_path, model, scale, psnr):
    out = tmp_path / "r.json"
    args = ["eval", "--task", "sr", "--scale", str(scale), "--data", str(_SET5), "--model", model, "--json", str(out)]
    assert main(args) == 0
    assert abs(json.loads(out.read_text())["psnr"] - psnr) <= 0.02


@pytest.mark.skipif(not _SET5.is_dir(), reason="../shared/data is not here")
def test_readme_live1_colour_row_holds(tmp_path):
    out = tmp_path / "r.json"
    live1 = _SET5.parent / "live1"
    args = ["eval", "--task", "jpeg", "--protocol", "color", "--quality", "10", "--data", str(live1), "--json", str(out)]
    assert main(args) == 0  # the default model: jpeg
    result = json.loads(out.read_text())
    assert result["model"] == "jpeg" and abs(result["psnr"] - 27.02) <= 0.02


def test_filters_applied_with_the_op_reproduce_restore():
    # jpeg-y is a y model: compare in its space, float, where no rounding intervenes.
    restorer = Restorer.from_pretrained("jpeg-y", tile=64)
    image = degrade("jpeg", sample("jpeg"))
    result = restorer.restore_with_filters(image)
    x = torch.from_numpy(result.model_input).permute(2, 0, 1)[None]  # (1, 1, H, W)
    f = torch.from_numpy(np.ascontiguousarray(result.filters))[None]  # (1, K*K, H, W)
    again = filter_flow(x, f, dilation=restorer.card.model.dilation).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(again, result.model_output, atol=1e-5)  # float32 sums of ~121 taps
    np.testing.assert_array_equal(result.restored, restorer.restore(image))
    k = restorer.card.model.kernel
    np.testing.assert_array_equal(restorer.filters(image), result.filters.reshape(k, k, *result.filters.shape[1:]).transpose(2, 3, 0, 1))


def test_the_colour_models_filters_reproduce_its_luma():
    # jpeg filters in YCbCr: the filters it shows are its luma filters, applied to the input's luma.
    restorer = Restorer.from_pretrained("jpeg", tile=64)
    assert restorer.card.channels == "rgb" and restorer.card.model.color == "ycbcr"
    result = restorer.restore_with_filters(degrade("jpeg", sample("jpeg")))
    luma_in = rgb_to_ycbcr(result.model_input)[..., :1]  # (H, W, 1) in [0, 1]
    x = torch.from_numpy(luma_in).permute(2, 0, 1)[None]  # (1, 1, H, W)
    f = torch.from_numpy(np.ascontiguousarray(result.filters))[None]  # (1, K*K, H, W)
    again = filter_flow(x, f)[0, 0].numpy()
    # model_output is clamped to [0, 1] in RGB: compare where no channel was clamped.
    inside = ((result.model_output > 0) & (result.model_output < 1)).all(axis=2)
    luma_out = rgb_to_ycbcr(result.model_output)[..., 0]
    assert inside.mean() > 0.95
    np.testing.assert_allclose(again[inside], luma_out[inside], atol=2e-5)


def test_the_colour_model_restores_chroma_the_luma_model_leaves():
    # On the demo's colour JPEG (q20, 4:2:0) the colour model beats the luma-only one in RGB.
    clean = sample("jpeg")
    degraded = degrade("jpeg", clean)
    colour = _psnr(Restorer.from_pretrained("jpeg").restore(degraded), clean)
    luma_only = _psnr(Restorer.from_pretrained("jpeg-y").restore(degraded), clean)
    assert colour > luma_only + 0.1, (colour, luma_only)


def test_old_cards_without_degrade_get_the_task_default_and_bad_keys_fail():
    data = card_to_dict(read_card("sr-x4"))
    del data["degrade"]
    assert card_from_dict(data).scale == 4
    data["degrade"] = {"scael": 2}
    with pytest.raises(PffError, match="scael"):
        card_from_dict(data)


def test_requests_a_card_does_not_fit_are_one_line_errors(capsys, tmp_path):
    with pytest.raises(PffError, match=r"^no shipped sr model for scale 5 \(available: 2, 3, 4\)$"):
        default_model("sr", scale=5)
    from pff.io import write_image

    write_image(tmp_path / "x.png", sample("sr"))
    assert main(["eval", "--task", "sr", "--scale", "2", "--data", str(tmp_path), "--model", "sr-x4"]) != 0
    assert "pff: error: model 'sr-x4' is trained for sr scale 4, not 2" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "x.png"), "--task", "sr", "--scale", "5", "-o", str(tmp_path / "b.png")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pff: error: no shipped sr model for scale 5 (available: 2, 3, 4)"]
    assert not (tmp_path / "b.png").exists()
    with pytest.raises(PffError, match="restores 'jpeg', not 'sr'"):
        Restorer.from_pretrained("jpeg", task="sr")
