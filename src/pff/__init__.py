"""pff: interpretable image restoration with Predictive Filter Flow.

A network predicts a small linear filter for every pixel; applying each
pixel's filter to its neighbourhood of the degraded input gives the restored
pixel (Kong & Fowlkes, "Image Reconstruction with Predictive Filter Flow").

``pff.Restorer.from_pretrained("jpeg").restore(image)`` restores a numpy
array or PIL image; ``import pff`` itself stays light (torch is imported on
first use of ``pff.Restorer``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Restorer", "__version__"]

if TYPE_CHECKING:
    from pff.restore import Restorer


def __getattr__(name: str) -> Any:
    if name == "Restorer":
        from pff.restore import Restorer

        return Restorer
    raise AttributeError(f"module 'pff' has no attribute {name!r}")
