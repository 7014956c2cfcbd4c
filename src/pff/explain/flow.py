"""Per-pixel numbers read off the filters: expected flow, shape, salient pixels.

Filters here are numpy arrays ``(K*K, H, W)`` in the layout of
:mod:`pff.ops` (row-major taps, correlation): the tap ``i*K + j`` of the
filter at (y, x) weighs the input pixel (y + i - K//2, x + j - K//2), so a
filter drawn as a (K, K) image shows where the output pixel reads from.
"""
from __future__ import annotations

from collections.abc import Callable

import math

import numpy as np
import torch

from pff import ops
from pff.errors import PffError

__all__ = [
    "check_filters",
    "filter_at",
    "filter_entropy",
    "filter_spread",
    "flow_field",
    "flow_legend",
    "flow_to_rgb",
    "kernel_size",
    "salient_pixels",
]


def check_filters(filters: object, fn: str) -> np.ndarray:
    """``filters`` as float32 (K*K, H, W) with K odd; PffError naming ``fn`` otherwise."""
    if isinstance(filters, torch.Tensor):
        filters = filters.detach().cpu().numpy()
    arr = np.asarray(filters)
    if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.floating):
        raise PffError(f"{fn}: expected float filters of shape (K*K, H, W), got {arr.dtype} {arr.shape}")
    k = math.isqrt(arr.shape[0])
    if k * k != arr.shape[0] or k % 2 == 0:
        raise PffError(f"{fn}: the first axis must be K*K for an odd K, got {arr.shape[0]}")
    return arr.astype(np.float32, copy=False)


def kernel_size(filters: np.ndarray) -> int:
    """K of (K*K, H, W) filters."""
    return math.isqrt(filters.shape[0])


def filter_at(filters: np.ndarray, x: int, y: int) -> np.ndarray:
    """The filter of pixel (x, y) as a (K, K) array: row = y offset, column = x offset."""
    k = kernel_size(filters)
    return filters[:, y, x].reshape(k, k)


def _offsets(k: int, dilation: int) -> tuple[np.ndarray, np.ndarray]:
    """(K*K,) x and y offsets of the taps, row-major."""
    steps = (np.arange(k) - k // 2) * dilation
    dy, dx = np.meshgrid(steps, steps, indexing="ij")  # (K, K) each
    return dx.reshape(-1).astype(np.float64), dy.reshape(-1).astype(np.float64)


def flow_field(filters: np.ndarray, *, dilation: int = 1) -> np.ndarray:
    """Expected flow (2, H, W) float32 of (K*K, H, W) filters: channel 0 = x, 1 = y displacement.

    ``sum_k w_k * offset_k`` (:func:`pff.ops.expected_flow`): a delta at
    offset (dy, dx) gives exactly (dx, dy), the distance the output pixel
    reads from.
    """
    filters = check_filters(filters, "flow_field")
    taps, h, w = filters.shape
    rows = max(1, _BAND_VALUES // max(taps * w, 1))
    flow = np.empty((2, h, w), dtype=np.float32)
    for r in range(0, h, rows):  # bands of rows: a memory-mapped image is never copied whole
        band = torch.from_numpy(np.array(filters[:, r : r + rows], dtype=np.float32))[None]  # (1, K*K, h', W)
        flow[:, r : r + rows] = ops.expected_flow(band, dilation=dilation)[0].numpy()
    return flow


def _weights(filters: np.ndarray) -> np.ndarray:
    """|w| normalised to sum 1 per pixel (K*K, H, W), float64; free-form filters have negative taps."""
    mag = np.abs(filters.astype(np.float64))
    total = mag.sum(axis=0, keepdims=True)
    return mag / np.where(total > 0, total, 1.0)


# Per-pixel maps are computed over bands of rows: their float64 temporaries
# stay near this many filter values however large the image is.
_BAND_VALUES = 1 << 22


def _by_bands(fn: Callable[[np.ndarray], np.ndarray], filters: np.ndarray) -> np.ndarray:
    """``fn`` ((K*K, h, W) -> (h, W)) applied to bands of rows of ``filters`` (K*K, H, W), joined to (H, W)."""
    taps, h, w = filters.shape
    rows = max(1, _BAND_VALUES // max(taps * w, 1))
    return np.concatenate([fn(filters[:, r : r + rows]) for r in range(0, h, rows)], axis=0) if h else fn(filters)


def _entropy(filters: np.ndarray) -> np.ndarray:
    p = _weights(filters)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(axis=0).astype(np.float32)


def filter_entropy(filters: np.ndarray) -> np.ndarray:
    """Entropy in bits (H, W) of each filter's |w| / sum |w|: 0 for a delta, log2(K*K) for a box."""
    return _by_bands(_entropy, check_filters(filters, "filter_entropy"))


def filter_spread(filters: np.ndarray, *, dilation: int = 1) -> np.ndarray:
    """Spatial spread (H, W) in pixels: the |w|-weighted RMS distance of the taps from their centroid."""
    filters = check_filters(filters, "filter_spread")
    dx, dy = _offsets(kernel_size(filters), dilation)

    def spread(band: np.ndarray) -> np.ndarray:
        p = _weights(band)
        mx = np.tensordot(dx, p, axes=1)  # (h, W)
        my = np.tensordot(dy, p, axes=1)
        second = np.tensordot(dx**2 + dy**2, p, axes=1)
        return np.sqrt(np.maximum(second - mx**2 - my**2, 0.0)).astype(np.float32)

    return _by_bands(spread, filters)


def salient_pixels(filters: np.ndarray, count: int = 6, *, min_distance: int | None = None) -> list[tuple[int, int]]:
    """``count`` pixels (x, y) whose filters differ most from each other.

    Greedy farthest-point selection in filter space, starting from the filter
    farthest from the mean filter, among pixels of a grid with spacing
    ``min_distance`` (default: 1/8 of the shorter side) so picks do not
    cluster on one edge.
    """
    filters = check_filters(filters, "salient_pixels")
    _, h, w = filters.shape
    step = max(1, min_distance if min_distance is not None else min(h, w) // 8)
    ys, xs = np.meshgrid(np.arange(step // 2, h, step), np.arange(step // 2, w, step), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    cand = filters[:, ys, xs].T.astype(np.float64)  # (N, K*K)
    dist = np.linalg.norm(cand - cand.mean(axis=0), axis=1)
    picks: list[int] = []
    for _ in range(min(count, len(cand))):
        best = int(np.argmax(dist))
        if picks and dist[best] <= 0:
            break  # every remaining filter equals one already picked
        picks.append(best)
        dist = np.minimum(dist, np.linalg.norm(cand - cand[best], axis=1))
        dist[best] = -1.0
    return [(int(xs[i]), int(ys[i])) for i in picks]


def flow_to_rgb(flow: np.ndarray, *, max_norm: float | None = None) -> np.ndarray:
    """(2, H, W) flow (x, y) -> (H, W, 3) uint8 colours of the optical-flow wheel (:mod:`pff.flowviz`).

    White is no motion; the hue is the direction the pixel reads from (x
    right, y down) and the saturation its length relative to ``max_norm``
    (default: the largest length in ``flow``; longer vectors are darkened).
    """
    from pff.flowviz import flow_to_rgb as wheel_colours

    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise PffError(f"flow_to_rgb: expected flow of shape (2, H, W), got {flow.shape}")
    return wheel_colours(flow, max_flow=max_norm)


def flow_legend(size: int = 129) -> np.ndarray:
    """(size, size, 3) uint8: the wheel for vectors up to length 1 (x right, y down), white outside."""
    from pff.flowviz import wheel_legend

    return wheel_legend(size)
