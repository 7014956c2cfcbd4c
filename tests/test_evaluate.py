from __future__ import annotations

import json
import math
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image

import pff
from pff.cli import main
from pff.color import rgb_to_y
from pff.degrade.jpeg import jpeg_roundtrip
from pff.degrade.resize import sr_pair
from pff.errors import PffError
from pff.evaluate import (
    EvalResult,
    ImageRecord,
    build_benchmark,
    deblur_pairs,
    evaluate,
    format_table,
    model_restorer,
    scorer,
)
from pff.metrics import score_paper_deblur, score_standard


def _image(h, w, seed, channels=3):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(x / 5.0 + seed) * np.cos(y / 7.0)
    shape = (h, w, channels) if channels > 1 else (h, w)
    noise = rng.normal(0, 10, size=shape)
    base = base[..., None] if channels > 1 else base
    return np.clip(np.round(base + noise), 0, 255).astype(np.uint8)


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def clean_folder(tmp_path):
    folder = tmp_path / "clean"
    _save(folder / "b.png", _image(45, 50, 1))
    _save(folder / "a.png", _image(41, 38, 2, channels=1))  # gray, sides not multiples of 4
    return folder


@pytest.fixture
def blur_folder(tmp_path):
    folder = tmp_path / "blur"
    for i, name in enumerate(["x", "y"]):
        gt = _image(60, 64, 10 + i)
        _save(folder / f"{name}_GT.png", gt)
        _save(folder / f"{name}_blurry.png", np.clip(gt.astype(int) + 9, 0, 255).astype(np.uint8))
    return folder


# --- building benchmarks ----------------------------------------------------------


def test_deblur_pairs_sorted_and_checked(blur_folder):
    pairs = deblur_pairs(blur_folder)
    assert [name for name, _, _ in pairs] == ["x", "y"]
    assert pairs[0][1].name == "x_GT.png" and pairs[0][2].name == "x_blurry.png"
    (blur_folder / "z_GT.png").write_bytes((blur_folder / "x_GT.png").read_bytes())
    with pytest.raises(PffError, match="without a GT/blurry partner.*z_GT.png"):
        deblur_pairs(blur_folder)


def test_deblur_folder_without_pairs_lists_files(clean_folder):
    with pytest.raises(PffError, match="no NAME_GT / NAME_blurry image pairs.*a.png, b.png"):
        deblur_pairs(clean_folder)


def test_deblur_pair_of_different_sizes(tmp_path):
    _save(tmp_path / "p_GT.png", _image(30, 30, 0))
    _save(tmp_path / "p_blurry.png", _image(30, 31, 0))
    (item,) = build_benchmark("deblur", tmp_path).items
    with pytest.raises(PffError, match="'p'.*30x30.*31x30"):
        item.load()


def test_jpeg_benchmark_follows_protocol(clean_folder):
    bench = build_benchmark("jpeg", clean_folder, quality=20)
    assert [item.name for item in bench.items] == ["a", "b"]
    degraded, target = bench.items[1].load()
    expected_y = rgb_to_y(_image(45, 50, 1))
    np.testing.assert_array_equal(target, expected_y)
    np.testing.assert_array_equal(degraded, jpeg_roundtrip(expected_y, 20))


def test_color_jpeg_benchmark_and_score(clean_folder):
    from pff.metrics import psnr, score_rgb, ssim

    bench = build_benchmark("jpeg", clean_folder, quality=30, protocol="color")
    degraded, target = bench.items[1].load()
    np.testing.assert_array_equal(target, _image(45, 50, 1))
    np.testing.assert_array_equal(degraded, jpeg_roundtrip(target, 30))  # RGB, 4:2:0
    score = score_rgb(degraded, target)
    assert score.psnr == pytest.approx(psnr(degraded, target))  # one MSE over R, G, B
    assert score.ssim == pytest.approx(np.mean([ssim(degraded[..., c], target[..., c]) for c in range(3)]))
    assert score_rgb(target, target).ssim == pytest.approx(1.0)
    with pytest.raises(PffError, match="color protocol is for --task jpeg"):
        build_benchmark("sr", clean_folder, protocol="color")
    with pytest.raises(PffError, match="RGB"):
        score_rgb(target[..., 0], target[..., 0])


def test_sr_benchmark_modcrops_and_treats_gray_as_rgb(clean_folder):
    bench = build_benchmark("sr", clean_folder)
    assert bench.scale == 4
    degraded, target = bench.items[0].load()  # a.png: gray 38x41
    assert target.shape == (40, 36, 3)
    gray = _image(41, 38, 2, channels=1)[:40, :36]
    for c in range(3):
        np.testing.assert_array_equal(target[..., c], gray)
    np.testing.assert_array_equal(degraded, sr_pair(target, scale=4)[0])  # the LR image; the baseline upsamples it
    np.testing.assert_array_equal(bench.baseline(degraded), sr_pair(target, scale=4)[1])


