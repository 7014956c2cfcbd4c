"""Blur kernels, uniform and non-uniform blurring, and the ``MotionBlur`` degradation.

Kernels are point spread functions on an odd square canvas, centred on the
canvas's middle pixel, non-negative and summing to 1. Coordinates: x grows to
the right (columns), y grows downwards (rows); angles are counter-clockwise
as seen on screen, measured from the +x axis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pff.degrade.noise import add_gaussian_noise
from pff.degrade.quantize import check_pixels, quantize
from pff.errors import PffError

BLUR_MODES = ("reflect", "valid")


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
        raise PffError(f"expected an odd positive kernel size, got {size!r}")
    return int(size)


def motion_kernel(length: float, angle_deg: float, *, size: int = 25) -> np.ndarray:
    """Linear motion blur: a centred line segment of ``length`` pixels at ``angle_deg``.

    Each pixel's weight is the length of the segment that lies inside that
    pixel's square, i.e. the time a point moving at constant speed along the
    segment spends over the pixel (a box-filtered, anti-aliased thin line with
    sub-pixel ends). At 0 degrees and an odd integer length this is the
    authors' kernel exactly: ``length`` pixels of weight 1 / length in a row.
    Its second moments are those of the segment up to pixel quantisation:
    variance length**2 / 12 along the angle (within 0.35 px**2) and ~0 across
    (below 0.13 px**2); the principal axis is within ~atan(1 / length) of the
    angle, exact at multiples of 45 degrees.

    Args:
        length: segment length in pixels, 0 <= length <= size (0 or any
            length inside the centre pixel gives a delta).
        angle_deg: direction in degrees; angle and angle + 180 are the same.
        size: odd canvas side.

    Returns:
        (size, size) float64, non-negative, sums to 1, point-symmetric about
        the centre pixel.
    """
    size = _check_size(size)
    if not (isinstance(length, (int, float, np.number)) and math.isfinite(length)) or not 0 <= length <= size:
        raise PffError(f"expected a motion length in [0, {size}] (the canvas size), got {length!r}")
    if not (isinstance(angle_deg, (int, float, np.number)) and math.isfinite(angle_deg)):
        raise PffError(f"expected a finite angle in degrees, got {angle_deg!r}")
    r = size // 2
    kernel = np.zeros((size, size))
    if length == 0:
        kernel[r, r] = 1.0
        return kernel
    theta = math.radians(angle_deg)
    direction = np.array([math.cos(theta), -math.sin(theta)])  # (x, y); y points down
    start, end = -0.5 * length * direction, 0.5 * length * direction
    # Split the segment where it crosses pixel borders (x or y = k + 1/2).
    borders = np.arange(-r, r + 2) - 0.5
    cuts = [np.array([0.0, 1.0])]
    for axis in (0, 1):
        delta = end[axis] - start[axis]
        if abs(delta) > 1e-12:
            t = (borders - start[axis]) / delta
            cuts.append(t[(t > 0) & (t < 1)])
    t = np.unique(np.concatenate(cuts))
    middle = 0.5 * (t[:-1] + t[1:])
    points = start + middle[:, None] * (end - start)  # (pieces, 2) as (x, y)
    cols = np.clip(np.floor(points[:, 0] + 0.5).astype(np.int64) + r, 0, size - 1)
    rows = np.clip(np.floor(points[:, 1] + 0.5).astype(np.int64) + r, 0, size - 1)
    np.add.at(kernel, (rows, cols), np.diff(t))
    return kernel / kernel.sum()


def gaussian_kernel(sigma: float, size: int = 25) -> np.ndarray:
    """Sampled isotropic Gaussian (like MATLAB ``fspecial('gaussian', size, sigma)``).

    Returns:
        (size, size) float64, sums to 1.
    """
    size = _check_size(size)
    if not (isinstance(sigma, (int, float, np.number)) and math.isfinite(sigma)) or sigma <= 0:
        raise PffError(f"expected a Gaussian sigma > 0, got {sigma!r}")
    x = np.arange(size) - size // 2
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    kernel = np.outer(g, g)
    return kernel / kernel.sum()


def _check_range(name: str, value: Sequence[float], low: float, high: float) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise PffError(f"expected {name} as (low, high), got {value!r}") from None
    if not (low <= lo <= hi <= high):
        raise PffError(f"expected {name} with {low} <= low <= high <= {high}, got {value!r}")
    return lo, hi


def random_motion_kernel(
    rng: np.random.Generator,
    *,
    size: int = 25,
    length_range: tuple[float, float] = (1, 23),
    angle_range: tuple[float, float] = (0.0, 180.0),
    odd_lengths: bool = True,
) -> np.ndarray:
    """A random :func:`motion_kernel`: uniform angle in ``angle_range`` (degrees) and length.

    With ``odd_lengths`` the length is a uniform odd integer in
    ``length_range`` (the authors' recipe: 1, 3, ..., 23); otherwise it is
    uniform real in ``length_range``.

    Returns:
        (size, size) float64 summing to 1.
    """
    size = _check_size(size)
    lo, hi = _check_range("length_range", length_range, 0.0, float(size))
    if odd_lengths:
        odd = np.arange(math.ceil(lo), math.floor(hi) + 1)
        odd = odd[odd % 2 == 1]
        if odd.size == 0:
            raise PffError(f"length_range {length_range!r} holds no odd integer length")
        length = float(rng.choice(odd))
    else:
        length = float(rng.uniform(lo, hi))
    angle = float(rng.uniform(*_check_range("angle_range", angle_range, -math.inf, math.inf)))
    return motion_kernel(length, angle, size=size)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise PffError(f"expected an (H, W) or (H, W, C) image, got shape {tuple(image.shape)}")
    return image.astype(np.float64)


def _check_kernel(kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise PffError(f"expected a 2-D kernel with odd sides, got shape {tuple(kernel.shape)}")
    if not np.all(np.isfinite(kernel)):
        raise PffError("expected a finite kernel, got NaN or inf values")
    return kernel


def blur(image: np.ndarray, kernel: np.ndarray, *, mode: str = "reflect") -> np.ndarray:
    """Convolve every channel of ``image`` with ``kernel`` (the blur's point spread function).

    Args:
        image: (H, W) or (H, W, C), values in any range.
        kernel: (kh, kw) with odd sides; it is flipped (true convolution), which
            only matters for kernels that are not point-symmetric.
        mode: ``"reflect"`` mirrors the image at its border (``d c b a | a b c d``,
            scipy.ndimage's "reflect", MATLAB's "symmetric") and keeps the size;
            ``"valid"`` keeps only pixels whose whole footprint lies inside,
            (H - kh + 1, W - kw + 1).

    Returns:
        float64, neither clipped nor rounded.
    """
    image = _check_image(image)
    kernel = _check_kernel(kernel)
    if mode not in BLUR_MODES:
        raise PffError(f"expected a blur mode in {BLUR_MODES}, got {mode!r}")
    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    if mode == "reflect":
        pad = ((ry, ry), (rx, rx)) + ((0, 0),) * (image.ndim - 2)
        image = np.pad(image, pad, mode="symmetric")
    elif image.shape[0] < kernel.shape[0] or image.shape[1] < kernel.shape[1]:
        raise PffError(f"image {image.shape[:2]} is smaller than the kernel {kernel.shape} in 'valid' mode")
    import scipy.signal  # slow to import (~0.7 s); only blurring needs it

    if image.ndim == 3:
        kernel = kernel[:, :, None]
    return scipy.signal.fftconvolve(image, kernel, mode="valid", axes=(0, 1))


def nonuniform_blur(
    image: np.ndarray, kernels: np.ndarray, masks: np.ndarray, *, mode: str = "reflect"
) -> np.ndarray:
    """Spatially varying blur: pixel p is blurred by sum_i masks[i, p] * kernels[i].

    Computed as sum_i masks[i] * blur(image, kernels[i]), so each output pixel
    is one linear filter of its neighbourhood, a convex mix of the kernels:
    exactly the per-pixel filter model that PFF inverts.

    Args:
        image: (H, W) or (H, W, C).
        kernels: (N, kh, kw) with odd sides.
        masks: (N, H', W') non-negative, summing to 1 at every pixel; (H', W')
            is the output size of ``mode`` (the image size for "reflect").

    Returns:
        float64 of the output size, with the image's channels.
    """
    kernels = np.asarray(kernels, dtype=np.float64)
    masks = np.asarray(masks, dtype=np.float64)
    if kernels.ndim != 3 or masks.ndim != 3 or kernels.shape[0] != masks.shape[0]:
        raise PffError(
            f"expected kernels (N, kh, kw) and masks (N, H, W) with the same N,"
            f" got {tuple(kernels.shape)} and {tuple(masks.shape)}"
        )
    if np.any(masks < 0) or not np.allclose(masks.sum(axis=0), 1.0, atol=1e-6):
        raise PffError("expected masks that are non-negative and sum to 1 at every pixel")
    out = None
    for kernel, mask in zip(kernels, masks):
        blurred = blur(image, kernel, mode=mode)
        if blurred.shape[:2] != mask.shape:
            raise PffError(f"expected masks of the output size {blurred.shape[:2]}, got {mask.shape}")
        term = blurred * (mask[:, :, None] if blurred.ndim == 3 else mask)
        out = term if out is None else out + term
    return out


def random_masks(
    rng: np.random.Generator,
    shape: tuple[int, int],
    count: int,
    *,
    scale: float = 64.0,
    sharpness: float = 2.0,
    features: int = 16,
) -> np.ndarray:
    """Smooth random blending weights for :func:`nonuniform_blur`.

    Each of ``count`` fields is a smooth Gaussian random field with unit
    variance and correlation length ~``scale`` pixels (random Fourier
    features of a squared-exponential kernel); a softmax over the fields with
    ``sharpness`` turns them into weights.

    Returns:
        (count, H, W) float64, non-negative, summing to 1 at every pixel.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise PffError(f"expected a positive number of masks, got {count!r}")
    if not scale > 0 or not sharpness >= 0:
        raise PffError(f"expected scale > 0 and sharpness >= 0, got {scale!r} and {sharpness!r}")
    h, w = shape
    freq = rng.normal(0.0, 1.0 / scale, size=(count, features, 2))  # rad / px
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(count, features))
    y = np.arange(h, dtype=np.float64)
    x = np.arange(w, dtype=np.float64)
    # sum_f cos(fy*y + fx*x + phase) as one matrix product per field: cos(a + b) = cos a cos b - sin a sin b
    # separates rows from columns ((count, H, 2F) @ (count, 2F, W); the (count, F, H, W) cosines were 90% of a call).
    rows = freq[:, :, 0, None] * y + phase[:, :, None]  # (count, F, H)
    cols = freq[:, :, 1, None] * x  # (count, F, W)
    left = np.concatenate([np.cos(rows), -np.sin(rows)], axis=1).transpose(0, 2, 1)  # (count, H, 2F)
    right = np.concatenate([np.cos(cols), np.sin(cols)], axis=1)  # (count, 2F, W)
    fields = math.sqrt(2.0 / features) * (left @ right)  # (count, H, W)
    logits = sharpness * fields
    logits -= logits.max(axis=0, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=0, keepdims=True)


def _as_sigma_range(value: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        value = (value, value)
    return _check_range("noise_sigma", value, 0.0, 255.0)


@dataclass(frozen=True)
class MotionBlur:
    """Random blur of clean images, by default the authors' training recipe.

    Per call: with probability ``gaussian_prob`` a Gaussian kernel with sigma
    uniform in ``sigma_range``, otherwise a :func:`random_motion_kernel`; with
    probability ``nonuniform_prob`` a non-uniform blur that blends a number
    (uniform in ``kernels_range``) of such kernels with :func:`random_masks`;
    then Gaussian noise (sigma uniform in ``noise_sigma`` if a range, in
    [0, 255] units) and 8-bit quantisation. The defaults (97% linear motion of
    odd length 1-23 px on a 25x25 canvas, 3% Gaussian, one kernel, no noise)
    are the authors' released code; the paper's text says 30x30 and 1-30 px
    (use ``size=31, length_range=(1, 30)``).
    """

    size: int = 25
    length_range: tuple[float, float] = (1, 23)
    odd_lengths: bool = True
    gaussian_prob: float = 0.03
    sigma_range: tuple[float, float] = (0.5, 2.0)
    nonuniform_prob: float = 0.0
    kernels_range: tuple[int, int] = (2, 4)
    mask_scale: float = 64.0
    noise_sigma: float | tuple[float, float] = 0.0

    def __post_init__(self) -> None:
        _check_size(self.size)
        set_ = object.__setattr__  # normalise lists to tuples on a frozen dataclass
        set_(self, "length_range", _check_range("length_range", self.length_range, 0.0, float(self.size)))
        set_(self, "sigma_range", _check_range("sigma_range", self.sigma_range, 1e-6, math.inf))
        lo, hi = _check_range("kernels_range", self.kernels_range, 1, math.inf)
        if lo != int(lo) or hi != int(hi):
            raise PffError(f"expected integer kernels_range, got {self.kernels_range!r}")
        set_(self, "kernels_range", (int(lo), int(hi)))
        for name in ("gaussian_prob", "nonuniform_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise PffError(f"expected {name} in [0, 1], got {p!r}")
        if not self.mask_scale > 0:
            raise PffError(f"expected mask_scale > 0, got {self.mask_scale!r}")
        sigma = _as_sigma_range(self.noise_sigma)
        set_(self, "noise_sigma", sigma[0] if sigma[0] == sigma[1] else sigma)
        if self.odd_lengths:  # fail now rather than on the first sample
            random_motion_kernel(np.random.default_rng(0), size=self.size, length_range=self.length_range)

    @property
    def margin(self) -> int:
        """Context pixels a clean crop needs on each side: the kernel radius."""
        return self.size // 2

    @property
    def channels(self) -> int | None:
        """Any channel count: every channel gets the same blur."""
        return None

    def sample_kernel(self, rng: np.random.Generator) -> np.ndarray:
        """One kernel of the recipe: (size, size) float64 summing to 1."""
        if rng.random() < self.gaussian_prob:
            return gaussian_kernel(float(rng.uniform(*self.sigma_range)), self.size)
        return random_motion_kernel(
            rng, size=self.size, length_range=self.length_range, odd_lengths=self.odd_lengths
        )

    def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, C) uint8 or float in [0, 255] -> blurred (H, W, C) float32 with integer values."""
        image = check_pixels(clean, self.channels, "MotionBlur")
        if rng.random() < self.nonuniform_prob:
            count = int(rng.integers(self.kernels_range[0], self.kernels_range[1] + 1))
            kernels = np.stack([self.sample_kernel(rng) for _ in range(count)])
            masks = random_masks(rng, image.shape[:2], count, scale=self.mask_scale)
            blurred = nonuniform_blur(image, kernels, masks)
        else:
            blurred = blur(image, self.sample_kernel(rng))
        lo, hi = _as_sigma_range(self.noise_sigma)
        if hi > 0:
            blurred = add_gaussian_noise(blurred, float(rng.uniform(lo, hi)), rng)
        return quantize(blurred)
