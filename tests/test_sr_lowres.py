"""Super-resolution computed in low resolution: ``filter_flow_up``, the upscaling PFF, its data and config."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pff.degrade import Bicubic, imresize
from pff.errors import PffError
from pff.models import create
from pff.models.pff import ModelConfig, bicubic_phase_filters, build_model
from pff.ops import filter_flow, filter_flow_up


def _up_reference(image: torch.Tensor, filters: torch.Tensor, scale: int) -> torch.Tensor:
    """The definition, one output pixel at a time (replicate padding), in float64."""
    b, c, h, w = image.shape
    kk, big_h, big_w = filters.shape[1:]
    k, r = int(round(kk**0.5)), int(round(kk**0.5)) // 2
    out = torch.zeros(b, c, big_h, big_w, dtype=torch.float64)
    for y in range(big_h):
        for x in range(big_w):
            for i in range(k):
                for j in range(k):
                    yy = min(max(y // scale + i - r, 0), h - 1)
                    xx = min(max(x // scale + j - r, 0), w - 1)
                    out[:, :, y, x] += filters[:, i * k + j, y, x, None].double() * image[:, :, yy, xx].double()
    return out


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_filter_flow_up_matches_its_definition(scale):
    gen = torch.Generator().manual_seed(scale)
    image = torch.rand(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    filters = torch.randn(2, 9, 4 * scale, 5 * scale, generator=gen, dtype=torch.float64)
    out = filter_flow_up(image, filters, scale)
    assert out.shape == (2, 3, 4 * scale, 5 * scale)
    torch.testing.assert_close(out, _up_reference(image, filters, scale), rtol=0, atol=1e-12)


def test_filter_flow_up_hand_computed():
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    filters = torch.zeros(1, 9, 4, 4)
    filters[0, 5] = 1.0  # tap (i, j) = (1, 2): read the low-resolution pixel to the right (clamped)
    out = filter_flow_up(image, filters, 2)
    expected = torch.tensor([[2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0], [4.0, 4.0, 4.0, 4.0], [4.0, 4.0, 4.0, 4.0]])
    torch.testing.assert_close(out[0, 0], expected)


def test_filter_flow_up_is_filter_flow_on_the_nearest_upsampling():
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 1, 6, 7, generator=gen)
    filters = torch.randn(1, 25, 18, 21, generator=gen)
    nearest = torch.nn.functional.interpolate(image, scale_factor=3, mode="nearest")
    torch.testing.assert_close(filter_flow_up(image, filters, 3), filter_flow(nearest, filters, padding="replicate", dilation=3))


def test_filter_flow_up_gradcheck():
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(1, 2, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    filters = torch.randn(1, 9, 6, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, f: filter_flow_up(a, f, 2), (image, filters))


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_filter_flow_up_phase_layout_is_the_pixel_unshuffled_filters(scale):
    gen = torch.Generator().manual_seed(10 + scale)
    image = torch.rand(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    filters = torch.randn(2, 9, 4 * scale, 5 * scale, generator=gen, dtype=torch.float64)  # one per output pixel
    phases = torch.nn.functional.pixel_unshuffle(filters, scale).view(2, 9, scale * scale, 4, 5)
    # Entry [k, p*s + q, y, x] is tap k of output pixel (s*y + p, s*x + q).
    torch.testing.assert_close(phases[1, 4, scale * scale - 1, 3, 2], filters[1, 4, 3 * scale + scale - 1, 2 * scale + scale - 1])
    torch.testing.assert_close(filter_flow_up(image, phases, scale), _up_reference(image, filters, scale), rtol=0, atol=1e-12)


def test_filter_flow_up_phase_layout_gradcheck():
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(1, 2, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    phases = torch.randn(1, 9, 4, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, f: filter_flow_up(a, f, 2), (image, phases))


@pytest.mark.parametrize("scale", [0, 1.5, True, "2"])
def test_filter_flow_up_rejects_a_bad_scale(scale):
    with pytest.raises(ValueError, match="scale must be an integer >= 1"):
        filter_flow_up(torch.rand(1, 1, 4, 4), torch.rand(1, 9, 8, 8), scale)


def test_filter_flow_up_rejects_filters_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"must have shape \(1, 9, 8, 8\), got \(1, 9, 4, 4\)"):
        filter_flow_up(torch.rand(1, 1, 4, 4), torch.rand(1, 9, 4, 4), 2)
    with pytest.raises(ValueError, match=r"phase filters .* must have shape \(1, 9, 4, 4, 4\), got \(1, 9, 9, 4, 4\)"):
        filter_flow_up(torch.rand(1, 1, 4, 4), torch.rand(1, 9, 9, 4, 4), 2)
    with pytest.raises(ValueError, match="filters must be"):
        filter_flow_up(torch.rand(1, 1, 4, 4), torch.rand(9, 8, 8), 2)
    with pytest.raises(ValueError, match="K\\*K for an odd K"):
        filter_flow_up(torch.rand(1, 1, 4, 4), torch.rand(1, 8, 4, 4, 4), 2)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_phase_filters_sum_to_one_and_hold_matlab_weights(scale):
    filters = bicubic_phase_filters(7, scale)  # (49, s, s)
    torch.testing.assert_close(filters.sum(0), torch.ones(scale, scale))
    # One axis of phase 0 at scale 2 samples u = -0.25 around its own pixel: Keys' weights at 1.75, 0.75, 0.25, 1.25.
    if scale == 2:
        one_axis = filters.view(7, 7, 2, 2).sum(1)[:, 0, 0]  # (7,) marginal over columns
        expected = torch.tensor([0.0, -0.0234375, 0.2265625, 0.8671875, -0.0703125, 0.0, 0.0])
        torch.testing.assert_close(one_axis, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upscaling_model_starts_as_matlab_bicubic(scale):
    model = create("pff-sr", channels="y", upscale=scale).eval()
    assert model.upscale == scale
    low = np.random.default_rng(scale).uniform(0, 1, (13, 16))
    with torch.no_grad():
        out, filters = model(torch.from_numpy(low).float()[None, None])
    assert out.shape == (1, 1, 13 * scale, 16 * scale) and filters.shape == (1, 49, 13 * scale, 16 * scale)
    reference = imresize(low, float(scale))
    b = 2 * scale  # away from the border, where MATLAB mirrors and the model replicates
    np.testing.assert_allclose(out[0, 0, b:-b, b:-b].numpy(), reference[b:-b, b:-b], rtol=0, atol=1e-5)


def test_upscaling_model_filters_reproduce_its_output():
    model = create("pff-sr", channels="y", upscale=2).eval()
    with torch.no_grad():
        for p in model.predictor.out.parameters():  # leave the identity start: any filters will do
            p.normal_(0, 0.05)
        x = torch.rand(1, 1, 10, 12)
        out, filters = model(x)
    torch.testing.assert_close(filter_flow_up(x, filters, 2), out)


def test_upscale_config_validation():
    with pytest.raises(PffError, match="upscale"):
        ModelConfig(upscale=2)  # the default basis head cannot hold one filter per sub-pixel
    with pytest.raises(PffError, match="upscale"):
        ModelConfig(upscale=0)
    with pytest.raises(PffError, match="upscale: needs dilation 1, got dilation 2"):
        ModelConfig(head="full", constraint="none", kernel=5, upscale=2, dilation=2)  # the op has no dilation
    assert build_model(ModelConfig(head="full", constraint="normalized", kernel=5, upscale=3), 1).upscale == 3


def test_bicubic_without_upsampling_returns_the_low_resolution_image():
    clean = np.random.default_rng(0).integers(0, 256, (24, 30, 1)).astype(np.uint8)
    low = Bicubic(3, upsample=False)(clean, np.random.default_rng(0))
    assert low.shape == (8, 10, 1) and Bicubic(3, upsample=False).shrink == 3 and Bicubic(3).shrink == 1
    expected = np.floor(np.clip(imresize(clean, 1 / 3), 0, 255) + 0.5)
    np.testing.assert_array_equal(low, expected)


def test_pair_dataset_gives_low_resolution_inputs(tmp_path):
    from PIL import Image

    from pff.data import PairDataset

    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (80, 90, 3)).astype(np.uint8)).save(tmp_path / f"{i}.png")
    ds = PairDataset(sorted(tmp_path.glob("*.png")), Bicubic(4, upsample=False), patch=32, channels="y", length=4)
    low, clean = ds[0]
    assert low.shape == (1, 8, 8) and clean.shape == (1, 32, 32)
    # The low-resolution patch is the footprint of the clean one: its mean is close to the clean patch's.
    assert abs(float(low.mean()) - float(clean.mean())) < 0.05
    with pytest.raises(PffError, match="multiples of 4"):
        PairDataset(sorted(tmp_path.glob("*.png")), Bicubic(4, upsample=False), patch=30, channels="y")


def test_run_config_ties_upscale_to_the_degradation():
    from pff.train import load_config

    sets = ["task=sr", "model.arch=pff-sr", "model.upscale=3", "data.degrade.scale=3", "data.degrade.upsample=false"]
    assert load_config(None, sets).model.upscale == 3
    with pytest.raises(PffError, match="model.upscale"):
        load_config(None, sets[:-1])


def test_restorer_upscales_colour_and_alpha_with_an_lr_input_model():
    """An untrained LR-input y model is bicubic on the luma; chroma and alpha are upsampled
    bicubically beside it, so the colour result is the bicubic upsampling away from the border."""
    from pff.degrade import upsample
    from pff.models import ModelCard
    from pff.restore import Restorer

    model = create("pff-sr", channels="y", upscale=3)
    card = ModelCard(task="sr", channels="y", model=model.config, degrade={"scale": 3, "upsample": False})
    restorer = Restorer(model, card)
    yy, xx = np.mgrid[0:24, 0:30]
    rgb = np.stack([128 + 60 * np.sin(xx / 5.0), 128 + 50 * np.cos(yy / 4.0), 100 + 2 * xx], axis=2)
    rgba = np.concatenate([rgb, 255 - 3 * yy[..., None]], axis=2).round().astype(np.uint8)
    out = restorer.restore(rgba)
    assert out.shape == (72, 90, 4) and out.dtype == np.uint8
    expected = upsample(rgba, 3)
    np.testing.assert_array_equal(out[..., 3], expected[..., 3])  # alpha: exactly the bicubic upsampling
    inner = np.abs(out[6:-6, 6:-6, :3].astype(int) - expected[6:-6, 6:-6, :3].astype(int))
    assert inner.max() <= 1  # colour: the same up to rounding


def test_upscaling_model_flow_is_measured_from_the_output_pixel():
    """The bicubic start reads symmetrically around every output pixel: zero flow (away from the
    border), whatever the sub-pixel phase; a filter reading the low-resolution pixel to the right
    reads from that pixel's centre, s*1 + (s-1)/2 - X % s output pixels away."""
    from pff.models import ModelCard
    from pff.restore import Restorer

    model = create("pff-sr", channels="y", upscale=3)
    card = ModelCard(task="sr", channels="y", model=model.config, degrade={"scale": 3, "upsample": False})
    image = np.random.default_rng(0).integers(0, 256, (20, 22)).astype(np.uint8)
    _, flow = Restorer(model, card).restore_with_flow(image)  # (60, 66, 2)
    np.testing.assert_allclose(flow[6:-6, 6:-6], 0.0, atol=1e-5)
    with torch.no_grad():  # every filter: one tap at low-resolution offset (0, +1)
        model.predictor.out.bias.copy_(-model.delta)
        model.predictor.out.bias.view(49, 9)[3 * 7 + 4] += 1.0
    _, flow = Restorer(model, card).restore_with_flow(image)
    expected_y = 1 - np.arange(60) % 3  # s*0 + (s-1)/2 - Y % s: the centre of the pixel's own row block
    np.testing.assert_allclose(flow[..., 1], np.broadcast_to(expected_y[:, None], (60, 66)), atol=1e-5)
    expected_x = 3 + 1 - np.arange(66) % 3  # s*1 + (s-1)/2 - X % s
    np.testing.assert_allclose(flow[..., 0], np.broadcast_to(expected_x, (60, 66)), atol=1e-5)


def test_validation_baseline_of_low_resolution_pairs_is_the_protocols_upsampling():
    from pff.degrade import upsample
    from pff.train import _input_estimate

    low = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 1, 8, 9)).astype(np.float32) / 255)
    out = _input_estimate(low, torch.zeros(2, 1, 24, 27))
    assert out.shape == (2, 1, 24, 27)
    for i in range(2):
        expected = upsample(np.round(low[i, 0].numpy() * 255).astype(np.uint8), 3) / 255.0
        np.testing.assert_allclose(out[i, 0].numpy(), expected, rtol=0, atol=1e-7)
