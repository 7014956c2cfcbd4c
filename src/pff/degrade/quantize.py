"""8-bit quantisation and the pixel-array checks shared by the degradations."""
from __future__ import annotations

import numpy as np

from pff.color import to_uint8
from pff.errors import PffError


def quantize(image: np.ndarray) -> np.ndarray:
    """8-bit quantisation kept in float: any shape in ~[0, 255] -> float32 with integer values in [0, 255]."""
    return to_uint8(image).astype(np.float32)


def check_pixels(clean: np.ndarray, channels: int | None, who: str) -> np.ndarray:
    """Check a degradation's input and return it as float64.

    Args:
        clean: (H, W, C) uint8, or float with values in [0, 255].
        channels: the channel count ``who`` needs, or None for any.
        who: the degradation's name, for the error message.
    """
    clean = np.asarray(clean)
    if clean.ndim != 3 or clean.shape[0] == 0 or clean.shape[1] == 0:
        raise PffError(f"{who} expected an (H, W, C) image, got shape {tuple(clean.shape)}")
    if channels is not None and clean.shape[2] != channels:
        raise PffError(f"{who} expected {channels} channel(s), got {clean.shape[2]}")
    if clean.dtype != np.uint8 and not np.issubdtype(clean.dtype, np.floating):
        raise PffError(f"{who} expected uint8 or float pixels in [0, 255], got dtype {clean.dtype}")
    return clean.astype(np.float64)
