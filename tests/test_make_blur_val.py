"""benchmarks/make_blur_val.py: seeded validation sets from held-out training images, and their score table."""
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from pff.io import read_image
from pff.models import ModelCard, create, save

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "make_blur_val.py"
_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


@pytest.mark.skipif(not (_TRAIN / "bsds500").is_dir(), reason="needs ../shared/data/train")
def test_sets_are_seeded_and_scored(tmp_path, capsys):
    main = runpy.run_path(str(_SCRIPT), run_name="make_blur_val")["main"]
    torch.manual_seed(0)
    model = create("pff-tiny", kernel=5, constraint="normalized")  # untrained: the identity
    save(model, ModelCard(task="deblur", channels="rgb", model=model.config), tmp_path / "identity")
    args = ["--data", str(_TRAIN), "--val-count", "1"]
    assert main([str(tmp_path / "a"), *args, "--score", str(tmp_path / "identity")]) == 0
    assert main([str(tmp_path / "b"), *args]) == 0
    out = capsys.readouterr().out
    conditions = ("shake", "shake-noise", "varying", "varying-noise", "line-blend")
    for condition in conditions:
        (gt,) = sorted((tmp_path / "a" / condition).glob("*_GT.png"))
        blurry = read_image(gt.with_name(gt.name.replace("_GT", "_blurry")))
        again = read_image(tmp_path / "b" / condition / gt.name.replace("_GT", "_blurry"))
        np.testing.assert_array_equal(blurry, again)  # the same set on every run
        assert np.abs(blurry.astype(int) - read_image(gt).astype(int)).mean() > 1  # and degraded
        row = next(line for line in out.splitlines() if line.startswith(f"| {condition} |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[2] == f"{float(cells[1]):.2f} (+0.00)"  # the identity scores the input
    assert main([str(tmp_path / "c"), *args, "--score", "jpeg"]) == 2
    assert "restores 'jpeg', not 'deblur'" in capsys.readouterr().err
