"""JPEG compression round trips through the IJG library (via Pillow).

A grayscale image is coded as a one-channel baseline JPEG (Pillow mode ``L``),
which is the LIVE1 benchmark's input (../shared/PROTOCOL.md); a colour image
is coded as YCbCr with the given chroma subsampling, as cameras and the web do.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pff.degrade.quantize import check_pixels, to_uint8
from pff.errors import PffError

SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")


def check_quality(quality: int) -> int:
    """Return ``quality`` as an int after checking it is an integer in 1..100."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
        raise PffError(f"expected an integer JPEG quality in 1..100, got {quality!r}")
    if not 1 <= quality <= 100:
        raise PffError(f"expected a JPEG quality in 1..100, got {quality}")
    return int(quality)


def jpeg_roundtrip(image: np.ndarray, quality: int, *, subsampling: str = "4:2:0") -> np.ndarray:
    """Encode ``image`` as a baseline JPEG at ``quality`` and decode it again.

    Args:
        image: (H, W) uint8 (coded as grayscale) or (H, W, 3) uint8 RGB.
        quality: IJG quality factor, 1..100.
        subsampling: chroma subsampling of colour images, one of
            ``"4:4:4"``, ``"4:2:2"``, ``"4:2:0"``; ignored for grayscale.

    Returns:
        The decoded image, uint8, same shape as ``image``.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise PffError(f"expected a uint8 image for JPEG, got dtype {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise PffError(f"expected an (H, W) or (H, W, 3) image for JPEG, got shape {tuple(image.shape)}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise PffError(f"expected a non-empty image for JPEG, got shape {tuple(image.shape)}")
    quality = check_quality(quality)
    if subsampling not in SUBSAMPLINGS:
        raise PffError(f"expected subsampling in {SUBSAMPLINGS}, got {subsampling!r}")
    mode = "L" if image.ndim == 2 else "RGB"
    buffer = io.BytesIO()
    options = {"quality": quality}
    if mode == "RGB":
        options["subsampling"] = subsampling
    Image.fromarray(image).save(buffer, "JPEG", **options)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        if decoded.mode != mode:  # Pillow decodes what it encoded; guard against surprises
            raise PffError(f"JPEG decoded as mode {decoded.mode}, expected {mode}")
        return np.asarray(decoded, dtype=np.uint8).copy()


@dataclass(frozen=True)
class Jpeg:
    """JPEG compression of clean images at a fixed or random quality.

    ``quality`` is an int or an inclusive range (low, high) sampled uniformly
    per call. ``gray=True`` codes a one-channel (luma) image as a grayscale
    JPEG, the LIVE1 benchmark's setting; ``gray=False`` codes RGB with
    ``subsampling``.
    """

    quality: int | tuple[int, int] = (10, 40)
    gray: bool = True
    subsampling: str = "4:2:0"

    def __post_init__(self) -> None:
        if isinstance(self.quality, (int, np.integer)) and not isinstance(self.quality, bool):
            check_quality(self.quality)
        else:
            try:
                lo, hi = self.quality  # type: ignore[misc]
            except (TypeError, ValueError):
                raise PffError(f"expected a JPEG quality or a range (low, high), got {self.quality!r}") from None
            lo, hi = check_quality(lo), check_quality(hi)
            if lo > hi:
                raise PffError(f"expected a quality range with low <= high, got {self.quality!r}")
            object.__setattr__(self, "quality", (lo, hi))
        if self.subsampling not in SUBSAMPLINGS:
            raise PffError(f"expected subsampling in {SUBSAMPLINGS}, got {self.subsampling!r}")

    @property
    def margin(self) -> int:
        """JPEG blocks are coded independently of their surroundings: no context needed."""
        return 0

    @property
    def channels(self) -> int:
        """1 (luma) when ``gray``, else 3 (RGB)."""
        return 1 if self.gray else 3

    def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, C) uint8 or float in [0, 255] (rounded first) -> (H, W, C) float32 with integer values."""
        image = to_uint8(check_pixels(clean, self.channels, "Jpeg"))
        if isinstance(self.quality, tuple):
            quality = int(rng.integers(self.quality[0], self.quality[1] + 1))
        else:
            quality = int(self.quality)
        if self.gray:
            return jpeg_roundtrip(image[:, :, 0], quality)[:, :, None].astype(np.float32)
        return jpeg_roundtrip(image, quality, subsampling=self.subsampling).astype(np.float32)
