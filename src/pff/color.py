"""Colour conversions used by the benchmark protocols (../shared/PROTOCOL.md).

All functions take uint8 or float arrays with values in [0, 255] and never
rescale silently, except the YCbCr pair (``rgb_to_ycbcr``/``ycbcr_to_rgb``),
which works on float images in [0, 1] for the Y-channel models.
"""
from __future__ import annotations

import numpy as np

from pff.errors import PffError

# MATLAB rgb2ycbcr, BT.601 studio swing: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255.
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
# Full-range luma of the official PFF deblurring evaluation code, in thousandths so
# that integer inputs give an exact weighted sum (0.299 + 0.587 + 0.114 summed in
# binary floating point lands just below 1 and floor would turn white into 254).
_LUMA_WEIGHTS_MILLI = np.array([299.0, 587.0, 114.0])


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) gray -> (H, W, 3) float64 with R = G = B; (H, W, 3) -> float64."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise PffError(f"expected an (H, W) or (H, W, 3) image, got shape {tuple(image.shape)}")
    image = image.astype(np.float64)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def rgb_to_y_float(image: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma before rounding: (H, W[, 3]) in [0, 255] -> (H, W) float64 in [16, 235]."""
    return 16.0 + _as_rgb(image) @ _Y_WEIGHTS


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma rounded to uint8: (H, W[, 3]) in [0, 255] -> (H, W) uint8.

    Gray input is treated as RGB with R = G = B (PROTOCOL.md: Set14 ``bridge``).
    """
    return np.clip(np.round(rgb_to_y_float(image)), 0, 255).astype(np.uint8)


def rgb_to_luma_paper(image: np.ndarray) -> np.ndarray:
    """Full-range integer luma of the paper's deblurring protocol.

    floor(0.299 R + 0.587 G + 0.114 B): (H, W[, 3]) in [0, 255] -> (H, W) uint8.
    """
    return np.clip(np.floor((_as_rgb(image) @ _LUMA_WEIGHTS_MILLI) / 1000.0), 0, 255).astype(np.uint8)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clamp to [0, 255] and round half up (MATLAB ``uint8``): any shape -> uint8."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    image = image.astype(np.float64)
    if not np.all(np.isfinite(image)):
        raise ValueError("image has NaN or infinite values")
    return np.floor(np.clip(image, 0.0, 255.0) + 0.5).astype(np.uint8)


# MATLAB rgb2ycbcr (BT.601 studio swing), for [0, 1] values: ycc = offset + M @ rgb.
_YCC_MATRIX = np.array(
    [255.0 * _Y_WEIGHTS, [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
) / 255.0
_YCC_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
_RGB_MATRIX = np.linalg.inv(_YCC_MATRIX)


def ycbcr_transform() -> tuple[np.ndarray, np.ndarray]:
    """``(matrix (3, 3), offset (3,))`` float64 copies: ``ycc = matrix @ rgb + offset`` for [0, 1] values."""
    return _YCC_MATRIX.copy(), _YCC_OFFSET.copy()


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> (H, W, 3) float32 YCbCr in [0, 1] (MATLAB ``rgb2ycbcr`` / 255, not rounded)."""
    return _affine(rgb, _YCC_MATRIX, _YCC_OFFSET)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`: (H, W, 3) float YCbCr in [0, 1] -> (H, W, 3) float32 RGB (not clipped)."""
    return _affine(ycc, _RGB_MATRIX, -_RGB_MATRIX @ _YCC_OFFSET)


def _affine(pixels: np.ndarray, matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``matrix @ p + offset`` for every pixel ``p`` of ``(..., 3)`` values, in float32.

    One (N, 3) x (3, 3) matrix product in torch: NumPy's ``@`` on an (H, W, 3)
    array loops over rows of tiny products, 4x slower on a megapixel (the
    colour step of every restore).
    """
    import torch

    flat = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).reshape(-1, 3)
    out = (flat @ torch.from_numpy(matrix.T.astype(np.float32))).add_(torch.from_numpy(offset.astype(np.float32)))
    return out.reshape(pixels.shape).numpy()


def gray_to_y(gray: np.ndarray) -> np.ndarray:
    """Gray (R = G = B) float in [0, 1], any shape -> its MATLAB Y in [0, 1] (its Cb = Cr = 128/255)."""
    return _YCC_OFFSET[0] + _YCC_MATRIX[0].sum() * gray


def luma_gray(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) float RGB -> (..., 1) float32: the gray level (R = G = B) with the same MATLAB luma."""
    weights = (_Y_WEIGHTS / _Y_WEIGHTS.sum()).astype(np.float32)
    return (rgb.astype(np.float32) @ weights)[..., None]


def y_to_gray(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`gray_to_y` (not clipped)."""
    return (y - _YCC_OFFSET[0]) / _YCC_MATRIX[0].sum()
