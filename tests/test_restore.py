"""Restorer: tiled equals whole, strength, colour handling, modes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pff.errors import PffError
from pff.models import ModelCard, create, save
from pff.ops import filter_flow
from pff.color import rgb_to_ycbcr, ycbcr_to_rgb
from pff.restore import Restorer
from pff.tiling import axis_spans, predictor_receptive_field, receptive_field


def _randomised(arch="pff-tiny", channels="rgb", seed=0, **overrides):
    """A model whose head and batch norms are random, so that it is far from the identity."""
    torch.manual_seed(seed)
    model = create(arch, channels=channels, **overrides).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        model.predictor.out.weight.normal_(0, 0.05)
        model.predictor.out.bias.normal_(0, 0.05)
    return model


def _restorer(task="jpeg", channels="rgb", arch="pff-tiny", **options):
    model = _randomised(arch, channels, **options.pop("overrides", {}))
    return Restorer(model, ModelCard(task=task, channels=channels, model=model.config), **options)


def _image(h, w, c=3, dtype=np.uint8, seed=0):
    top = 65535 if dtype == np.uint16 else 255
    shape = (h, w) if c == 0 else (h, w, c)
    return np.random.default_rng(seed).integers(0, top + 1, size=shape).astype(dtype)


# --- receptive field and tiles --------------------------------------------------


def test_receptive_field_is_tight():
    model = _randomised()
    reach = predictor_receptive_field(model)
    assert receptive_field(model) == reach + model.config.kernel // 2
    x = torch.rand(1, 3, 96, 96)
    y = x.clone()
    y[..., 40, 40] += 0.5
    with torch.inference_mode():
        changed = (model.predictor(x) - model.predictor(y)).abs().sum(1)[0] > 0  # (96, 96)
    rows = torch.nonzero(changed.any(1)).flatten()
    # the measured reach covers the change and is reached by it (up to the stride phase)
    assert 40 - int(rows[0]) <= reach and int(rows[-1]) - 40 <= reach
    assert max(40 - int(rows[0]), int(rows[-1]) - 40) > reach - model.predictor.stride


def test_axis_spans_weights_sum_to_one_and_reads_are_aligned():
    for length in (1, 7, 64, 203):
        spans = axis_spans(length, 16, halo=24, align=8, feather=4)
        total = np.zeros(length)
        for s in spans:
            total[s.lo : s.hi] += s.weights
            assert s.read_lo % 8 == 0 and s.read_lo <= max(0, s.lo - 24) and s.read_hi >= min(length, s.hi + 24)
        np.testing.assert_allclose(total, 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("arch", "channels", "overrides"),
    [
        ("pff-tiny", "rgb", {}),  # softmax, basis head
        ("pff-tiny", "y", {"constraint": "none", "kernel": 9}),  # linear basis head
        ("pff-tiny", "rgb", {"head": "full", "constraint": "normalized", "kernel": 5, "dilation": 2}),
        ("pff-small", "rgb", {"kind": "direct"}),  # the direct CNN
    ],
)
def test_tiled_equals_whole_for_any_tile_size(arch, channels, overrides):
    whole = _restorer(channels=channels, arch=arch, tile=0, overrides=dict(overrides))
    c = 3 if channels == "rgb" else 1
    x = torch.rand(1, c, 101, 77, generator=torch.Generator().manual_seed(1))
    expected, _ = whole.run(x)
    for tile in (8, 24, 40, 64):
        tiled = Restorer(whole.model, whole.card, tile=tile)
        got, _ = tiled.run(x)
        assert float((got - expected).abs().max()) <= 1e-4, tile


def test_tiled_filters_and_flow_equal_whole():
    whole = _restorer(tile=0, strength=0.7)
    tiled = Restorer(whole.model, whole.card, tile=16, strength=0.7)
    image = _image(45, 37)
    np.testing.assert_allclose(tiled.filters(image), whole.filters(image), atol=1e-5)
    _, flow_whole = whole.restore_with_flow(image)
    _, flow_tiled = tiled.restore_with_flow(image)
    np.testing.assert_allclose(flow_tiled, flow_whole, atol=1e-4)


def test_a_halo_below_the_receptive_field_is_not_exact():
    restorer = _restorer(tile=16)
    with torch.no_grad():
        restorer.model.predictor.out.weight.normal_(0, 1.0)
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    expected, _ = Restorer(restorer.model, restorer.card, tile=0).run(x)
    exact = float((restorer.run(x)[0] - expected).abs().max())
    restorer._halo = 8  # the filter radius only: the predictor's receptive field is cut
    assert float((restorer.run(x)[0] - expected).abs().max()) > 20 * max(exact, 1e-7)
    restorer._halo = 0  # the filters' zero padding shows at every tile border
    assert float((restorer.run(x)[0] - expected).abs().max()) > 1e-3


# --- strength and iterations ------------------------------------------------------


@pytest.mark.parametrize("channels", ["rgb", "y"])
@pytest.mark.parametrize("kind", ["pff", "direct"])
def test_strength_zero_is_the_identity(channels, kind):
    restorer = _restorer(channels=channels, strength=0.0, overrides={"kind": kind})
    for image in (_image(19, 23), _image(19, 23, 0), _image(19, 23, 4, np.uint16)):
        np.testing.assert_array_equal(restorer.restore(image), image)


def test_strength_blends_filters_linearly_for_softmax():
    restorer = _restorer(strength=0.3)  # softmax filters
    x = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(3))
    full, _ = Restorer(restorer.model, restorer.card, tile=0).run(x)
    blended_out, _ = restorer.run(x)
    np.testing.assert_allclose(blended_out, (x + 0.3 * (full - x)).clamp(0, 1), atol=1e-6)
    filters = torch.from_numpy(restorer.filters(x[0].permute(1, 2, 0).numpy()))  # (H, W, K, K)
    k = filters.shape[-1]
    with_op = filter_flow(x, filters.reshape(24, 32, k * k).permute(2, 0, 1)[None], padding="zeros")
    np.testing.assert_allclose(with_op.clamp(0, 1), blended_out, atol=1e-5)
    np.testing.assert_allclose(filters.sum((-1, -2)), 1.0, atol=1e-5)


def test_iterations_feed_the_output_back():
    once = _restorer()
    twice = Restorer(once.model, once.card, iterations=2)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    first, _ = once.run(x)
    again, _ = once.run(first)
    np.testing.assert_allclose(twice.run(x)[0], again, atol=1e-6)


# --- images -----------------------------------------------------------------------


def test_colour_is_converted_in_bands_of_rows(monkeypatch):
    import pff.restore as restore_module

    restorer = _restorer(channels="y", tile=16)
    image = _image(90, 50)
    expected = restorer.restore(image)  # bands of CHUNK_ROWS = 128 rows: the whole image at once
    luma, rows = restore_module._luma, []
    monkeypatch.setattr(restore_module, "_luma", lambda colour, *a, **k: rows.append(len(colour)) or luma(colour, *a, **k))
    monkeypatch.setattr(restore_module, "CHUNK_ROWS", 8)
    np.testing.assert_array_equal(restorer.restore(image), expected)
    assert max(rows) == 8 and sum(rows) > 90  # every band of tiles converts its own rows, 8 at a time


def test_ycbcr_round_trip():
    rgb = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-5)
    np.testing.assert_allclose(rgb_to_ycbcr(np.ones((1, 1, 3)))[0, 0], [235 / 255, 128 / 255, 128 / 255], atol=1e-5)


@pytest.mark.parametrize("shape_dtype", [((0,), np.uint8), ((2,), np.uint8), ((3,), np.uint8), ((4,), np.uint16), ((0,), np.uint16), ((3,), np.float32)])
def test_restore_keeps_layout_dtype_and_alpha(shape_dtype):
    (c,), dtype = shape_dtype
    image = _image(21, 18, c, dtype) if dtype != np.float32 else np.random.default_rng(0).random((21, 18, 3)).astype(np.float32)
    out = _restorer().restore(image)
    assert out.shape == image.shape and out.dtype == image.dtype
    if c in (2, 4):
        np.testing.assert_array_equal(out[..., -1], image[..., -1])


def test_y_model_keeps_the_chroma():
    restorer = _restorer(channels="y")
    image = (60 + _image(20, 24) // 2).astype(np.uint8)  # mid-range: no clipping in RGB
    out = restorer.restore(image)
    cbcr_in = rgb_to_ycbcr(image / 255.0)[..., 1:]
    cbcr_out = rgb_to_ycbcr(out / 255.0)[..., 1:]
    assert np.abs(cbcr_out - cbcr_in).max() < 3 / 255  # rounding and clipping only
    assert not np.array_equal(out, image)


def test_pil_modes_round_trip():
    restorer = _restorer()
    for mode in ("L", "LA", "RGB", "RGBA"):
        image = Image.fromarray(_image(12, 10, {"L": 0, "LA": 2, "RGB": 3, "RGBA": 4}[mode]))
        out = restorer.restore(image)
        assert isinstance(out, Image.Image) and out.mode == mode and out.size == image.size
    palette = Image.fromarray(_image(12, 10)).quantize(16)
    assert restorer.restore(palette).mode == "RGB"
    assert restorer.restore(Image.fromarray(_image(12, 10, 0, np.uint16))).mode == "I;16"


def test_sr_upsamples_colour_and_alpha():
    restorer = _restorer(task="sr", channels="y", strength=0.0)
    low = _image(10, 7, 4)
    out = restorer.restore(low)
    assert out.shape == (40, 28, 4)
    from pff.degrade.resize import imresize

    expected = np.floor(np.clip(imresize(low, 4.0), 0, 255) + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)


def test_filters_shape_and_direct_model_has_none():
    restorer = _restorer(overrides={"kernel": 5})
    assert restorer.filters(_image(9, 11)).shape == (9, 11, 5, 5)
    direct = _restorer(overrides={"kind": "direct"})
    with pytest.raises(PffError, match="no filters"):
        direct.filters(_image(9, 11))


def test_bad_arguments():
    model = _randomised()
    card = ModelCard(task="jpeg", channels="rgb", model=model.config)
    for options, message in (
        ({"strength": 1.5}, "strength"),
        ({"iterations": 0}, "iterations"),
        ({"tile": -1}, "tile"),
        ({"device": "cuda:0" if not torch.cuda.is_available() else "nonsense"}, "device"),
    ):
        with pytest.raises(PffError, match=message):
            Restorer(model, card, **options)
    with pytest.raises(PffError, match="no model 'nope'"):
        Restorer.from_pretrained("nope")


def test_from_pretrained_folder(tmp_path):
    model = _randomised()
    save(model, ModelCard(task="jpeg", channels="rgb", model=model.config), tmp_path / "m")
    restorer = Restorer.from_pretrained(tmp_path / "m", tile=0)
    image = _image(16, 16)
    np.testing.assert_array_equal(restorer.restore(image), Restorer(model, restorer.card).restore(image))
