"""MATLAB-compatible bicubic resizing and the super-resolution input builder.

``imresize`` reproduces MATLAB's ``imresize(image, scale, 'bicubic')``, which
the SR literature (and ../shared/PROTOCOL.md) uses to make low-resolution
images. PIL, OpenCV and torch bicubic are different functions: they use
another cubic (a = -0.75), no antialiasing, or another border rule.

MATLAB's recipe, per axis:

- output length ``ceil(scale * n)`` (when a scale is given);
- output pixel ``x = 1..m`` (1-based) samples the input at
  ``u = x / scale + 0.5 * (1 - 1 / scale)``, so pixel areas stay aligned;
- weights from Keys' cubic with a = -0.5 over 4 taps; on downscaling
  (``scale < 1``) with antialiasing the kernel is stretched to
  ``scale * cubic(scale * t)`` over ``4 / scale`` taps;
- every row of weights is normalised to sum to 1;
- indices outside the image are mirrored symmetrically (``..., 2, 1, 1, 2, ...``);
- the axes are resized one after the other, the axis with the smaller scale
  first (MATLAB's ``[~, order] = sort(scale)``; on a tie the rows go first).
  We keep that order, although in exact arithmetic it does not matter: the
  two passes are linear maps on different axes and commute.

One difference remains: for uint8 input MATLAB rounds to uint8 after the first
pass too; here the intermediate stays float64 and only the caller rounds. The
final uint8 values then differ by one level at about a quarter of the pixels,
which moves the Set5 x4 input PSNR by 0.002 dB (both round to 28.42).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pff.degrade.quantize import check_pixels, to_uint8
from pff.errors import PffError

_KERNEL_WIDTH = 4.0  # support of the cubic kernel, in input pixels at scale 1


def cubic(t: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``), support [-2, 2]."""
    a = np.abs(t)
    a2, a3 = a * a, a * a * a
    near = (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
    far = (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))
    return near + far


def resize_weights(
    in_length: int, out_length: int, scale: float, *, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """How MATLAB resizes one axis: output pixel i = sum_t weights[i, t] * input[index[i, t]].

    Returns:
        ``(index, weights)``, both (out_length, taps): 0-based input indices
        with the border already mirrored (an index can repeat in a row), and
        weights whose rows sum to 1.
    """
    if scale < 1 and antialiasing:
        width = _KERNEL_WIDTH / scale

        def kernel(t: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * t)
    else:
        width = _KERNEL_WIDTH
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)  # 1-based, as in MATLAB
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    index = left[:, None] + np.arange(taps)[None, :]  # (out, taps), 1-based
    weights = kernel(u[:, None] - index)  # (out, taps)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric mirroring: 1..n, n..1 repeated (MATLAB's aux/mod trick).
    period = 2 * in_length
    folded = np.mod(index.astype(np.int64) - 1, period)
    folded = np.where(folded < in_length, folded, period - 1 - folded)  # 0-based
    return folded, weights


def _resize_axis(image: np.ndarray, axis: int, index: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``image`` resized along ``axis`` by one sparse matrix product: row i of the (out, in) matrix holds
    output pixel i's weights at its input indices (a mirrored index that repeats in a row adds up)."""
    import scipy.sparse  # ~0.1 s to import; only resizing needs it

    moved = np.moveaxis(image, axis, 0)  # (in_length, ...)
    n_out, taps = index.shape
    rows = scipy.sparse.csr_matrix(
        (weights.ravel(), index.ravel(), np.arange(0, n_out * taps + 1, taps)), shape=(n_out, moved.shape[0])
    )
    out = rows @ moved.reshape(moved.shape[0], -1)  # (out_length, rest) float64
    return np.moveaxis(out.reshape((n_out,) + moved.shape[1:]), 0, axis)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise PffError(f"expected an (H, W) or (H, W, C) image, got shape {tuple(image.shape)}")
    if image.dtype == np.bool_ or not (
        np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
    ):
        raise PffError(f"expected an integer or float image, got dtype {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise PffError(f"expected a non-empty image, got shape {tuple(image.shape)}")
    return image


def _scales_and_shape(
    size: tuple[int, int], scale: float | None, output_shape: tuple[int, int] | None
) -> tuple[tuple[float, float], tuple[int, int]]:
    if (scale is None) == (output_shape is None):
        raise PffError("give exactly one of scale and output_shape")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)):
            raise PffError(f"expected a positive number for scale, got {scale!r}")
        if not math.isfinite(scale) or scale <= 0:
            raise PffError(f"expected a positive finite scale, got {scale!r}")
        shape = (math.ceil(scale * size[0]), math.ceil(scale * size[1]))
        return (float(scale), float(scale)), shape
    try:
        shape = tuple(int(n) for n in output_shape)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise PffError(f"expected output_shape as (height, width), got {output_shape!r}") from None
    if len(shape) != 2 or min(shape) < 1 or shape != tuple(output_shape):  # type: ignore[arg-type]
        raise PffError(f"expected output_shape as two positive integers, got {output_shape!r}")
    return (shape[0] / size[0], shape[1] / size[1]), (shape[0], shape[1])


