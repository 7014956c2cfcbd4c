"""Nothing a user owns is lost, and every CLI error is one ``pff: error:`` line with a non-zero exit.

Each refusal checks the exit code, the single error line, and that every
file under the test folder is byte-for-byte what it was, with nothing created.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from pff.cli import main
from pff.models import ModelCard, create, save


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = create("pff-tiny", channels="rgb", constraint="none").eval()
    with torch.no_grad():
        model.predictor.out.weight.normal_(0, 0.05)
    folder = tmp_path_factory.mktemp("models") / "model"
    save(model, ModelCard(task="jpeg", channels="rgb", model=model.config), folder)
    return folder


def _png(path, seed=0, h=20, w=24):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)).save(path)


def _tree(root):
    """Every path under ``root`` with its bytes (None for a folder, the kind for a special file)."""
    tree = {}
    for p in sorted(root.rglob("*")):
        key = p.relative_to(root).as_posix()
        tree[key] = None if p.is_dir() else p.read_bytes() if p.is_file() else "special"
    return tree


def _refused(capsys, argv, message, root):
    """Run pff; it must exit 2 with one error line holding ``message`` and leave ``root`` as it was."""
    before = _tree(root)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert err.startswith("pff: error:") and "\n" not in err, err
    assert message in err, err
    assert _tree(root) == before
    return err


@pytest.fixture
def photos(tmp_path):
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png", seed=1)
    _png(tmp_path / "d1" / "photos" / "x.png", seed=2)
    _png(tmp_path / "d2" / "photos" / "x.png", seed=3)
    return tmp_path


def test_restore_refuses_to_lose_files(photos, model_dir, capsys):
    t, m = photos, str(model_dir)
    a = str(t / "a.png")
    cases = [
        ([a, "--flow", a], "refusing to overwrite the input"),
        ([a, "-o", str(t / "o.png"), "--flow", str(t / "o.png")], "would both be written to"),
        ([a, "-o", str(t / "b.png")], "already exists; pass --overwrite"),
        ([str(t / "d1/photos/x.png"), str(t / "d2/photos/x.png"), "-o", str(t / "out")], "would both be written to"),
        ([str(t / "d1/photos"), str(t / "d2/photos"), "-o", str(t / "out")], "out/photos/x.png"),
        ([str(t / "d1"), "-o", str(t / "d1")], "refusing to overwrite the input"),
        ([a, "-o", str(t / "d1")], "is a folder, not a file"),
        ([a, "-o", "/dev/null"], "output '/dev/null' is a character device, not a regular file"),
        (["/dev/null", "-o", str(t / "out")], "input '/dev/null' is a character device, not an image file or folder"),
        ([a, "-o", ""], "-o must name a file or folder"),
    ]
    for extra, message in cases:
        _refused(capsys, ["restore", *extra, "--model", m], message, t)


def test_restore_refuses_a_fifo_without_creating_the_output_folder(tmp_path, model_dir, capsys):
    os.mkfifo(tmp_path / "fifo")
    _refused(capsys, ["restore", str(tmp_path / "fifo"), "--model", str(model_dir), "-o", str(tmp_path / "out")], "is a FIFO", tmp_path)


def test_restore_refuses_animated_images(tmp_path, model_dir, capsys):
    frames = [Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    _refused(capsys, ["restore", str(tmp_path / "anim.gif"), "--model", str(model_dir), "-o", str(tmp_path / "o.gif")],
             "it is animated (3 frames)", tmp_path)  # fmt: skip


def test_restore_overwrite_replaces_only_when_asked(photos, model_dir, capsys):
    target = photos / "b.png"
    before = target.read_bytes()
    assert main(["restore", str(photos / "a.png"), "--model", str(model_dir), "-o", str(target), "--overwrite"]) == 0
    assert target.read_bytes() != before
    assert np.asarray(Image.open(target)).shape == (20, 24, 3)


def test_restore_large_image_prints_no_pillow_warning(tmp_path, model_dir, capsys, monkeypatch):
    _png(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 480 pixels: over Pillow's warning limit, under twice it
    assert main(["restore", str(tmp_path / "a.png"), "--model", str(model_dir), "-o", str(tmp_path / "o.png")]) == 0
    assert capsys.readouterr().err == ""


def test_non_utf8_file_name_with_a_strict_ascii_stdout(tmp_path, model_dir):
    name = os.fsdecode(b"caf\xff.png")
    try:
        _png(tmp_path / name)
    except (UnicodeEncodeError, OSError):
        pytest.skip("the file system does not take non-UTF-8 names")
    env = {**os.environ, "PYTHONIOENCODING": "ascii:strict"}
    done = subprocess.run(
        [sys.executable, "-m", "pff", "restore", name, "--model", str(model_dir)],
        cwd=tmp_path, env=env, capture_output=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"caf\\udcff.png -> caf\\udcff-restored.png\n"
    assert (tmp_path / os.fsdecode(b"caf\xff-restored.png")).is_file()


def test_explain_refuses_an_existing_output(tmp_path, capsys):
    _png(tmp_path / "a.png")
    (tmp_path / "report").write_bytes(b"mine")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "report.html").write_bytes(b"mine too")
    args = ["explain", str(tmp_path / "a.png"), "--task", "jpeg", "-o"]
    _refused(capsys, [*args, str(tmp_path / "report")], "exists and is not a folder", tmp_path)
    _refused(capsys, [*args, str(tmp_path / "full")], "already holds files; pass --overwrite", tmp_path)
    _refused(capsys, [*args, str(tmp_path / "report" / "sub")], "is not a folder", tmp_path)


@pytest.mark.parametrize("command", [["restore", "X"], ["restore", "X", "--task", "jpeg"], ["eval", "--task", "jpeg", "--quality", "10", "--data", "D"], ["explain", "X", "--task", "jpeg", "-o", "OUT"], ["export", "m.onnx", "--format", "onnx"]])
def test_empty_model_name_is_one_line_error(tmp_path, capsys, command):
    _png(tmp_path / "a.png")
    (tmp_path / "data").mkdir()
    _png(tmp_path / "data" / "c.png")
    replace = {"X": str(tmp_path / "a.png"), "D": str(tmp_path / "data"), "OUT": str(tmp_path / "out"), "m.onnx": str(tmp_path / "m.onnx")}
    argv = [replace.get(a, a) for a in command] + ["--model", ""]
    _refused(capsys, argv, "no model name or folder given", tmp_path)


def _hostile(card: dict, case: str) -> str:
    model = card["model"]
    if case == "deep":
        return '{"format": "pff-model/1", "training": ' + "[" * 200_000 + "]" * 200_000 + "}"
    if case == "large":
        return " " * 1_000_001 + json.dumps(card)
    if case == "not-json":
        return "{"
    if case == "inf":
        return json.dumps(card).replace('"prior_spread": 1.0', '"prior_spread": Infinity')
    stages = len(model["widths"])
    changes = {
        "wide": {"widths": [100_000] * stages},
        "wrong-type": {"kernel": "17"},
        "negative": {"depths": [-1] * stages},
        "stages": {k: [1] * 100 for k in ("widths", "depths", "strides", "dilations")},
        "kernel": {"kernel": 100_001},
        "weights": {k: [v] * 8 for k, v in (("widths", 4096), ("depths", 64), ("strides", 1), ("dilations", 1))},
    }[case]
    return json.dumps({**card, "model": {**model, **changes}})


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("deep", "nested too deeply"),
        ("large", "too large for a model card"),
        ("not-json", "not valid JSON"),
        ("inf", "model.prior_spread: must be a finite number > 0, got inf"),
        ("wide", "model.widths: entries must be in [1, 4096], got 100000"),
        ("wrong-type", "model.kernel: must be an integer, got str '17'"),
        ("negative", "model.depths: entries must be in [1, 64], got -1"),
        ("stages", "model.widths: must have 1 to 8 entries (stages), got 100"),
        ("kernel", "model.kernel: value must be in [1, 63], got 100001"),
        ("weights", "model.widths: the network would hold about"),
    ],
)
def test_hostile_model_folder_is_refused_before_building(tmp_path, model_dir, capsys, monkeypatch, case, message):
    from pff.models import zoo

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    card = json.loads((model_dir / "config.json").read_text())
    (bad / "config.json").write_text(_hostile(card, case))
    _png(tmp_path / "a.png")

    def no_build(*args, **kwargs):
        raise AssertionError("a model was built from a config that should have been refused")

    monkeypatch.setattr(zoo, "build_model", no_build)
    err = _refused(capsys, ["restore", str(tmp_path / "a.png"), "--model", str(bad)], message, tmp_path)
    assert "config.json" in err and len(err) < 200 + 2 * len(str(bad))  # values are not echoed at length


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["restore", "x.png", "--task", "nope"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pff: error: argument --task: invalid choice") and "\n" not in err
