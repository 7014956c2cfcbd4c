"""Real camera shake: curved, jerky motion paths, defocus and sensor noise (seeded).

People's shaky photos are not blurred by the centred straight lines of the
paper's training recipe (``MotionBlur``). A hand-held camera follows a random
path during the exposure: its velocity changes smoothly (inertia) with
occasional jerks, and the path differs across the frame when the camera also
rotates. Here:

- :func:`shake_path` draws such a path (a random walk of the velocity with
  inertia and sudden impulses) and scales it to a given arc length;
- :func:`rasterise_path` integrates the path over the exposure onto a pixel
  grid with sub-pixel (bilinear) accuracy, centred on its centroid;
- :func:`defocus_kernel` is an anti-aliased disk;
- :func:`poisson_gaussian_noise` is signal-dependent sensor noise;
- :class:`CameraShake` mixes them (and the authors' lines) into one
  degradation with the :class:`pff.degrade.Degradation` interface, spatially
  varying for a share of the images (kernels blended by smooth masks).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pff.degrade.blur import _check_range, blur, gaussian_kernel, nonuniform_blur, random_masks, random_motion_kernel
from pff.degrade.jpeg import jpeg_roundtrip
from pff.degrade.quantize import check_pixels, quantize
from pff.errors import PffError

# Sub-steps of the exposure a path is integrated over: enough that neighbouring
# samples of the longest path are well under a pixel apart.
_SAMPLES = 512


def shake_path(
    rng: np.random.Generator, length: float, *, inertia: float = 0.98, jerk_prob: float = 0.02, jerk_size: float = 3.0
) -> np.ndarray:
    """A camera-shake path: ``(_SAMPLES, 2)`` float64 (x, y) positions in pixels, of arc length ``length``.

    The velocity follows ``v_t = inertia * v_{t-1} + (1 - inertia) * g_t`` with
    ``g_t`` standard normal, plus with probability ``jerk_prob`` per step an
    impulse ``jerk_size`` times larger (a sudden twitch); positions are its
    running sum, scaled so the whole path is ``length`` pixels long. With the
    default inertia the chord spans about 0.6 of the arc (median; 0.3-0.8
    for the middle 80%): curved, sometimes hooked, rarely a line.
    """
    if not (math.isfinite(length) and length >= 0):
        raise PffError(f"expected a path length >= 0, got {length!r}")
    if not 0.0 <= inertia < 1.0 or not 0.0 <= jerk_prob <= 1.0:
        raise PffError(f"expected inertia in [0, 1) and jerk_prob in [0, 1], got {inertia!r}, {jerk_prob!r}")
    v = rng.normal(size=2)  # start moving in a random direction
    steps = np.empty((_SAMPLES - 1, 2))
    for t in range(_SAMPLES - 1):
        kick = rng.normal(size=2) * (jerk_size if rng.random() < jerk_prob else 1.0)
        v = inertia * v + (1.0 - inertia) * kick
        steps[t] = v
    arc = np.linalg.norm(steps, axis=1).sum()
    steps *= length / arc if arc > 0 else 0.0
    return np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])  # (_SAMPLES, 2)


def rasterise_path(path: np.ndarray, size: int | None = None) -> np.ndarray:
    """The blur kernel of a path: equal exposure at every sample, splatted bilinearly.

    Args:
        path: (N, 2) float (x, y) positions in pixels.
        size: odd side of the kernel; default the smallest odd side that holds the path.

    Returns:
        (size, size) float64, non-negative, summing to 1, whose centroid is
        exactly the centre pixel (the path is shifted by its mean first, and
        bilinear splatting keeps the mean position).
    """
    points = np.asarray(path, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0 or not np.all(np.isfinite(points)):
        raise PffError(f"expected an (N, 2) array of finite positions, got shape {points.shape}")
    points = points - points.mean(axis=0)
    reach = int(math.floor(np.abs(points).max())) + 1
    if size is None:
        size = 2 * reach + 1
    if size % 2 == 0 or size < 2 * reach + 1:
        raise PffError(f"kernel size must be odd and at least {2 * reach + 1} for this path, got {size}")
    c = size // 2
    kernel = np.zeros((size, size))
    x0, y0 = np.floor(points[:, 0]), np.floor(points[:, 1])
    fx, fy = points[:, 0] - x0, points[:, 1] - y0
    cols, rows = x0.astype(int) + c, y0.astype(int) + c
    weight = 1.0 / len(points)
    for dr, dc, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        np.add.at(kernel, (rows + dr, cols + dc), w * weight)
    return kernel


def shake_kernel(rng: np.random.Generator, length_range: tuple[float, float] = (3.0, 35.0), **path_options: float) -> np.ndarray:
    """A random camera-shake kernel: a :func:`shake_path` of arc length uniform in ``length_range``, rasterised."""
    lo, hi = _check_range("length_range", length_range, 0.0, 200.0)
    return rasterise_path(shake_path(rng, float(rng.uniform(lo, hi)), **path_options))


def defocus_kernel(radius: float, size: int | None = None) -> np.ndarray:
    """An out-of-focus disk of ``radius`` pixels, edge anti-aliased by 8x8 supersampling; sums to 1."""
    if not (math.isfinite(radius) and radius >= 0):
        raise PffError(f"expected a defocus radius >= 0, got {radius!r}")
    if size is None:
        size = 2 * int(math.ceil(radius)) + 1
    c, sub = size // 2, 8
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    grid = np.arange(size) - c
    yy = (grid[:, None, None, None] + offsets[None, None, :, None]) ** 2
    xx = (grid[None, :, None, None] + offsets[None, None, None, :]) ** 2
    kernel = ((yy + xx) <= max(radius, 0.5) ** 2).mean(axis=(2, 3))  # (size, size) covered fraction
    return kernel / kernel.sum()


def poisson_gaussian_noise(
    image: np.ndarray, sigma_mid: float, poisson_share: float, rng: np.random.Generator
) -> np.ndarray:
    """Signal-dependent sensor noise: variance ``a * x + b**2`` for x in [0, 255].

    ``sigma_mid`` is the noise standard deviation at mid-grey (x = 128) and
    ``poisson_share`` the part of its variance that is shot noise (``a * 128``);
    the rest is read noise (``b**2``). Returns float64, not clipped or rounded.
    """
    if not (math.isfinite(sigma_mid) and sigma_mid >= 0) or not 0.0 <= poisson_share <= 1.0:
        raise PffError(f"expected sigma_mid >= 0 and poisson_share in [0, 1], got {sigma_mid!r}, {poisson_share!r}")
    x = np.asarray(image, dtype=np.float64)
    a = poisson_share * sigma_mid**2 / 128.0
    b2 = (1.0 - poisson_share) * sigma_mid**2
    return x + np.sqrt(a * np.clip(x, 0.0, None) + b2) * rng.standard_normal(x.shape)


@dataclass(frozen=True)
class CameraShake:
    """Blur as people's photos have it: a mix of kernels, spatially varying for some images, then noise.

    Per call one kind is drawn with the weights ``shake`` (curved, jerky
    :func:`shake_kernel` of arc length in ``length_range``), ``line`` (the
    authors' centred straight lines, ``random_motion_kernel`` of odd length
    1-23 px), ``gaussian`` (sigma in ``sigma_range``) and ``defocus`` (radius in
    ``radius_range``); with probability ``varying_prob`` the image gets 2-4
    kernels of that kind blended by smooth masks of ``mask_scale`` pixels
    instead of one. Then with probability ``noise_prob`` Poisson-Gaussian noise
    whose mid-grey sigma is uniform in [0, ``noise_max``] (255 units), 8-bit
    quantisation, and with probability ``jpeg_prob`` a JPEG round trip at a
    quality in ``jpeg_range``.
    """

    shake: float = 0.6
    line: float = 0.25
    gaussian: float = 0.05
    defocus: float = 0.1
    length_range: tuple[float, float] = (3.0, 35.0)
    sigma_range: tuple[float, float] = (0.5, 3.0)
    radius_range: tuple[float, float] = (1.0, 6.0)
    varying_prob: float = 0.3
    mask_scale: float = 64.0
    noise_prob: float = 0.5
    noise_max: float = 5.0
    jpeg_prob: float = 0.0
    jpeg_range: tuple[int, int] = (60, 95)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        weights = (self.shake, self.line, self.gaussian, self.defocus)
        if min(weights) < 0 or sum(weights) <= 0:
            raise PffError(f"expected non-negative kind weights with a positive sum, got {weights}")
        set_(self, "length_range", _check_range("length_range", self.length_range, 0.0, 200.0))
        set_(self, "sigma_range", _check_range("sigma_range", self.sigma_range, 1e-6, 20.0))
        set_(self, "radius_range", _check_range("radius_range", self.radius_range, 0.0, 50.0))
        set_(self, "jpeg_range", tuple(int(q) for q in _check_range("jpeg_range", self.jpeg_range, 1, 100)))
        for name in ("varying_prob", "noise_prob", "jpeg_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise PffError(f"expected {name} in [0, 1], got {getattr(self, name)!r}")
        if not (self.mask_scale > 0 and 0 <= self.noise_max <= 50):
            raise PffError(f"expected mask_scale > 0 and noise_max in [0, 50], got {self.mask_scale}, {self.noise_max}")

    @property
    def margin(self) -> int:
        """Context pixels a clean crop needs on each side: the largest kernel radius any kind can draw."""
        return int(math.ceil(max(self.length_range[1], 3 * self.sigma_range[1], self.radius_range[1], 12))) + 1

    @property
    def channels(self) -> int | None:
        """Any channel count: every channel gets the same blur (JPEG needs 1 or 3)."""
        return None

    def sample_kernel(self, rng: np.random.Generator, kind: str) -> np.ndarray:
        """One kernel of ``kind``: odd-sided float64, non-negative, summing to 1."""
        if kind == "shake":
            return shake_kernel(rng, self.length_range)
        if kind == "line":
            return random_motion_kernel(rng, size=25, length_range=(1, 23), odd_lengths=True)
        if kind == "gaussian":
            sigma = float(rng.uniform(*self.sigma_range))
            return gaussian_kernel(sigma, 2 * int(math.ceil(3 * sigma)) + 1)
        return defocus_kernel(float(rng.uniform(*self.radius_range)))

    def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, C) uint8 or float in [0, 255] -> degraded (H, W, C) float32 with integer values."""
        image = check_pixels(clean, self.channels, "CameraShake")
        weights = np.array([self.shake, self.line, self.gaussian, self.defocus])
        kind = ("shake", "line", "gaussian", "defocus")[int(rng.choice(4, p=weights / weights.sum()))]
        if rng.random() < self.varying_prob:
            count = int(rng.integers(2, 5))
            kernels = pad_kernels([self.sample_kernel(rng, kind) for _ in range(count)])
            blurred = nonuniform_blur(image, kernels, random_masks(rng, image.shape[:2], count, scale=self.mask_scale))
        else:
            blurred = blur(image, self.sample_kernel(rng, kind))
        if rng.random() < self.noise_prob:
            blurred = poisson_gaussian_noise(blurred, float(rng.uniform(0, self.noise_max)), float(rng.random()), rng)
        degraded = quantize(blurred)
        if rng.random() < self.jpeg_prob and image.shape[2] in (1, 3):
            quality = int(rng.integers(self.jpeg_range[0], self.jpeg_range[1] + 1))
            pixels = degraded.astype(np.uint8)
            coded = jpeg_roundtrip(pixels[..., 0] if pixels.shape[2] == 1 else pixels, quality)
            degraded = coded.reshape(degraded.shape).astype(np.float32)
        return degraded


def pad_kernels(kernels: list[np.ndarray]) -> np.ndarray:
    """Zero-pad odd-sided kernels to the largest side (centres kept): (N, S, S)."""
    side = max(k.shape[0] for k in kernels)
    out = np.zeros((len(kernels), side, side))
    for i, k in enumerate(kernels):
        o = (side - k.shape[0]) // 2
        out[i, o : o + k.shape[0], o : o + k.shape[1]] = k
    return out