@pytest.mark.parametrize(
    ("task", "kwargs", "message"),
    [
        ("jpeg", {}, "needs a quality"),
        ("jpeg", {"quality": 0}, "quality"),
        ("jpeg", {"quality": 101}, "quality"),
        ("sr", {"scale": 1}, "scale must be an integer >= 2"),
        ("denoise", {}, "unknown task"),
    ],
)
def test_build_benchmark_errors(clean_folder, task, kwargs, message):
    with pytest.raises(PffError, match=message):
        build_benchmark(task, clean_folder, **kwargs)


def test_scorers():
    assert scorer("deblur", "paper") is score_paper_deblur
    assert scorer("deblur", "standard") is score_standard
    # The literature's jpeg/sr protocol is the standard one; "paper" is the same.
    assert scorer("jpeg", "paper") is scorer("jpeg", "standard") is score_standard
    assert scorer("sr", "paper", scale=3).keywords == {"crop": 3}
    with pytest.raises(PffError, match="unknown protocol"):
        scorer("jpeg", "matlab")


# --- evaluating -------------------------------------------------------------------


def test_evaluate_none_scores_the_degraded_input(clean_folder):
    bench = build_benchmark("sr", clean_folder, scale=4)
    result = evaluate(bench, protocol="standard", progress=False)
    assert result.n == 2
    for item, record in zip(bench.items, result.records):
        degraded, target = item.load()
        expected = score_standard(bench.baseline(degraded), target, crop=4)
        assert (record.name, record.psnr, record.ssim) == (item.name, expected.psnr, expected.ssim)
    assert result.psnr == pytest.approx(np.mean([r.psnr for r in result.records]))


def test_evaluate_with_a_restorer(blur_folder):
    bench = build_benchmark("deblur", blur_folder)

    def unblur(degraded):
        return degraded.astype(np.float64) - 9.0  # undoes the synthetic "blur" where +9 did not clip

    result = evaluate(bench, unblur, protocol="paper", model="minus9", progress=False)
    baseline = evaluate(bench, protocol="paper", progress=False)
    assert result.model == "minus9"
    assert result.psnr > baseline.psnr + 10
    assert result.ssim > baseline.ssim


def test_a_restorer_of_the_wrong_size_is_reported_by_name(blur_folder):
    bench = build_benchmark("deblur", blur_folder)
    with pytest.raises(PffError, match="cannot score 'x'.*same shape"):
        evaluate(bench, lambda d: d[:-1], protocol="standard", progress=False)


def test_result_dict_schema_and_infinite_psnr():
    records = (ImageRecord("a", math.inf, 1.0), ImageRecord("b", 30.0, 0.9))
    result = EvalResult("jpeg", "data/live1", "none", "standard", records, quality=10)
    out = result.to_dict()
    assert list(out) == ["task", "data", "model", "protocol", "quality", "psnr", "ssim", "n", "images"]
    assert out["psnr"] is None  # the mean is infinite; JSON has no Infinity
    assert out["ssim"] == pytest.approx(0.95)
    assert out["n"] == 2
    assert out["images"] == [{"name": "a", "psnr": None, "ssim": 1.0}, {"name": "b", "psnr": 30.0, "ssim": 0.9}]
    json.dumps(out, allow_nan=False)


def test_format_table_aligns_columns():
    records = (ImageRecord("a", 30.123, 0.91234), ImageRecord("a_long_name", 9.5, 0.5))
    table = format_table(EvalResult("sr", "set5", "none", "paper", records, scale=4)).splitlines()
    assert table[0] == "sr x4 on set5 | model none | protocol paper"
    rows = [table[1], table[2], table[3], table[5]]
    assert len({len(row) for row in rows}) == 1
    assert table[2].split() == ["a", "30.12", "0.9123"]
    assert table[5].split() == ["mean", "(2)", "19.81", "0.7062"]


# --- restorers from models ------------------------------------------------------------


@dataclass
class _Config:
    task: str
    channels: str


class _PlusOne(torch.nn.Module):
    """Adds 1/255 to every pixel; returns (restored, filters) like a PFF model."""

    def forward(self, x):
        return x + 1.0 / 255.0, None


def _stub_restorer(task, channels):
    from pff.models import ModelCard, arch_config
    from pff.restore import Restorer

    card = ModelCard(task=task, channels=channels, model=arch_config("pff-tiny"))
    return Restorer(_PlusOne(), card, tile=0).restore_protocol


