"""Blur kernels, blurring, noise/quantisation and the ``MotionBlur`` degradation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage

from pff.degrade import (
    MotionBlur,
    add_gaussian_noise,
    blur,
    CameraShake,
    for_task,
    gaussian_kernel,
    motion_kernel,
    nonuniform_blur,
    quantize,
    random_masks,
    random_motion_kernel,
)
from pff.errors import PffError


def _moments(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (2,) and covariance (2, 2) of the kernel's mass, in (x right, y up) coordinates."""
    r = kernel.shape[0] // 2
    rows, cols = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    xy = np.stack([cols.ravel(), -rows.ravel()], axis=1)  # (K*K, 2)
    w = kernel.ravel()
    mean = w @ xy
    centred = xy - mean
    return mean, (centred * w[:, None]).T @ centred


def test_motion_kernel_odd_horizontal_is_the_authors_line():
    kernel = motion_kernel(5, 0.0, size=7)
    expected = np.zeros((7, 7))
    expected[3, 1:6] = 0.2
    np.testing.assert_allclose(kernel, expected, atol=1e-15)
    np.testing.assert_allclose(motion_kernel(5, 90.0, size=7), expected.T, atol=1e-12)


def test_motion_kernel_diagonal_and_delta():
    # A 45-degree segment of length 3*sqrt(2) crosses three pixels corner to corner.
    kernel = motion_kernel(3 * math.sqrt(2), 45.0, size=5)
    expected = np.zeros((5, 5))
    expected[[3, 2, 1], [1, 2, 3]] = 1 / 3  # up and to the right
    np.testing.assert_allclose(kernel, expected, atol=1e-9)
    for length, angle in [(0, 10.0), (1, 0.0), (0.9, 37.0)]:
        delta = np.zeros((5, 5))
        delta[2, 2] = 1
        np.testing.assert_allclose(motion_kernel(length, angle, size=5), delta, atol=1e-12)


@pytest.mark.parametrize("length", [3, 7, 11.5, 16, 23, 25])
@pytest.mark.parametrize("angle", [0.0, 13.0, 30.0, 45.0, 62.5, 90.0, 121.0, 168.0])
def test_motion_kernel_second_moments(length, angle):
    kernel = motion_kernel(length, angle, size=25)
    assert kernel.shape == (25, 25)
    assert kernel.min() >= 0 and kernel.sum() == pytest.approx(1.0, abs=1e-12)
    mean, cov = _moments(kernel)
    np.testing.assert_allclose(mean, 0.0, atol=1e-9)  # centred on the middle pixel
    theta = math.radians(angle)
    along = np.array([math.cos(theta), math.sin(theta)])
    across = np.array([-along[1], along[0]])
    assert along @ cov @ along == pytest.approx(length**2 / 12, abs=0.35)
    assert across @ cov @ across < 0.13
    _, vectors = np.linalg.eigh(cov)
    principal = math.degrees(math.atan2(vectors[1, 1], vectors[0, 1])) % 180
    error = abs(principal - angle % 180)
    assert min(error, 180 - error) < math.degrees(math.atan(1.2 / length))


def test_motion_kernel_is_point_symmetric_and_periodic_in_180():
    kernel = motion_kernel(14.3, 28.0, size=25)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-12)
    np.testing.assert_allclose(motion_kernel(14.3, 208.0, size=25), kernel, atol=1e-12)


def test_motion_kernel_errors():
    with pytest.raises(PffError, match="odd positive kernel size"):
        motion_kernel(5, 0.0, size=24)
    with pytest.raises(PffError, match=r"motion length in \[0, 25\]"):
        motion_kernel(26, 0.0)
    with pytest.raises(PffError, match="motion length"):
        motion_kernel(-1, 0.0)
    with pytest.raises(PffError, match="finite angle"):
        motion_kernel(5, float("nan"))


