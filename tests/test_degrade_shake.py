"""Camera-shake, defocus and sensor-noise degradations (pff.degrade.shake)."""
from __future__ import annotations

import numpy as np
import pytest

from pff.degrade.shake import (
    CameraShake,
    defocus_kernel,
    poisson_gaussian_noise,
    rasterise_path,
    shake_kernel,
    shake_path,
)
from pff.errors import PffError


def _centroid(kernel: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(kernel.shape)
    return float((rows * kernel).sum()), float((cols * kernel).sum())


@pytest.mark.parametrize("seed", range(20))
def test_shake_kernels_are_non_negative_sum_to_one_and_are_centred(seed):
    kernel = shake_kernel(np.random.default_rng(seed), (3.0, 35.0))
    side = kernel.shape[0]
    assert side % 2 == 1 and kernel.shape == (side, side)
    assert kernel.min() >= 0
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    assert _centroid(kernel) == pytest.approx((side // 2, side // 2), abs=1e-9)


def test_path_has_the_asked_arc_length():
    for seed, length in enumerate((0.0, 3.0, 17.5, 35.0)):
        path = shake_path(np.random.default_rng(seed), length)
        assert np.linalg.norm(np.diff(path, axis=0), axis=1).sum() == pytest.approx(length, rel=1e-9, abs=1e-12)


def test_shake_paths_are_curved_unlike_lines():
    """Straightness = chord / arc length: 1 for a line. Real shake mostly bends."""
    straightness = []
    for seed in range(200):
        path = shake_path(np.random.default_rng(seed), 20.0)
        straightness.append(np.linalg.norm(path[-1] - path[0]) / 20.0)
    straightness = np.array(straightness)
    assert 0.3 < np.median(straightness) < 0.95
    assert (straightness < 0.9).mean() > 0.4  # a good share clearly curved
    assert (straightness > 0.5).mean() > 0.4  # and many still mostly in one direction


def test_kernel_length_statistics_follow_the_range():
    """The kernel's spatial extent grows with the drawn length and stays within the canvas it needs."""
    sides = [shake_kernel(np.random.default_rng(s), (30.0, 35.0)).shape[0] for s in range(30)]
    short = [shake_kernel(np.random.default_rng(s), (3.0, 5.0)).shape[0] for s in range(30)]
    assert max(short) <= 13 and min(sides) > max(short)
    assert max(sides) <= 2 * 35 + 3


def test_rasterise_a_straight_path_is_a_line_of_equal_weights():
    path = np.stack([np.linspace(-2, 2, 5), np.zeros(5)], axis=1)  # 5 samples on integer pixels
    kernel = rasterise_path(path)  # reach 2 + the bilinear neighbour: 7x7
    expected = np.zeros((7, 7))
    expected[3, 1:6] = 0.2
    np.testing.assert_allclose(kernel, expected, atol=1e-15)


def test_rasterise_is_sub_pixel_accurate():
    kernel = rasterise_path(np.array([[0.25, 0.0], [-0.25, 0.0]]), size=3)  # mean 0: two samples a quarter off
    np.testing.assert_allclose(kernel[1], [0.125, 0.75, 0.125], atol=1e-15)


def test_rasterise_errors():
    with pytest.raises(PffError, match="at least"):
        rasterise_path(np.array([[5.0, 0.0], [-5.0, 0.0]]), size=5)
    with pytest.raises(PffError, match="finite"):
        rasterise_path(np.array([[np.nan, 0.0]]))


def test_defocus_kernel_is_a_normalised_disk():
    kernel = defocus_kernel(4.0)
    assert kernel.shape == (9, 9) and kernel.sum() == pytest.approx(1.0)
    assert kernel[4, 4] == kernel.max() and kernel[0, 0] == 0.0
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
    assert defocus_kernel(0.0).shape == (1, 1)


def test_poisson_gaussian_noise_level_at_mid_grey_and_signal_dependence():
    rng = np.random.default_rng(0)
    grey = np.full((400, 400), 128.0)
    noisy = poisson_gaussian_noise(grey, 5.0, 0.5, rng)
    assert (noisy - grey).std() == pytest.approx(5.0, rel=0.02)
    dark = poisson_gaussian_noise(np.zeros((400, 400)), 5.0, 1.0, rng)
    assert np.all(dark == 0.0)  # pure shot noise vanishes in the black
    assert np.array_equal(poisson_gaussian_noise(grey, 0.0, 0.3, rng), grey)


def test_camera_shake_degradation_is_seeded_and_keeps_the_shape():
    clean = np.random.default_rng(0).integers(0, 256, (96, 80, 3)).astype(np.uint8)
    physics = CameraShake(jpeg_prob=0.5)
    a = physics(clean, np.random.default_rng([1, 2]))
    b = physics(clean, np.random.default_rng([1, 2]))
    assert a.shape == clean.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.all(a == np.round(a)) and a.min() >= 0 and a.max() <= 255
    assert physics.margin >= 36


def test_camera_shake_actually_blurs():
    """A sharp edge gets spread: the blurred image has less gradient energy (sum of squares) than the clean one."""
    clean = np.zeros((120, 120, 1))
    clean[:, 60:] = 255
    physics = CameraShake(shake=1, line=0, gaussian=0, defocus=0, length_range=(15, 20), noise_prob=0, varying_prob=0)
    out = physics(clean, np.random.default_rng(3))
    assert (np.diff(out[..., 0], axis=1) ** 2).sum() < 0.5 * (np.diff(clean[..., 0], axis=1) ** 2).sum()


@pytest.mark.parametrize("bad", [{"shake": -1}, {"noise_prob": 2}, {"length_range": (5, 1)}, {"noise_max": 99}])
def test_camera_shake_rejects_bad_settings(bad):
    with pytest.raises(PffError):
        CameraShake(**bad)
