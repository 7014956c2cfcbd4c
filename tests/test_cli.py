from __future__ import annotations

import subprocess
import sys

import pff
from pff.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"pff {pff.__version__}"


def test_help_lists_usage(capsys):
    assert main([]) == 0
    assert "usage: pff" in capsys.readouterr().out


def test_console_script_runs_as_module():
    done = subprocess.run([sys.executable, "-m", "pff", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "Predictive Filter Flow" in done.stdout


# --- pff restore / pff demo ---------------------------------------------------------

import os  # noqa: E402
import struct  # noqa: E402
import zlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from pff.models import ModelCard, create, save  # noqa: E402


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    model = create("pff-tiny", channels="rgb", constraint="none").eval()
    with torch.no_grad():
        model.predictor.out.weight.normal_(0, 0.05)
    save(model, ModelCard(task="jpeg", channels="rgb", model=model.config), tmp_path / "model")
    return tmp_path / "model"


def _png(path, h=20, w=24, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)).save(path)


def _huge_png(path):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


def test_restore_one_file_with_flow(tmp_path, model_dir, capsys):
    _png(tmp_path / "a.png")
    code = main(["restore", str(tmp_path / "a.png"), "--model", str(model_dir), "-o", str(tmp_path / "b.png"), "--flow", str(tmp_path / "f.png"), "--tile", "8"])
    assert code == 0
    assert Image.open(tmp_path / "b.png").size == (24, 20)
    assert Image.open(tmp_path / "f.png").mode == "RGB"


def test_restore_folder_mirrors_names_and_lists_failures(tmp_path, model_dir, capsys):
    _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "sub" / "b.png", seed=1)
    (tmp_path / "in" / "bad.png").write_bytes(b"not an image")
    code = main(["restore", str(tmp_path / "in"), "--model", str(model_dir), "-o", str(tmp_path / "out")])
    assert code == 2
    assert (tmp_path / "out" / "a.png").is_file() and (tmp_path / "out" / "sub" / "b.png").is_file()
    assert not (tmp_path / "out" / "bad.png").exists()
    err = capsys.readouterr().err
    assert "bad.png" in err and "1 of 3 images failed" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.write_bytes(b"hello" * 20), "not an image"),
        (lambda p: (_png(p, 64, 64), p.write_bytes(p.read_bytes()[:200])), "truncated"),
        (lambda p: p.write_bytes(b""), "empty"),
        (_huge_png, "too many pixels"),
    ],
)
def test_restore_bad_input_is_one_line_error(tmp_path, model_dir, capsys, make, problem):
    make(tmp_path / "x.png")
    assert main(["restore", str(tmp_path / "x.png"), "--model", str(model_dir), "-o", str(tmp_path / "y.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pff: error:") and problem in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "x.png"]


def test_restore_option_errors(tmp_path, model_dir, capsys):
    _png(tmp_path / "a.png")
    a = str(tmp_path / "a.png")
    cases = [
        (["--model", "no-such-model"], "no model 'no-such-model'"),
        (["--model", str(model_dir), "--task", "sr"], "restores 'jpeg', not 'sr'"),
        (["--model", str(model_dir), "-o", a], "overwrite the input"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--model", str(model_dir), "--device", "cuda"], "not available"))
    for extra, message in cases:
        assert main(["restore", a, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("pff: error:") and message in err and "\n" not in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user for permissions")
def test_restore_unwritable_output_folder(tmp_path, model_dir, capsys):
    _png(tmp_path / "in" / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["restore", str(tmp_path / "in"), "--model", str(model_dir), "-o", str(locked / "out")]) == 2
        assert "pff: error: cannot create the output folder" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_restore_unwritable_output_is_one_line_error(tmp_path, model_dir, capsys):
    _png(tmp_path / "a.png")
    (tmp_path / "file").write_text("x")  # a file where a folder should be: unwritable even for root
    assert main(["restore", str(tmp_path / "a.png"), "--model", str(model_dir), "-o", str(tmp_path / "file" / "b.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pff: error:") and "\n" not in err


def test_demo_fails_clearly_without_shipped_models(tmp_path, capsys, monkeypatch):
    from pff.models import zoo

    monkeypatch.setattr(zoo, "_WEIGHTS", tmp_path / "no-weights")
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pff: error: pff demo needs a shipped deblur model") and "\n" not in err


def test_demo_runs_with_shipped_models(tmp_path, capsys):
    # The weights ship in the package: their absence is a packaging bug, not a reason to skip.
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "gain" in printed
    for task in ("deblur", "jpeg", "sr"):
        assert (tmp_path / "demo" / f"{task}.png").is_file()
