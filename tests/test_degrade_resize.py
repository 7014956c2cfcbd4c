"""MATLAB-compatible bicubic imresize, modcrop, the SR input builder and ``Bicubic``."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pff.color import rgb_to_y
from pff.degrade import Bicubic, imresize, modcrop, sr_pair
from pff.degrade.resize import cubic, resize_weights
from pff.errors import PffError

# Weights of a 2x antialiased downscale, cubic(d / 2) / 2 at input distances
# d = 0.5, 1.5, 2.5, 3.5 (8 taps), by hand:
# cubic(0.25) = 1.5/64 - 2.5/16 + 1 = 0.8671875; cubic(0.75) = 0.2265625;
# cubic(1.25) = -0.0703125; cubic(1.75) = -0.0234375 (they sum to 2 over 8 taps).
W05, W15, W25, W35 = 0.43359375, 0.11328125, -0.03515625, -0.01171875


def test_cubic_kernel_values():
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5])
    expected = [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625]
    np.testing.assert_allclose(cubic(t), expected, atol=1e-15)


def test_downscale_by_two_exact_weights():
    s = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    out = imresize(s[:, None], 0.5)[:, 0]  # (4,)
    # Output 0 sits between s0 and s1; taps left of s0 mirror back (s[-1] = s0, s[-2] = s1, ...).
    expected0 = W05 * (s[0] + s[1]) + W15 * (s[0] + s[2]) + W25 * (s[1] + s[3]) + W35 * (s[2] + s[4])
    expected1 = W05 * (s[2] + s[3]) + W15 * (s[1] + s[4]) + W25 * (s[0] + s[5]) + W35 * (s[0] + s[6])
    assert out.shape == (4,)
    np.testing.assert_allclose(out[:2], [expected0, expected1], rtol=0, atol=1e-12)


def test_weights_rows_sum_to_one_and_indices_in_range():
    for n, m, scale in [(7, 3, 3 / 7), (5, 13, 2.6), (16, 4, 0.25), (1, 4, 4.0)]:
        index, weights = resize_weights(n, m, scale)
        assert index.shape == weights.shape and index.shape[0] == m
        assert index.min() >= 0 and index.max() < n
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("scale", [0.5, 0.25, 1 / 3, 0.37, 1.7, 2, 4])
@pytest.mark.parametrize("shape", [(17, 23), (9, 13, 3)])
def test_constant_image_stays_constant(scale, shape):
    image = np.full(shape, 117, dtype=np.uint8)
    out = imresize(image, scale)
    np.testing.assert_allclose(out, 117.0, atol=1e-10)


@pytest.mark.parametrize("scale", [2, 4, 0.5, 0.25, 1.7, 3])
def test_linear_ramp_stays_a_ramp_away_from_the_border(scale):
    # Output pixel x (0-based) samples the input at (x + 0.5) / scale - 0.5.
    n = 40
    ramp = np.tile(np.arange(n, dtype=np.float64)[:, None], (1, 5))  # (n, 5), f(i) = i
    out = imresize(ramp, scale)[:, 0]
    x = np.arange(out.shape[0])
    expected = (x + 0.5) / scale - 0.5
    reach = 2 * max(1.0, 1.0 / scale) + 1  # kernel half-width in input pixels, plus a pixel
    inside = (expected > reach) & (expected < n - 1 - reach)
    assert inside.sum() >= 5
    np.testing.assert_allclose(out[inside], expected[inside], atol=1e-10)


@pytest.mark.parametrize(
    "shape, scale, expected",
    [((7, 9), 0.5, (4, 5)), ((10, 10), 1 / 3, (4, 4)), ((3, 5), 2.5, (8, 13)), ((512, 512), 0.25, (128, 128))],
)
def test_output_size_is_ceil_like_matlab(shape, scale, expected):
    assert imresize(np.zeros(shape), scale).shape == expected


def test_output_shape_per_axis_and_channels_kept():
    image = np.random.default_rng(0).uniform(0, 255, size=(12, 20, 3))
    out = imresize(image, output_shape=(30, 7))
    assert out.shape == (30, 7, 3) and out.dtype == np.float64
    # Channels are resized independently.
    np.testing.assert_allclose(out[:, :, 1], imresize(image[:, :, 1], output_shape=(30, 7)), atol=1e-12)


def test_axes_are_separable():
    # Height-only then width-only equals the joint resize (the two passes commute).
    image = np.random.default_rng(1).uniform(0, 255, size=(21, 16))
    joint = imresize(image, output_shape=(9, 40))
    rows = imresize(image, output_shape=(9, 16))
    np.testing.assert_allclose(imresize(rows, output_shape=(9, 40)), joint, atol=1e-9)


def test_antialiasing_flag():
    image = np.random.default_rng(2).uniform(0, 255, size=(32, 32))
    smooth = imresize(image, 0.25)
    aliased = imresize(image, 0.25, antialiasing=False)
    assert smooth.std() < aliased.std()  # the widened kernel averages more pixels
    np.testing.assert_allclose(imresize(image, 2.0), imresize(image, 2.0, antialiasing=False))


def test_imresize_errors():
    with pytest.raises(PffError, match="exactly one"):
        imresize(np.zeros((4, 4)))
    with pytest.raises(PffError, match="exactly one"):
        imresize(np.zeros((4, 4)), 2.0, output_shape=(8, 8))
    with pytest.raises(PffError, match="positive finite scale"):
        imresize(np.zeros((4, 4)), -1.0)
    with pytest.raises(PffError, match="got shape"):
        imresize(np.zeros((2, 4, 4, 1)), 2.0)
    with pytest.raises(PffError, match="dtype"):
        imresize(np.zeros((4, 4), dtype=bool), 2.0)
    with pytest.raises(PffError, match="output_shape"):
        imresize(np.zeros((4, 4)), output_shape=(0, 3))


def test_modcrop_keeps_top_left():
    image = np.arange(7 * 10).reshape(7, 10)
    out = modcrop(image, 4)
    assert out.shape == (4, 8)
    np.testing.assert_array_equal(out, image[:4, :8])
    with pytest.raises(PffError, match="positive integer scale"):
        modcrop(image, 0)


def test_sr_pair_shapes_and_definition():
    hr = np.random.default_rng(3).integers(0, 256, size=(24, 36, 3), dtype=np.uint8)
    lr, up = sr_pair(hr, 4)
    assert lr.shape == (6, 9, 3) and up.shape == hr.shape
    assert lr.dtype == up.dtype == np.uint8
    expected_lr = np.clip(np.floor(imresize(hr, 0.25) + 0.5), 0, 255)
    np.testing.assert_array_equal(lr, expected_lr)
    np.testing.assert_array_equal(up, np.clip(np.floor(imresize(lr, 4.0) + 0.5), 0, 255))


def test_sr_pair_errors():
    with pytest.raises(PffError, match="modcrop"):
        sr_pair(np.zeros((25, 24), dtype=np.uint8), 4)
    with pytest.raises(PffError, match="uint8"):
        sr_pair(np.zeros((24, 24)), 4)


def test_bicubic_degradation_matches_sr_pair():
    clean = np.random.default_rng(4).integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
    out = Bicubic(4)(clean, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == clean.shape
    np.testing.assert_array_equal(out, sr_pair(clean, 4)[1])
    assert Bicubic(4).margin == 16 and Bicubic(2).margin == 8


def test_bicubic_margin_hides_the_crop_border():
    # A crop aligned to the LR grid, degraded alone, equals the whole image
    # degraded, once ``margin`` pixels are cut from every side.
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, size=(128, 128, 1), dtype=np.uint8)
    degradation = Bicubic(4)
    m, top, left, side = degradation.margin, 8, 12, 96
    whole = degradation(image, rng)
    crop = degradation(image[top : top + side, left : left + side], rng)
    np.testing.assert_array_equal(
        crop[m:-m, m:-m], whole[top + m : top + side - m, left + m : left + side - m]
    )


def test_bicubic_odd_size_is_cropped_back():
    clean = np.random.default_rng(6).integers(0, 256, size=(33, 30, 1), dtype=np.uint8)
    assert Bicubic(4)(clean, np.random.default_rng(0)).shape == (33, 30, 1)


def test_bicubic_bad_scale():
    with pytest.raises(PffError, match="scale"):
        Bicubic(0)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _bicubic_baseline(folder) -> float:
    scores = []
    for path in sorted(folder.glob("*.png")):
        hr = modcrop(np.asarray(Image.open(path).convert("RGB")), 4)
        _, up = sr_pair(hr, 4)
        scores.append(_psnr(rgb_to_y(hr)[4:-4, 4:-4], rgb_to_y(up)[4:-4, 4:-4]))
    return float(np.mean(scores))


@pytest.mark.integration
def test_set5_bicubic_baseline(shared_data):
    assert _bicubic_baseline(shared_data / "test" / "set5") == pytest.approx(28.42, abs=0.02)


@pytest.mark.integration
def test_set14_bicubic_baseline(shared_data):
    assert _bicubic_baseline(shared_data / "test" / "set14") == pytest.approx(26.09, abs=0.1)
