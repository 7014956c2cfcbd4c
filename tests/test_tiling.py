"""Tiling of models whose output is ``upscale`` times their input (LR-input SR), through the Restorer."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from pff.models import ModelCard, arch_config
from pff.restore import Restorer
from pff.tiling import Rows, tiled


class _UpscaleStub(nn.Module):
    """Stands in for an LR-input SR model: nearest x2, then a 5x5 conv; 3x3 softmax filters from another conv."""

    upscale = 2
    in_channels = 1

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        # The part the receptive-field probe measures (tiling.predictor_receptive_field).
        self.predictor = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(1, 1, 5, padding=2))
        self.head = nn.Conv2d(1, 9, 3, padding=1)
        self.config = SimpleNamespace(kind="lrsr", kernel=3, dilation=1)

    def forward(self, x: torch.Tensor, return_filters: bool = True):
        up = self.predictor(x)  # (B, 1, 2h, 2w)
        filters = torch.softmax(self.head(up), dim=1) if return_filters else None  # (B, 9, 2h, 2w)
        return torch.sigmoid(up), filters


def _card() -> ModelCard:
    return ModelCard(task="sr", channels="y", model=arch_config("pff-tiny"), degrade={"scale": 2})


def test_upscaled_output_tiled_equals_whole():
    model = _UpscaleStub().eval()
    image = np.random.default_rng(0).integers(0, 256, size=(53, 41), dtype=np.uint8)
    whole = Restorer(model, _card(), tile=0).restore_with_filters(image)
    for tile in (8, 16, 24):
        got = Restorer(model, _card(), tile=tile).restore_with_filters(image)
        assert got.restored.shape == (106, 82)
        assert got.filters.shape == (9, 106, 82)
        np.testing.assert_array_equal(got.restored, whole.restored)
        np.testing.assert_allclose(got.filters, whole.filters, atol=1e-6)
        np.testing.assert_allclose(got.model_output, whole.model_output, atol=1e-6)


def test_upscale_model_gets_no_bicubic_upsampling():
    restorer = Restorer(_UpscaleStub().eval(), _card())
    assert restorer.input_scale == 1 and restorer.output_size(10, 7) == (20, 14)
    assert restorer.filters(np.zeros((10, 7), np.uint8)).shape == (20, 14, 3, 3)


def test_tiled_with_a_halo_below_the_reach_is_not_exact():
    model = _UpscaleStub().eval()
    x = torch.rand(1, 1, 48, 48, generator=torch.Generator().manual_seed(3))

    def fn(t):
        with torch.no_grad():
            return list(model(t))

    whole = tiled(fn, x, tile=None, halo=8, align=8, upscale=2)
    exact = tiled(fn, x, tile=16, halo=8, align=8, upscale=2)
    cut = tiled(fn, x, tile=16, halo=0, align=8, upscale=2)
    for got, want in zip(exact, whole):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert float(np.abs(cut[0] - whole[0]).max()) > 1e-3


def test_card_scale_must_match_the_models_upscale():
    card = ModelCard(task="sr", channels="y", model=arch_config("pff-tiny"), degrade={"scale": 3})
    with pytest.raises(Exception, match="upscales by 2"):
        Restorer(_UpscaleStub().eval(), card)


def test_rows_and_sinks_stream_band_by_band_and_equal_whole():
    model = _UpscaleStub().eval()
    x = torch.rand(1, 1, 70, 45, generator=torch.Generator().manual_seed(5))
    reads: list[tuple[int, int]] = []

    def read(lo, hi):
        reads.append((lo, hi))
        return x[..., lo:hi, :]

    def fn(t):
        with torch.no_grad():
            return list(model(t))

    bands: dict[int, list[tuple[int, np.ndarray]]] = {0: [], 1: []}
    sinks = [lambda lo, band, i=i: bands[i].append((lo, band.copy())) for i in (0, 1)]
    whole = tiled(fn, x, tile=16, halo=8, align=8, upscale=2)
    got = tiled(fn, Rows((1, 1, 70, 45), read), tile=16, halo=8, align=8, upscale=2, out=sinks)
    assert got == [None, None]
    assert len(reads) == 5 and max(hi - lo for lo, hi in reads) <= 16 + 2 * 8 + 8 + 8  # one band of tiles at a time
    for i, want in enumerate(whole):
        starts = [lo for lo, _ in bands[i]]
        assert starts[0] == 0 and all(lo + b.shape[1] == nxt for (lo, b), nxt in zip(bands[i], starts[1:] + [140]))
        np.testing.assert_array_equal(np.concatenate([b for _, b in bands[i]], axis=1), want)  # same sums, same order