def test_random_motion_kernel_is_seeded():
    a = random_motion_kernel(np.random.default_rng(7))
    b = random_motion_kernel(np.random.default_rng(7))
    c = random_motion_kernel(np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (25, 25) and a.sum() == pytest.approx(1.0)


def test_random_motion_kernel_odd_lengths():
    rng = np.random.default_rng(0)
    for _ in range(20):
        kernel = random_motion_kernel(rng, size=9, length_range=(1, 9), angle_range=(0, 0))
        row = kernel[4]
        assert row.sum() == pytest.approx(1.0) and np.count_nonzero(row) % 2 == 1
    with pytest.raises(PffError, match="no odd integer"):
        random_motion_kernel(rng, length_range=(2, 2))


def test_gaussian_kernel():
    kernel = gaussian_kernel(1.0, 15)
    assert kernel.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(kernel, kernel.T)
    _, cov = _moments(kernel)
    np.testing.assert_allclose(cov, np.eye(2), atol=1e-6)
    with pytest.raises(PffError, match="sigma > 0"):
        gaussian_kernel(0.0, 5)


def test_blur_with_a_delta_returns_the_input():
    image = np.random.default_rng(0).uniform(0, 255, size=(13, 17, 3))
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    np.testing.assert_allclose(blur(image, delta), image, atol=1e-9)


def test_blur_equals_scipy_convolve_with_reflect():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, size=(19, 23, 2))
    kernel = rng.uniform(size=(5, 3))  # not symmetric: checks the flip
    out = blur(image, kernel)
    for c in range(2):
        reference = scipy.ndimage.convolve(image[:, :, c], kernel, mode="reflect")
        np.testing.assert_allclose(out[:, :, c], reference, atol=1e-9)


def test_blur_valid_mode_is_the_interior():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, size=(20, 21))
    kernel = motion_kernel(7, 30.0, size=9)
    valid = blur(image, kernel, mode="valid")
    assert valid.shape == (12, 13)
    np.testing.assert_allclose(valid, blur(image, kernel)[4:-4, 4:-4], atol=1e-9)


def test_blur_keeps_constants_and_errors():
    image = np.full((11, 9), 42.0)
    np.testing.assert_allclose(blur(image, motion_kernel(9, 70.0, size=11)), 42.0, atol=1e-9)
    with pytest.raises(PffError, match="odd sides"):
        blur(image, np.ones((4, 3)))
    with pytest.raises(PffError, match="blur mode"):
        blur(image, np.ones((3, 3)), mode="wrap")


def test_nonuniform_blur_with_equal_kernels_is_uniform_blur():
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, size=(24, 20, 3))
    kernel = motion_kernel(9, 20.0, size=11)
    masks = random_masks(rng, (24, 20), 3, scale=8.0)
    out = nonuniform_blur(image, np.stack([kernel] * 3), masks)
    np.testing.assert_allclose(out, blur(image, kernel), atol=1e-9)


def test_nonuniform_blur_one_hot_masks_pick_each_kernel():
    rng = np.random.default_rng(4)
    image = rng.uniform(0, 255, size=(16, 16))
    kernels = np.stack([motion_kernel(7, 0.0, size=9), motion_kernel(7, 90.0, size=9)])
    masks = np.zeros((2, 16, 16))
    masks[0, :, :8] = 1
    masks[1, :, 8:] = 1
    out = nonuniform_blur(image, kernels, masks)
    np.testing.assert_allclose(out[:, :8], blur(image, kernels[0])[:, :8], atol=1e-9)
    np.testing.assert_allclose(out[:, 8:], blur(image, kernels[1])[:, 8:], atol=1e-9)
    with pytest.raises(PffError, match="sum to 1"):
        nonuniform_blur(image, kernels, masks * 0.5)


def test_random_masks_are_smooth_weights():
    masks = random_masks(np.random.default_rng(5), (40, 50), 4, scale=32.0)
    assert masks.shape == (4, 40, 50)
    assert masks.min() >= 0
    np.testing.assert_allclose(masks.sum(axis=0), 1.0, atol=1e-12)
    assert np.abs(np.diff(masks, axis=1)).max() < 0.2  # smooth: no jumps between neighbours
    assert masks.max() - masks.min() > 0.3  # but they do vary
    again = random_masks(np.random.default_rng(5), (40, 50), 4, scale=32.0)
    np.testing.assert_array_equal(masks, again)


