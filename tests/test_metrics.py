from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from pff.color import rgb_to_luma_paper, rgb_to_y
from pff.errors import PffError
from pff.metrics import (
    Score,
    crop_border,
    psnr,
    score_paper_deblur,
    score_standard,
    ssim,
    ssim_skimage_default,
    to_uint8,
)

skimage_metrics = pytest.importorskip("skimage.metrics")

SIZES = [(11, 11), (37, 53), (64, 65), (128, 97)]


def _random(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.uint8)


def _smooth(shape, seed):
    noise = np.random.default_rng(seed).normal(size=shape)
    smooth = ndimage.gaussian_filter(noise, 4.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return np.round(255 * smooth).astype(np.uint8)


def _noisy(image, seed, sigma=12.0):
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def _pairs():
    for i, shape in enumerate(SIZES):
        for make in (_random, _smooth):
            clean = make(shape, i)
            yield pytest.param(clean, _noisy(clean, 100 + i), id=f"{make.__name__[1:]}-{shape[0]}x{shape[1]}")


# --- PSNR -------------------------------------------------------------------


def test_psnr_of_image_with_itself_is_infinite():
    image = _random((20, 30, 3), 0)
    assert psnr(image, image) == math.inf


def test_psnr_hand_computed():
    a = np.zeros((4, 5))
    b = np.full((4, 5), 10.0)  # MSE 100
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / 10), abs=1e-12)
    b[0, 0] = 0.0  # MSE 95
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 95), abs=1e-12)
    assert psnr(a, np.full((4, 5), 0.1), peak=1.0) == pytest.approx(20.0, abs=1e-12)


def test_psnr_uses_float64_not_uint8_arithmetic():
    a = np.zeros((3, 3), np.uint8)
    b = np.full((3, 3), 255, np.uint8)  # uint8 subtraction would wrap around
    assert psnr(a, b) == pytest.approx(0.0, abs=1e-12)


def test_psnr_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))


# --- SSIM (Wang et al. 2004) ------------------------------------------------


