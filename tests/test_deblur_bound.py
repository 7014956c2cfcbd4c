"""benchmarks/deblur_bound.py: least-squares filter fits on pairs whose answer is known."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import correlate

from pff.io import write_image

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "deblur_bound.py"
_BOUND = runpy.run_path(str(_SCRIPT), run_name="deblur_bound")


def _pair(kernel: int, seed: int = 0, size: tuple[int, int] = (30, 34)):
    """(blurry, sharp, g): sharp is exactly the correlation of the blurry image with the K x K filter g."""
    rng = np.random.default_rng(seed)
    blurry = 40 + rng.random((*size, 3)) * 175  # the sharp image stays within [0, 255]: no clipping
    g = rng.normal(0.0, 0.03, (kernel, kernel))
    g[kernel // 2, kernel // 2] += 1.0
    sharp = np.stack([correlate(blurry[:, :, c], g, mode="nearest") for c in range(3)], axis=2)
    return blurry, sharp, g


def test_the_best_filter_is_found_and_a_basis_spanning_it_finds_it_too():
    kernel, border = 5, 4
    blurry, sharp, g = _pair(kernel)
    gram, rhs, yy, rows, input_sse = _BOUND["normal_equations"](blurry, sharp, kernel, border)
    assert rows == 3 * (30 - 2 * border) * (34 - 2 * border)
    inner = (slice(border, -border), slice(border, -border))
    assert input_sse == pytest.approx(np.sum((blurry[inner] - sharp[inner]) ** 2))
    start = np.zeros(kernel * kernel)
    start[kernel * kernel // 2] = 1.0
    assert _BOUND["fitted_sse"](gram, rhs, yy, None, start) < 1e-6 * input_sse  # exact up to rounding
    f = np.linalg.solve(gram, rhs)
    np.testing.assert_allclose(f.reshape(kernel, kernel), g, atol=1e-8)
    spanning = (g.reshape(-1) - start)[None]  # a one-filter basis holding the answer
    assert _BOUND["fitted_sse"](gram, rhs, yy, spanning, start) < 1e-6 * input_sse
    other = np.zeros((1, kernel * kernel))
    other[0, 0] = 1.0  # a basis that cannot express it: a real error remains, below the input's
    sse = _BOUND["fitted_sse"](gram, rhs, yy, other, start)
    assert 1e-3 * input_sse < sse < input_sse


def test_table_and_errors(tmp_path, capsys, monkeypatch):
    blurry, sharp, _ = _pair(17, seed=1, size=(60, 64))
    folder = tmp_path / "set"
    write_image(folder / "a_GT.png", np.clip(np.rint(sharp), 0, 255).astype(np.uint8))
    write_image(folder / "a_blurry.png", np.clip(np.rint(blurry), 0, 255).astype(np.uint8))
    write_image(tmp_path / "other" / "x.png", np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setattr(sys, "argv", ["deblur_bound.py", str(folder)])
    assert _BOUND["main"]() == 0
    lines = capsys.readouterr().out.splitlines()
    row = [cell.strip() for cell in lines[2].split("|")]
    assert row[1:3] == ["set", "a"]
    full, spanned = float(row[4]), float(row[5])
    assert full > 10 and 0 <= spanned <= full  # the exact filter is found; a 16-filter basis cannot beat it
    for argv, message in (([str(folder), "--border", "3"], "--border must be at least 8"),
                          ([str(folder), "--model", "jpeg"], "does not filter with one learned basis"),
                          ([str(folder), "--border", "30"], "'a' is 64x60: nothing left inside"),
                          ([str(tmp_path / "other")], "no NAME_GT / NAME_blurry image pairs")):  # fmt: skip
        monkeypatch.setattr(sys, "argv", ["deblur_bound.py", *argv])
        assert _BOUND["main"]() == 2
        assert message in capsys.readouterr().err
