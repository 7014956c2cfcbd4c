"""Image quality metrics and the scoring protocols of ../shared/PROTOCOL.md.

Pure functions on numpy arrays; every value is computed in float64 and
returned per image (a dataset score is the mean of per-image values).

Two SSIM definitions are needed:

- :func:`ssim`, Wang et al. 2004 as in their reference MATLAB code and in the
  SR/JPEG literature: 11x11 Gaussian window (sigma 1.5), population
  statistics, only windows fully inside the image ('valid'), mean of the map.
- :func:`ssim_skimage_default`, what scikit-image ``structural_similarity``
  computes with its defaults (7x7 uniform window, sample covariance, map
  computed everywhere with reflected borders and averaged over the interior).
  The official PFF deblurring code scored with it ("paper protocol").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pff.color import rgb_to_luma_paper, rgb_to_y, to_uint8
from pff.errors import PffError

_K1, _K2 = 0.01, 0.03
_GAUSS_SIZE, _GAUSS_SIGMA = 11, 1.5
_UNIFORM_SIZE = 7
# The official PFF deblurring evaluation crops this many pixels on every side.
PAPER_DEBLUR_CROP = 20


@dataclass(frozen=True)
class Score:
    """PSNR (dB) and SSIM of one restored image against its ground truth."""

    psnr: float
    ssim: float


def _pair(a: np.ndarray, b: np.ndarray, *, ndim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 after checking that their shapes agree."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"expected {ndim}-D (H, W) images, got shape {a.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, *, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio 10 log10(peak^2 / MSE) in dB.

    a, b: arrays of the same shape, any dtype, values on the scale of ``peak``.
    Returns ``inf`` for identical images.
    """
    a, b = _pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak**2 / mse))


def _gaussian_window_1d(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian; its outer product is MATLAB's fspecial('gaussian', size, sigma)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    w = np.exp(-(x**2) / (2.0 * sigma**2))
    return w / w.sum()


def _ssim_map(mx, my, sxx, syy, sxy, data_range: float) -> np.ndarray:
    """The SSIM map from local means, (co)variances and the dynamic range."""
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    num = (2.0 * mx * my + c1) * (2.0 * sxy + c2)
    den = (mx**2 + my**2 + c1) * (sxx + syy + c2)
    return num / den


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0) -> float:
    """SSIM of Wang et al. 2004, as in their reference code (PROTOCOL.md "Common rules").

    a, b: (H, W) grayscale images of the same shape, H and W >= 11, values on
    the scale of ``data_range``. 11x11 Gaussian window with sigma 1.5,
    population statistics, only windows fully inside the image, C1 =
    (0.01 L)^2, C2 = (0.03 L)^2; returns the mean of the SSIM map.
    """
    a, b = _pair(a, b, ndim=2)
    if min(a.shape) < _GAUSS_SIZE:
        raise ValueError(f"SSIM needs images of at least {_GAUSS_SIZE}x{_GAUSS_SIZE}, got {a.shape}")
    window = _gaussian_window_1d(_GAUSS_SIZE, _GAUSS_SIGMA)
    r = _GAUSS_SIZE // 2
    stack = np.stack([a, b, a * a, b * b, a * b])  # (5, H, W)
    # A separable correlation, then keep only the centres of windows fully inside the image.
    stack = ndimage.correlate1d(stack, window, axis=1, mode="nearest")[:, r : a.shape[0] - r]
    stack = ndimage.correlate1d(stack, window, axis=2, mode="nearest")[:, :, r : a.shape[1] - r]
    mx, my, mxx, myy, mxy = stack  # each (H - 10, W - 10)
    smap = _ssim_map(mx, my, mxx - mx * mx, myy - my * my, mxy - mx * my, data_range)
    return float(smap.mean())