def test_model_restorer_y_model_on_rgb_task():
    from pff.degrade import upsample

    rgb = _image(16, 20, 3)
    out = _stub_restorer("deblur", "y")(rgb)
    assert out.shape == (16, 20)
    np.testing.assert_allclose(out, rgb_to_y(rgb) + 1.0, atol=1e-4)
    lr = _image(4, 5, 3)  # sr: the protocol's rounded bicubic upsampling, then the model
    np.testing.assert_allclose(_stub_restorer("sr", "y")(lr), rgb_to_y(upsample(lr, 4)) + 1.0, atol=1e-4)


def test_color_protocol_restores_the_colour_image(tmp_path):
    """Under --protocol color a y model's restorer returns RGB: the luma changed, the chroma kept."""
    from pff.color import rgb_to_ycbcr
    from pff.evaluate import model_restorer
    from pff.models import ModelCard, create, save

    model = create("pff-tiny", channels="y", kernel=3, constraint="none")  # starts as the identity
    save(model, ModelCard(task="jpeg", channels="y", model=model.config), tmp_path / "m")
    rgb = _image(16, 24, 5)
    out = model_restorer(str(tmp_path / "m"), "jpeg", protocol="color")(rgb)
    assert out.shape == (16, 24, 3)
    ycc_in, ycc_out = rgb_to_ycbcr(rgb / 255.0), rgb_to_ycbcr(out / 255.0)
    np.testing.assert_allclose(ycc_out, ycc_in, atol=2.5 / 255)  # the identity start, up to 8-bit rounding
    assert model_restorer(str(tmp_path / "m"), "jpeg")(rgb_to_y(rgb)).shape == (16, 24)


def test_model_restorer_rgb_model():
    rgb = _image(16, 20, 3)
    np.testing.assert_allclose(_stub_restorer("deblur", "rgb")(rgb), np.minimum(rgb + 1.0, 255.0), atol=1e-4)
    gray = _image(16, 20, 4, channels=1)  # the jpeg task's Y input
    np.testing.assert_allclose(_stub_restorer("jpeg", "rgb")(gray), np.minimum(gray + 1.0, 255.0), atol=1e-4)
    np.testing.assert_allclose(_stub_restorer("jpeg", "y")(gray), np.minimum(gray + 1.0, 255.0), atol=1e-4)


def test_model_restorer_errors():
    with pytest.raises(PffError, match="cannot load model 'nope'.*no model 'nope'"):
        model_restorer("nope", "sr")
    with pytest.raises(PffError, match="restores 'jpeg', not 'deblur'"):
        model_restorer("jpeg", "deblur")
    with pytest.raises(PffError, match="trained for sr scale 4, not 3"):
        model_restorer("sr-x4", "sr", scale=3)


# --- the command line: bad input ----------------------------------------------------------


def _one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pff: error:")
    for needle in needles:
        assert needle in lines[0]


def test_cli_missing_folder(tmp_path, capsys):
    rc = main(["eval", "--task", "sr", "--data", str(tmp_path / "missing")])
    _one_line_error(capsys, rc, "does not exist", "missing")


def test_cli_empty_folder(tmp_path, capsys):
    rc = main(["eval", "--task", "jpeg", "--quality", "10", "--data", str(tmp_path)])
    _one_line_error(capsys, rc, "no images found")


def test_cli_unreadable_image(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"\x00garbage" * 50)
    rc = main(["eval", "--task", "jpeg", "--quality", "10", "--data", str(tmp_path)])
    _one_line_error(capsys, rc, "x.png", "not an image")


def test_cli_deblur_folder_without_pairs(clean_folder, capsys):
    rc = main(["eval", "--task", "deblur", "--data", str(clean_folder)])
    _one_line_error(capsys, rc, "no NAME_GT / NAME_blurry image pairs", "a.png")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--task", "jpeg"], "needs a quality"),
        (["--task", "jpeg", "--quality", "high"], "--quality must be an integer"),
        (["--task", "jpeg", "--quality", "0"], "quality"),
        (["--task", "jpeg", "--quality", "101"], "quality"),
        (["--task", "sr", "--quality", "10"], "--quality applies only to --task jpeg"),
        (["--task", "jpeg", "--quality", "10", "--scale", "2"], "--scale applies only to --task sr"),
        (["--task", "sr", "--scale", "1"], "scale"),
    ],
)
def test_cli_bad_quality_or_scale(clean_folder, capsys, options, message):
    rc = main(["eval", "--data", str(clean_folder), *options])
    _one_line_error(capsys, rc, message)


