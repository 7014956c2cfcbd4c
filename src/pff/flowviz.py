"""Optical-flow colour coding: a displacement field -> an RGB picture.

The standard colour wheel of the optical-flow literature (Baker et al.,
"A Database and Evaluation Methodology for Optical Flow", the Middlebury
benchmark): the hue gives the direction of the displacement, the saturation
its length relative to ``max_flow``; zero displacement is white. Pure numpy;
torch tensors are accepted and moved to the CPU.
"""
from __future__ import annotations

from typing import Any

import numpy as np

# Hue steps between the wheel's six primary/secondary colours (red, yellow,
# green, cyan, blue, magenta): more steps where the eye tells hues apart better.
_SEGMENTS: tuple[int, ...] = (15, 6, 4, 11, 13, 6)


def color_wheel() -> np.ndarray:
    """``(55, 3)`` float64 in [0, 1]: the wheel's colours, red first, going red -> yellow -> green -> cyan -> blue -> magenta."""
    # Each segment ramps one channel up or down while the others hold: (channel, rising).
    ramps = ((1, True), (0, False), (2, True), (1, False), (0, True), (2, False))
    start = np.array([1.0, 0.0, 0.0])
    rows = []
    for steps, (channel, rising) in zip(_SEGMENTS, ramps):
        t = np.arange(steps) / steps  # (steps,)
        block = np.repeat(start[None], steps, axis=0)  # (steps, 3)
        block[:, channel] = t if rising else 1.0 - t
        rows.append(block)
        start = block[-1].copy()
        start[channel] = 1.0 if rising else 0.0
    return np.concatenate(rows)


def _as_hw2(flow: Any) -> np.ndarray:
    if hasattr(flow, "detach"):  # a torch tensor, without importing torch here
        flow = flow.detach().cpu().numpy()
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim == 4 and flow.shape[0] == 1:
        flow = flow[0]
    if flow.ndim != 3 or 2 not in (flow.shape[0], flow.shape[2]):
        raise ValueError(f"flow must be (2, H, W) or (H, W, 2), got shape {flow.shape}")
    return np.moveaxis(flow, 0, -1) if flow.shape[0] == 2 else flow  # (H, W, 2)


def flow_to_rgb(flow: Any, *, max_flow: float | None = None) -> np.ndarray:
    """Colour-code a displacement field.

    Args:
        flow: ``(2, H, W)`` or ``(H, W, 2)`` (also ``(1, 2, H, W)``), numpy or
            torch; channel 0 the x (column) displacement, channel 1 the y (row)
            displacement, in pixels (``pff.ops.expected_flow``'s layout). When
            both readings fit (``H == 2``), ``(2, H, W)`` is assumed.
            Non-finite values are drawn as zero displacement.
        max_flow: the length drawn fully saturated; default the largest length
            in ``flow`` (1 if the field is all zero). Longer vectors are
            darkened to 75% to mark them as out of range.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    hw2 = _as_hw2(flow)
    hw2 = np.where(np.isfinite(hw2), hw2, 0.0)
    u, v = hw2[..., 0], hw2[..., 1]
    length = np.hypot(u, v)  # (H, W)
    if max_flow is None:
        max_flow = float(length.max()) if length.size else 0.0
    if not (max_flow > 0 and np.isfinite(max_flow)):
        max_flow = 1.0
    radius = length / max_flow
    wheel = color_wheel()
    n = len(wheel)
    position = (np.arctan2(-v, -u) / np.pi + 1.0) / 2.0 * (n - 1)  # [0, n-1]
    k0 = np.floor(position).astype(np.int64)
    k1 = (k0 + 1) % n
    frac = (position - k0)[..., None]
    colour = (1.0 - frac) * wheel[k0 % n] + frac * wheel[k1]  # (H, W, 3)
    inside = (radius <= 1.0)[..., None]
    r = radius[..., None]
    colour = np.where(inside, 1.0 - r * (1.0 - colour), 0.75 * colour)
    return np.floor(255.0 * colour + 0.5).astype(np.uint8)


def wheel_legend(size: int = 64) -> np.ndarray:
    """``(size, size, 3)`` uint8: the colour of every displacement in a disc of radius 1 (the key to a flow map)."""
    if size < 2:
        raise ValueError(f"size must be >= 2, got {size}")
    t = np.linspace(-1.0, 1.0, size)
    yy, xx = np.meshgrid(t, t, indexing="ij")
    picture = flow_to_rgb(np.stack([xx, yy]), max_flow=1.0)
    picture[np.hypot(xx, yy) > 1.0] = 255
    return picture
