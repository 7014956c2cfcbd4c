"""pff: interpretable image restoration with Predictive Filter Flow.

A network predicts a small linear filter for every pixel; applying each
pixel's filter to its neighbourhood of the degraded input gives the restored
pixel (Kong & Fowlkes, "Image Reconstruction with Predictive Filter Flow").
"""
from __future__ import annotations

__version__ = "0.1.0"