def ssim_skimage_default(a: np.ndarray, b: np.ndarray, *, data_range: float) -> float:
    """SSIM as scikit-image ``structural_similarity`` computes it with its defaults.

    a, b: (H, W) grayscale images of the same shape, H and W >= 7. 7x7 uniform
    window, sample covariance (N / (N - 1)); the map is computed at every
    pixel with reflected borders, then averaged over the interior without its
    3-pixel border. Equal to ``skimage.metrics.structural_similarity(a, b,
    data_range=data_range)``.
    """
    a, b = _pair(a, b, ndim=2)
    if min(a.shape) < _UNIFORM_SIZE:
        raise ValueError(f"SSIM needs images of at least {_UNIFORM_SIZE}x{_UNIFORM_SIZE}, got {a.shape}")
    n = _UNIFORM_SIZE**2
    cov_norm = n / (n - 1.0)
    mean = [ndimage.uniform_filter(x, size=_UNIFORM_SIZE, mode="reflect") for x in (a, b, a * a, b * b, a * b)]
    mx, my, mxx, myy, mxy = mean  # each (H, W)
    smap = _ssim_map(
        mx,
        my,
        cov_norm * (mxx - mx * mx),
        cov_norm * (myy - my * my),
        cov_norm * (mxy - mx * my),
        data_range,
    )
    return float(crop_border(smap, (_UNIFORM_SIZE - 1) // 2).mean())


def crop_border(image: np.ndarray, n: int) -> np.ndarray:
    """Remove ``n`` pixels from every side: (H, W[, C]) -> (H - 2n, W - 2n[, C])."""
    if n < 0:
        raise ValueError(f"crop must be >= 0, got {n}")
    if n == 0:
        return image
    if image.shape[0] <= 2 * n or image.shape[1] <= 2 * n:
        raise ValueError(f"cannot crop {n} pixels from each side of an image of shape {image.shape}")
    return image[n:-n, n:-n]


def _y_of(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> MATLAB Y; an (H, W) array is taken to be Y already."""
    return image if image.ndim == 2 else rgb_to_y(image)


def score_standard(restored: np.ndarray, gt: np.ndarray, *, crop: int = 0) -> Score:
    """The standard protocol (PROTOCOL.md "Common rules").

    restored, gt: (H, W, 3) RGB or (H, W) luma Y, values in [0, 255] (restored
    may be float; it is clamped and rounded to uint8 first). RGB is converted
    to MATLAB ``rgb2ycbcr`` Y; an (H, W) array is taken to be that Y already.
    ``crop`` pixels are removed from every side; PSNR (peak 255) and the
    Wang et al. SSIM are computed on the Y images.
    """
    y_restored = crop_border(_y_of(to_uint8(restored)), crop)
    y_gt = crop_border(_y_of(to_uint8(gt)), crop)
    return Score(psnr=psnr(y_restored, y_gt), ssim=ssim(y_restored, y_gt))


def score_rgb(restored: np.ndarray, gt: np.ndarray) -> Score:
    """The colour JPEG protocol (PROTOCOL.md "Colour JPEG artifact reduction").

    restored, gt: (H, W, 3) RGB, values in [0, 255] (restored may be float; it
    is clamped and rounded to uint8 first). PSNR over the three channels
    together (one MSE), no crop; SSIM (Wang et al.) on each of R, G, B, averaged.
    """
    if np.ndim(restored) != 3 or np.ndim(gt) != 3 or np.shape(gt)[2] != 3:
        raise PffError(f"the colour protocol needs (H, W, 3) RGB images, got shapes {np.shape(restored)} and {np.shape(gt)}")
    a, b = to_uint8(restored), to_uint8(gt)
    return Score(psnr=psnr(a, b), ssim=float(np.mean([ssim(a[..., c], b[..., c]) for c in range(3)])))


def score_paper_deblur(restored: np.ndarray, gt: np.ndarray) -> Score:
    """The official PFF deblurring evaluation ("paper protocol" of PROTOCOL.md).

    restored, gt: (H, W, 3) RGB, values in [0, 255] (restored may be float; it
    is clamped and rounded to uint8 first). Luma = floor(0.299 R + 0.587 G +
    0.114 B), 20 pixels cropped on every side, PSNR with peak 255, SSIM =
    :func:`ssim_skimage_default` with data_range = max - min of the cropped
    ground-truth luma.
    """
    if np.ndim(restored) != 3 or np.ndim(gt) != 3:
        raise PffError(
            "the paper deblurring protocol needs (H, W, 3) RGB images, "
            f"got shapes {np.shape(restored)} and {np.shape(gt)}; use --protocol standard"
        )
    luma_restored = crop_border(rgb_to_luma_paper(to_uint8(restored)), PAPER_DEBLUR_CROP)
    luma_gt = crop_border(rgb_to_luma_paper(to_uint8(gt)), PAPER_DEBLUR_CROP)
    data_range = float(luma_gt.max()) - float(luma_gt.min())
    if data_range == 0.0:
        raise PffError("the ground truth is constant, so its dynamic range (the SSIM scale) is zero")
    return Score(
        psnr=psnr(luma_restored, luma_gt),
        ssim=ssim_skimage_default(luma_restored, luma_gt, data_range=data_range),
    )