@pytest.mark.parametrize("options", [["--task", "denoise"], ["--task", "sr", "--protocol", "matlab"]])
def test_cli_unknown_task_or_protocol(clean_folder, capsys, options):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--data", str(clean_folder), *options])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_json_written_only_when_complete(clean_folder, tmp_path, capsys):
    out = tmp_path / "res.json"
    (clean_folder / "c.png").write_bytes(b"broken")  # sorted last: fails after two good images
    rc = main(["eval", "--task", "sr", "--data", str(clean_folder), "--json", str(out)])
    _one_line_error(capsys, rc, "c.png")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cli_prints_table_and_writes_json(clean_folder, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = main(["eval", "--task", "jpeg", "--quality", "30", "--data", str(clean_folder), "--json", str(out)])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("jpeg q30 on ")
    assert [line.split()[0] for line in lines[2:4]] == ["a", "b"]
    assert lines[-1].startswith("mean (2)")
    data = json.loads(out.read_text())
    assert data["task"] == "jpeg" and data["model"] == "jpeg" and data["protocol"] == "paper"
    assert data["quality"] == 30 and data["n"] == 2
    assert [img["name"] for img in data["images"]] == ["a", "b"]
    assert data["psnr"] == pytest.approx(np.mean([img["psnr"] for img in data["images"]]))


# --- the published input baselines (../shared/PROTOCOL.md) ------------------------------

BASELINES = [
    # (test set, task options, PSNR, PSNR tolerance, SSIM)
    ("live1", ["--task", "jpeg", "--quality", "10"], 27.77, 0.02, 0.773),
    ("live1", ["--task", "jpeg", "--quality", "20"], 30.07, 0.02, 0.851),
    ("live1", ["--task", "jpeg", "--quality", "40"], 32.35, 0.02, 0.904),
    ("live1", ["--task", "jpeg", "--quality", "10", "--protocol", "color"], 25.69, 0.02, 0.7433),
    ("live1", ["--task", "jpeg", "--quality", "20", "--protocol", "color"], 28.06, 0.02, 0.8256),
    ("live1", ["--task", "jpeg", "--quality", "40", "--protocol", "color"], 30.28, 0.02, 0.8821),
    ("set5", ["--task", "sr", "--scale", "4"], 28.42, 0.02, 0.810),
    ("set5", ["--task", "sr", "--scale", "2"], 33.65, 0.02, 0.9295),
    ("set5", ["--task", "sr", "--scale", "3"], 30.39, 0.02, 0.8679),
    ("set14", ["--task", "sr", "--scale", "2"], 30.32, 0.02, 0.8692),
    ("set14", ["--task", "sr", "--scale", "3"], 27.63, 0.02, 0.7752),
    ("set14", ["--task", "sr", "--scale", "4"], 26.09, 0.1, 0.704),
    ("blur-moderate", ["--task", "deblur", "--protocol", "paper"], 22.97, 0.02, 0.672),
    ("blur-moderate", ["--task", "deblur", "--protocol", "standard"], 22.63, 0.02, 0.694),
    ("blur-severe", ["--task", "deblur", "--protocol", "paper"], 20.84, 0.02, 0.547),
    ("blur-severe", ["--task", "deblur", "--protocol", "standard"], 21.12, 0.02, 0.594),
]
# PROTOCOL.md gives SSIM to 3 decimals: allow the rounding plus 0.0005.
SSIM_TOL = 0.001


@pytest.mark.integration
@pytest.mark.parametrize(
    ("dataset", "options", "psnr", "psnr_tol", "ssim"),
    BASELINES,
    ids=[f"{b[0]}-{'-'.join(b[1][1::2])}" for b in BASELINES],
)
def test_input_baselines_reproduce_protocol(shared_data, tmp_path, capsys, dataset, options, psnr, psnr_tol, ssim):
    out = tmp_path / "res.json"
    rc = main(["eval", "--data", str(shared_data / "test" / dataset), "--model", "none", *options, "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    expected_n = {"live1": 29, "set5": 5, "set14": 14, "blur-moderate": 20, "blur-severe": 20}[dataset]
    assert result["n"] == expected_n
    assert result["psnr"] == pytest.approx(psnr, abs=psnr_tol)
    assert result["ssim"] == pytest.approx(ssim, abs=SSIM_TOL)
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"mean ({expected_n})")


def test_cli_choices_match_the_library():
    from pff.cli import eval as cli_eval
    from pff.evaluate import PROTOCOLS

    assert cli_eval._PROTOCOLS == PROTOCOLS
