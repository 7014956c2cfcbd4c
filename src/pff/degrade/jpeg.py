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


def _check_range(value: object, what: str) -> int | tuple[int, int]:
    """A quality (int) or an inclusive quality range (low, high), checked."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return check_quality(value)
    try:
        lo, hi = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise PffError(f"{what}: expected a JPEG quality or a range (low, high), got {value!r}") from None
    lo, hi = check_quality(lo), check_quality(hi)
    if lo > hi:
        raise PffError(f"{what}: expected a quality range with low <= high, got {value!r}")
    return (lo, hi)


@dataclass(frozen=True)
class Jpeg:
    """JPEG compression of clean images at a fixed or random quality.

    ``quality`` is an int or an inclusive range (low, high) sampled uniformly
    per call; with probability ``wide_prob`` the quality is drawn instead
    log-uniformly from ``wide_quality`` (a blind model also sees the rare
    very low and high qualities without spending most patches on them).
    With probability ``double_prob`` the decoded image is compressed a
    second time at an independently drawn quality (photos saved twice).

    ``gray=True`` codes a one-channel (luma) image as a grayscale JPEG, the
    LIVE1 benchmark's setting. ``gray=False`` codes an RGB image in colour
    with a chroma ``subsampling`` drawn uniformly from the given choice (one
    name or a list; repeat a name to weight it); an RGB image whose three
    channels are equal is coded exactly like its grayscale JPEG (Pillow
    stores its chroma as constant 128), so gray crops need no special case.
    """

    quality: int | tuple[int, int] = (10, 40)
    gray: bool = True
    subsampling: str | tuple[str, ...] = "4:2:0"
    wide_quality: int | tuple[int, int] = (5, 95)
    wide_prob: float = 0.0
    double_prob: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "quality", _check_range(self.quality, "quality"))
        object.__setattr__(self, "wide_quality", _check_range(self.wide_quality, "wide_quality"))
        if not isinstance(self.subsampling, str):
            object.__setattr__(self, "subsampling", tuple(self.subsampling))
        if not self._subsamplings or any(c not in SUBSAMPLINGS for c in self._subsamplings):
            raise PffError(f"expected subsampling in {SUBSAMPLINGS} (or a list of them), got {self.subsampling!r}")
        for key in ("wide_prob", "double_prob"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise PffError(f"{key}: expected a probability in [0, 1], got {value!r}")

    @property
    def margin(self) -> int:
        """JPEG blocks are coded independently of their surroundings: no context needed."""
        return 0

    @property
    def channels(self) -> int:
        """1 (luma) when ``gray``, else 3 (RGB)."""
        return 1 if self.gray else 3

    @property
    def _subsamplings(self) -> tuple[str, ...]:
        return (self.subsampling,) if isinstance(self.subsampling, str) else self.subsampling  # type: ignore[return-value]

    def draw_quality(self, rng: np.random.Generator) -> int:
        """One quality: uniform over ``quality``, or with ``wide_prob`` log-uniform over ``wide_quality``."""
        if self.wide_prob and rng.random() < self.wide_prob:
            if isinstance(self.wide_quality, int):
                return self.wide_quality
            lo, hi = np.log(self.wide_quality[0] - 0.5), np.log(self.wide_quality[1] + 0.5)
            return int(np.clip(np.rint(np.exp(rng.uniform(lo, hi))), *self.wide_quality))
        if isinstance(self.quality, tuple):
            return int(rng.integers(self.quality[0], self.quality[1] + 1))
        return int(self.quality)

    def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W, C) uint8 or float in [0, 255] (rounded first) -> (H, W, C) float32 with integer values."""
        image = to_uint8(check_pixels(clean, self.channels, "Jpeg"))
        if self.gray:
            image = image[:, :, 0]
        times = 2 if self.double_prob and rng.random() < self.double_prob else 1
        for _ in range(times):
            quality = self.draw_quality(rng)
            if self.gray:
                image = jpeg_roundtrip(image, quality)
            else:
                choices = self._subsamplings
                subsampling = choices[int(rng.integers(len(choices)))] if len(choices) > 1 else choices[0]
                image = jpeg_roundtrip(image, quality, subsampling=subsampling)
        return (image[:, :, None] if self.gray else image).astype(np.float32)