def test_random_masks_are_the_softmax_of_random_fourier_features():
    # The definition, term by term: sum_f cos(w_f . (y, x) + phase_f), from the same draws.
    count, features, scale, sharpness, (h, w) = 3, 16, 12.0, 2.0, (9, 14)
    rng = np.random.default_rng(2)
    freq = rng.normal(0.0, 1.0 / scale, size=(count, features, 2))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(count, features))
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    fields = np.zeros((count, h, w))
    for i in range(count):
        for f in range(features):
            fields[i] += np.cos(freq[i, f, 0] * yy + freq[i, f, 1] * xx + phase[i, f])
    logits = sharpness * np.sqrt(2.0 / features) * fields
    expected = np.exp(logits) / np.exp(logits).sum(axis=0)
    got = random_masks(np.random.default_rng(2), (h, w), count, scale=scale, sharpness=sharpness, features=features)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_noise_and_quantize():
    image = np.full((8, 8), 100.0)
    noisy = add_gaussian_noise(image, 5.0, np.random.default_rng(0))
    np.testing.assert_array_equal(noisy, add_gaussian_noise(image, 5.0, np.random.default_rng(0)))
    assert 2.0 < noisy.std() < 8.0
    np.testing.assert_array_equal(add_gaussian_noise(image, 0.0, np.random.default_rng(0)), image)
    q = quantize(np.array([-3.0, 0.49, 0.5, 254.5, 300.0]))
    assert q.dtype == np.float32
    np.testing.assert_array_equal(q, [0, 0, 1, 255, 255])


@pytest.mark.parametrize(
    "degradation",
    [
        MotionBlur(),
        MotionBlur(nonuniform_prob=1.0, mask_scale=16.0, noise_sigma=(0.0, 5.0)),
        MotionBlur(size=31, length_range=(1, 30), odd_lengths=False, gaussian_prob=0.5),
    ],
)
def test_motion_blur_is_seeded_and_quantised(degradation):
    clean = np.random.default_rng(0).integers(0, 256, size=(45, 37, 3), dtype=np.uint8)
    a = degradation(clean, np.random.default_rng(1))
    b = degradation(clean, np.random.default_rng(1))
    c = degradation(clean, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == clean.shape and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 255 and np.array_equal(a, np.round(a))
    # float input in [0, 255] gives the same result as uint8
    np.testing.assert_array_equal(degradation(clean.astype(np.float32), np.random.default_rng(1)), a)


def test_motion_blur_margin_hides_the_crop_border():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(70, 70, 3), dtype=np.uint8)
    degradation = MotionBlur()
    m = degradation.margin
    assert m == 12
    whole = degradation(image, np.random.default_rng(9))
    crop = degradation(image[5:65, 7:67], np.random.default_rng(9))  # same seed, same kernel
    np.testing.assert_array_equal(crop[m:-m, m:-m], whole[5 + m : 65 - m, 7 + m : 67 - m])


def test_motion_blur_parameter_errors():
    with pytest.raises(PffError, match="gaussian_prob"):
        MotionBlur(gaussian_prob=1.5)
    with pytest.raises(PffError, match="length_range"):
        MotionBlur(length_range=(1, 40))
    with pytest.raises(PffError, match="kernels_range"):
        MotionBlur(kernels_range=(0, 2))
    with pytest.raises(PffError, match=r"\(H, W, C\)"):
        MotionBlur()(np.zeros((8, 8)), np.random.default_rng(0))


def test_for_task():
    assert for_task("deblur") == MotionBlur()
    assert for_task("deblur", size=31, length_range=[1, 30]).length_range == (1.0, 30.0)
    assert for_task("sr").margin == 16
    assert for_task("jpeg", quality=10).quality == 10
    with pytest.raises(PffError, match="unknown task 'denoise'; expected one of deblur, jpeg, sr"):
        for_task("denoise")
    with pytest.raises(PffError, match="unknown parameter.*qualty.*quality"):
        for_task("jpeg", qualty=10)


def test_for_task_physics_names_another_degradation_of_the_task():
    shake = for_task("deblur", physics="CameraShake", noise_max=2.55, length_range=[5, 30])
    assert isinstance(shake, CameraShake) and shake.noise_max == 2.55 and shake.length_range == (5.0, 30.0)
    assert for_task("deblur", physics="MotionBlur") == MotionBlur()  # the default, named
    with pytest.raises(PffError, match="unknown physics 'Shake' for task 'deblur'; expected one of MotionBlur, CameraShake"):
        for_task("deblur", physics="Shake")
    with pytest.raises(PffError, match="unknown physics 'CameraShake' for task 'sr'; expected one of Bicubic"):
        for_task("sr", physics="CameraShake")
    with pytest.raises(PffError, match=r"unknown parameter\(s\) size for task 'deblur' \(CameraShake\)"):
        for_task("deblur", physics="CameraShake", size=31)  # a MotionBlur field