def _ssim_brute_force(a, b, data_range=255.0):
    """Direct transcription of the reference definition: every 11x11 window fully inside."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    w = g / g.sum()  # MATLAB fspecial('gaussian', 11, 1.5)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * (pa - ma) ** 2).sum()
            vb = (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_of_image_with_itself_is_one():
    image = _smooth((40, 33), 1)
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_brute_force_reference_definition():
    clean = _random((15, 18), 3)
    noisy = _noisy(clean, 4, sigma=30.0)
    assert ssim(noisy, clean) == pytest.approx(_ssim_brute_force(noisy, clean), abs=1e-12)


@pytest.mark.parametrize(("clean", "noisy"), list(_pairs()))
def test_ssim_equals_skimage_gaussian_population(clean, noisy):
    # skimage with these options uses an 11-tap filter (truncate 3.5 at sigma 1.5)
    # and crops (11 - 1) // 2 = 5 pixels: exactly the 'valid' windows.
    expected = skimage_metrics.structural_similarity(
        noisy, clean, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(noisy, clean) == pytest.approx(expected, abs=1e-10)


def test_ssim_is_symmetric_and_below_one():
    clean = _smooth((30, 31), 5)
    noisy = _noisy(clean, 6)
    assert ssim(clean, noisy) == pytest.approx(ssim(noisy, clean), abs=1e-14)
    assert ssim(clean, noisy) < 1.0


def test_ssim_errors():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((10, 40)), np.zeros((10, 40)))
    with pytest.raises(ValueError, match="2-D"):
        ssim(np.zeros((20, 20, 3)), np.zeros((20, 20, 3)))
    with pytest.raises(ValueError, match="same shape"):
        ssim(np.zeros((20, 20)), np.zeros((20, 21)))


# --- SSIM (scikit-image defaults, the paper's deblurring protocol) ----------


@pytest.mark.parametrize(("clean", "noisy"), list(_pairs()))
def test_ssim_skimage_default_equals_skimage(clean, noisy):
    data_range = float(clean.max()) - float(clean.min())
    expected = skimage_metrics.structural_similarity(noisy, clean, data_range=data_range)
    assert ssim_skimage_default(noisy, clean, data_range=data_range) == pytest.approx(expected, abs=1e-10)


def test_ssim_skimage_default_smallest_image():
    clean = _random((7, 9), 8)
    noisy = _noisy(clean, 9)
    expected = skimage_metrics.structural_similarity(noisy, clean, data_range=255)
    assert ssim_skimage_default(noisy, clean, data_range=255) == pytest.approx(expected, abs=1e-10)
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim_skimage_default(clean[:6], clean[:6], data_range=255)


def test_ssim_skimage_default_of_image_with_itself_is_one():
    image = _random((25, 26), 10)
    assert ssim_skimage_default(image, image, data_range=255) == pytest.approx(1.0, abs=1e-12)


# --- helpers ----------------------------------------------------------------


def test_crop_border():
    image = np.arange(7 * 8 * 3).reshape(7, 8, 3)
    assert crop_border(image, 0) is image
    np.testing.assert_array_equal(crop_border(image, 2), image[2:5, 2:6])
    with pytest.raises(ValueError, match="cannot crop"):
        crop_border(image, 4)
    with pytest.raises(ValueError, match=">= 0"):
        crop_border(image, -1)


def test_to_uint8_clamps_and_rounds_half_up():
    values = np.array([-3.0, 0.4, 0.5, 1.5, 2.5, 254.5, 300.0])
    np.testing.assert_array_equal(to_uint8(values), [0, 0, 1, 2, 3, 255, 255])
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(np.array([1.0, np.nan]))


# --- luma ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rgb", "y"),
    [((0, 0, 0), 16), ((255, 255, 255), 235), ((255, 0, 0), 81), ((0, 255, 0), 145), ((0, 0, 255), 41)],
)
def test_rgb_to_y_known_values(rgb, y):
    # 16 + (65.481 R + 128.553 G + 24.966 B) / 255: red 81.481, green 144.553, blue 40.966.
    assert rgb_to_y(np.array([[rgb]], np.uint8))[0, 0] == y


@pytest.mark.parametrize(("rgb", "luma"), [((0, 0, 0), 0), ((255, 0, 0), 76), ((0, 255, 0), 149), ((0, 0, 255), 29)])
def test_rgb_to_luma_paper_known_values(rgb, luma):
    # floor of 76.245, 149.685, 29.07
    assert rgb_to_luma_paper(np.array([[rgb]], np.uint8))[0, 0] == luma


def test_rgb_to_luma_paper_gray_is_unchanged():
    gray = np.arange(256, dtype=np.uint8)[None, :]
    np.testing.assert_array_equal(rgb_to_luma_paper(gray), gray)


# --- protocols ----------------------------------------------------------------


def test_score_standard_perfect_and_types():
    image = _random((30, 40, 3), 11)
    score = score_standard(image, image, crop=4)
    assert isinstance(score, Score)
    assert score.psnr == math.inf
    assert score.ssim == pytest.approx(1.0, abs=1e-12)


def test_score_standard_rgb_is_scored_on_y_and_gray_is_taken_as_y():
    gt = _smooth((40, 41, 3), 12)
    restored = _noisy(gt, 13).astype(np.float64) + 0.3  # floats are rounded first
    y_gt, y_restored = rgb_to_y(gt), rgb_to_y(to_uint8(restored))
    expected = Score(psnr(y_restored, y_gt), ssim(y_restored, y_gt))
    assert score_standard(restored, gt) == expected
    # A Y-channel restorer returns (H, W) Y: taken as Y, compared with the RGB ground truth's Y.
    assert score_standard(y_restored, gt) == expected


def test_score_standard_crops_every_side():
    gt = _smooth((40, 41, 3), 14)
    restored = _noisy(gt, 15)
    restored[:4] = 0  # a ruined 4-pixel border does not count with crop=4
    restored[:, -4:] = 255
    inner = score_standard(restored[4:-4, 4:-4], gt[4:-4, 4:-4])
    assert score_standard(restored, gt, crop=4) == inner
    assert score_standard(restored, gt, crop=0).psnr < inner.psnr


def test_score_paper_deblur_matches_direct_computation():
    gt = _smooth((80, 90, 3), 16)
    restored = _noisy(gt, 17)
    lg = rgb_to_luma_paper(gt)[20:-20, 20:-20]
    lr = rgb_to_luma_paper(restored)[20:-20, 20:-20]
    data_range = float(lg.max()) - float(lg.min())
    expected_ssim = skimage_metrics.structural_similarity(lr, lg, data_range=data_range)
    score = score_paper_deblur(restored, gt)
    assert score.psnr == pytest.approx(psnr(lr, lg), abs=1e-12)
    assert score.ssim == pytest.approx(expected_ssim, abs=1e-10)


def test_score_paper_deblur_perfect_and_errors():
    gt = _smooth((60, 61, 3), 18)
    score = score_paper_deblur(gt, gt)
    assert score.psnr == math.inf
    assert score.ssim == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(PffError, match="RGB"):
        score_paper_deblur(gt[..., 0], gt[..., 0])
    flat = np.full((60, 61, 3), 7, np.uint8)
    with pytest.raises(PffError, match="constant"):
        score_paper_deblur(flat, flat)