def imresize(
    image: np.ndarray,
    scale: float | None = None,
    *,
    output_shape: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> np.ndarray:
    """Resize like MATLAB's ``imresize(image, scale, 'bicubic')``.

    Args:
        image: (H, W) or (H, W, C), any integer or float dtype; values are
            used as they are (uint8 stays in [0, 255]).
        scale: the same factor for both axes; the output is
            (ceil(scale * H), ceil(scale * W)).
        output_shape: (height, width) instead of ``scale``; each axis then
            uses its own factor out / in, as MATLAB does.
        antialiasing: widen the kernel by 1 / scale when downscaling.

    Returns:
        float64 array of the new size with the same channels, not rounded and
        not clipped (bicubic overshoots a little near edges): round and clip
        to get MATLAB's uint8 output.
    """
    image = _check_image(image)
    scales, shape = _scales_and_shape(image.shape[:2], scale, output_shape)
    out = image.astype(np.float64)
    # Resize the axis with the smaller scale first (MATLAB sorts the scales; stable on ties).
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        index, weights = resize_weights(out.shape[axis], shape[axis], scales[axis], antialiasing=antialiasing)
        out = _resize_axis(out, axis, index, weights)
    return out


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop (H, W[, C]) to (H - H % scale, W - W % scale), keeping the top-left corner."""
    image = np.asarray(image)
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise PffError(f"expected a positive integer scale, got {scale!r}")
    if image.ndim not in (2, 3):
        raise PffError(f"expected an (H, W) or (H, W, C) image, got shape {tuple(image.shape)}")
    h, w = image.shape[0] - image.shape[0] % scale, image.shape[1] - image.shape[1] % scale
    if h == 0 or w == 0:
        raise PffError(f"image of shape {tuple(image.shape)} is smaller than the scale {scale}")
    return image[:h, :w]


def sr_pair(hr: np.ndarray, scale: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's SR input: down by ``scale``, round, up by ``scale``, round.

    Args:
        hr: (H, W) or (H, W, C) uint8 with H and W multiples of ``scale``
            (crop with :func:`modcrop` first).
        scale: integer factor.

    Returns:
        ``(lr, up)``: lr (H / scale, W / scale[, C]) uint8, and up, the bicubic
        upscaling of lr, (H, W[, C]) uint8 (the model's input).
    """
    hr = np.asarray(hr)
    if hr.dtype != np.uint8:
        raise PffError(f"expected a uint8 HR image, got dtype {hr.dtype}")
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise PffError(f"expected a positive integer scale, got {scale!r}")
    hr = _check_image(hr)
    if hr.shape[0] % scale or hr.shape[1] % scale:
        raise PffError(
            f"expected HR sides that are multiples of {scale}, got {hr.shape[0]}x{hr.shape[1]};"
            f" crop with modcrop(hr, {scale}) first"
        )
    return _down_up(hr, scale)


def _down_up(image: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W[, C]) -> (LR uint8 (ceil(H/s), ceil(W/s)[, C]), up uint8 (s*ceil(H/s), ...)), rounding both times."""
    lr = to_uint8(imresize(image, 1.0 / scale))
    return lr, upsample(lr, scale)


_TOP = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def upsample(image: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic upsampling by ``scale``, rounded back to the input's dtype: the input of an SR
    model that sharpens the upsampled image (and the ``--model none`` baseline).

    image: (H, W[, C]) uint8 or uint16 (clamped, rounded half up) or float in
    [0, 1] (clamped). Returns (scale*H, scale*W[, C]) of the same dtype.
    """
    image = np.asarray(image)
    up = imresize(image, float(scale))
    if image.dtype in _TOP:
        return np.floor(np.clip(up, 0.0, _TOP[image.dtype]) + 0.5).astype(image.dtype)
    return np.clip(up, 0.0, 1.0).astype(image.dtype)


@dataclass(frozen=True)
class Bicubic:
    """The SR degradation of the paper and PROTOCOL.md: MATLAB bicubic down by
    ``scale``, round to uint8, then (``upsample``, the paper's model input)
    bicubic up by ``scale`` and round again. With ``upsample=False`` the
    degraded image is the low-resolution one itself, ``shrink`` = ``scale``
    times smaller (the input of models that compute in low resolution).

    Deterministic: ``rng`` is accepted for the common interface and unused.
    """

    scale: int = 4
    upsample: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, np.integer)) or self.scale < 1:
            raise PffError(f"expected a positive integer scale, got {self.scale!r}")
        if not isinstance(self.upsample, bool):
            raise PffError(f"expected upsample to be true or false, got {self.upsample!r}")

    @property
    def shrink(self) -> int:
        """How many times smaller the degraded image is than the clean one (1 or ``scale``)."""
        return 1 if self.upsample else self.scale

    @property
    def margin(self) -> int:
        """4 * scale: an output pixel depends on LR pixels within 2 LR pixels, each
        on HR pixels within 2 * scale; a multiple of scale, so a centre crop
        keeps the LR grid aligned with its top-left corner as at test time."""
        return 4 * self.scale

    @property
    def channels(self) -> int | None:
        """Any channel count (RGB or luma)."""
        return None

    def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, C) uint8 or float in [0, 255] (rounded first) -> (H, W, C) float32 with integer values,
        or with ``upsample=False`` the (ceil(H / scale), ceil(W / scale), C) low-resolution image.

        Sides that are not multiples of ``scale`` are handled like MATLAB (the LR
        side is ceil(H / scale)); the upscaled image is cropped back to (H, W).
        """
        image = to_uint8(check_pixels(clean, self.channels, "Bicubic"))
        h, w = image.shape[:2]
        if not self.upsample:
            lr = to_uint8(imresize(image, 1.0 / self.scale))
            return lr.reshape(lr.shape[:2] + image.shape[2:]).astype(np.float32)
        _, up = _down_up(image, self.scale)
        return up[:h, :w].astype(np.float32)
