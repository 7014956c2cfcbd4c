"""Additive sensor noise (seeded)."""
from __future__ import annotations

import math

import numpy as np

from pff.errors import PffError


def add_gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise of standard deviation ``sigma`` (in the image's units).

    Args:
        image: any shape, values in [0, 255] for 8-bit images.
        sigma: noise level, >= 0; 0 returns a float64 copy.
        rng: the only source of randomness.

    Returns:
        float64 array of the same shape, neither clipped nor rounded.
    """
    if not math.isfinite(sigma) or sigma < 0:
        raise PffError(f"expected a noise sigma >= 0, got {sigma!r}")
    image = np.asarray(image, dtype=np.float64)
    if sigma == 0:
        return image.copy()
    return image + rng.normal(0.0, sigma, size=image.shape)
