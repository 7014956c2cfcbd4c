"""Matplotlib figures of the explanations; each function returns a Figure.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot
state), so they can be saved from scripts and shown in notebooks alike.
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pff.explain.cluster import Clustering, cluster_map, colour_chart
from pff.explain.flow import filter_at, filter_entropy, filter_spread, flow_field, flow_legend, flow_to_rgb
from pff.explain.inference import Explanation
from pff.explain.pca import PCAResult, pca_loadings

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "cluster_figure",
    "eigenfilters_figure",
    "energy_figure",
    "figure_png",
    "filters_figure",
    "flow_figure",
    "loadings_figure",
    "shape_figure",
    "to_display",
    "tsne_figure",
]


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def to_display(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float in [0, 1] with C = 1 or 3 -> (H, W, 3) uint8."""
    image = np.clip(np.asarray(image, dtype=np.float64), 0, 1)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.floor(image * 255 + 0.5).astype(np.uint8)


def _show_filter(ax: Axes, kernel: np.ndarray, title: str | None = None) -> None:
    """A (K, K) filter: diverging colours around 0 when it has negative taps."""
    peak = float(np.abs(kernel).max()) or 1.0
    if kernel.min() < 0:
        ax.imshow(kernel, cmap="RdBu_r", vmin=-peak, vmax=peak, interpolation="nearest")
    else:
        ax.imshow(kernel, cmap="viridis", vmin=0, vmax=peak, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def _image_axes(ax: Axes, image: np.ndarray, title: str) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def flow_figure(expl: Explanation, *, max_norm: float | None = None) -> Figure:
    """Input, expected-flow colour map, and the wheel legend scaled to ``max_norm`` pixels."""
    flow = flow_field(expl.filters, dilation=expl.dilation)  # (2, H, W)
    norm = float(max_norm) if max_norm else float(np.hypot(*flow).max(initial=0.0)) or 1.0
    fig = _figure(11, 3.8)
    ax_in, ax_flow, ax_leg = fig.subplots(1, 3, width_ratios=[1, 1, 0.45])
    _image_axes(ax_in, to_display(expl.before), f"{expl.name}: input")
    _image_axes(ax_flow, flow_to_rgb(flow, max_norm=norm), "expected flow")
    ax_leg.imshow(flow_legend(129), extent=(-norm, norm, norm, -norm))
    ax_leg.set_title(f"flow (px), max {norm:.2f}", fontsize=9)
    ax_leg.set_xlabel("dx (reads right +)", fontsize=8)
    ax_leg.set_ylabel("dy (reads below +)", fontsize=8)
    ax_leg.tick_params(labelsize=7)
    return fig


def shape_figure(expl: Explanation) -> Figure:
    """Entropy (bits) and spatial spread (px) of every pixel's filter."""
    fig = _figure(10, 3.8)
    for ax, (values, title) in zip(
        fig.subplots(1, 2),
        [
            (filter_entropy(expl.filters), "filter entropy (bits) of |w|/sum|w|"),
            (filter_spread(expl.filters, dilation=expl.dilation), "filter spread (px, RMS radius)"),
        ],
    ):
        im = ax.imshow(values, cmap="magma", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def filters_figure(expl: Explanation, points: Sequence[tuple[int, int]]) -> Figure:
    """Input with numbered markers at ``points`` (x, y), and each point's filter beside it."""
    n = max(len(points), 1)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _figure(4 + 1.8 * cols, max(3.6, 1.9 * rows))
    left, right = fig.subfigures(1, 2, width_ratios=[4, 1.8 * cols])
    ax = left.subplots()
    _image_axes(ax, to_display(expl.before), f"{expl.name}: input")
    for i, (x, y) in enumerate(points, 1):
        ax.plot(x, y, "o", ms=9, mfc="none", mec="yellow", mew=1.5)
        ax.annotate(str(i), (x, y), xytext=(5, 5), textcoords="offset points", color="yellow", fontsize=9)
    axes = np.atleast_1d(right.subplots(rows, cols)).reshape(-1)
    for i, a in enumerate(axes):
        if i < len(points):
            x, y = points[i]
            _show_filter(a, filter_at(expl.filters, x, y), f"#{i + 1} ({x}, {y})")
        else:
            a.axis("off")
    return fig


def eigenfilters_figure(pca: PCAResult, n: int = 10) -> Figure:
    """The mean filter and the top ``n`` eigenfilters, each with its share of the energy."""
    n = min(n, len(pca.components))
    cols = min(6, n + 1)
    rows = math.ceil((n + 1) / cols)
    fig = _figure(1.8 * cols, 1.95 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    k = pca.kernel
    if pca.centered:
        _show_filter(axes[0], pca.mean.reshape(k, k), "mean filter")
    else:
        axes[0].axis("off")
    ratio = pca.energy_ratio
    for i, kernel in enumerate(pca.eigenfilters(n)):
        _show_filter(axes[i + 1], kernel, f"PC{i + 1}: {100 * ratio[i]:.2f}%")
    for a in axes[n + 1 :]:
        a.axis("off")
    return fig


def energy_figure(pca: PCAResult, n: int = 10) -> Figure:
    """Each of the top ``n`` components' share of the energy and the cumulative share."""
    n = min(n, len(pca.components))
    ratio = 100 * pca.energy_ratio[:n]
    fig = _figure(6, 3.6)
    ax = fig.subplots()
    idx = np.arange(1, n + 1)
    ax.bar(idx, ratio, color="0.7", label="component")
    ax.plot(idx, np.cumsum(ratio), "o-", color="C3", label="cumulative")
    ax.set_xticks(idx)
    ax.set_xlabel("principal component")
    ax.set_ylabel("energy (%)")
    ax.set_ylim(0, 101)
    kind = "centred" if pca.centered else "uncentred"
    ax.set_title(f"top {n}: {100 * pca.energy(n):.2f}% of the {kind} energy ({pca.count} filters)", fontsize=9)
    ax.legend(fontsize=8, loc="center right")
    return fig


def loadings_figure(expl: Explanation, pca: PCAResult, n: int = 6) -> Figure:
    """Top ``n`` eigenfilters over each pixel's loading on them (paper, figure 7)."""
    n = min(n, len(pca.components))
    maps = pca_loadings(expl.filters, pca, n)  # (n, H, W)
    fig = _figure(2.3 * n, 4.6)
    axes = fig.subplots(2, n, height_ratios=[1, 1.6], squeeze=False)
    for i in range(n):
        _show_filter(axes[0, i], pca.eigenfilters(n)[i], f"PC{i + 1}")
        peak = float(np.abs(maps[i]).max()) or 1.0
        im = axes[1, i].imshow(maps[i], cmap="RdBu_r", vmin=-peak, vmax=peak, interpolation="nearest")
        axes[1, i].axis("off")
        fig.colorbar(im, ax=axes[1, i], orientation="horizontal", shrink=0.9)
    fig.suptitle(f"{expl.name}: loading factors", fontsize=9)
    return fig


def _thumbnail(kernel: np.ndarray, zoom: int, border: np.ndarray) -> np.ndarray:
    """(K*zoom + 4, K*zoom + 4, 3) uint8 tile: the filter in colours, framed in ``border``."""
    from matplotlib import colormaps

    peak = float(np.abs(kernel).max()) or 1.0
    if kernel.min() < 0:
        rgb = colormaps["RdBu_r"]((kernel / peak + 1) / 2)[..., :3]
    else:
        rgb = colormaps["viridis"](kernel / peak)[..., :3]
    side = kernel.shape[0] * zoom
    framed = np.empty((side + 4, side + 4, 3), dtype=np.uint8)
    framed[:] = border
    framed[2:-2, 2:-2] = np.floor(np.kron(rgb, np.ones((zoom, zoom, 1))) * 255 + 0.5)
    return framed


def tsne_figure(clustering: Clustering, *, size: int = 1400) -> Figure:
    """Every centroid drawn as a thumbnail at its t-SNE position, framed in its chart colour."""
    k = clustering.kernel
    n = len(clustering.centroids)
    zoom = max(2, int(size / (2.5 * math.sqrt(n) * k)))
    tile = k * zoom + 4
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    pos = clustering.layout * (size - tile)  # (N, 2) top-left corners
    for centroid, (x, y), colour in zip(clustering.centroids, pos, clustering.colours):
        x0, y0 = int(round(x)), int(round(y))
        canvas[y0 : y0 + tile, x0 : x0 + tile] = _thumbnail(centroid.reshape(k, k), zoom, colour)
    fig = _figure(9, 8)
    ax = fig.subplots()
    ax.imshow(canvas, interpolation="nearest")
    ax.set_title(f"k-means centroids (K={n}, fitted on {clustering.samples} filters) by t-SNE", fontsize=9)
    ax.axis("off")
    inset = ax.inset_axes((0.0, 0.82, 0.18, 0.18))
    inset.imshow(colour_chart(101))
    inset.set_title("colour chart", fontsize=7)
    inset.axis("off")
    return fig


def cluster_figure(expl: Explanation, clustering: Clustering) -> Figure:
    """Input, output and every pixel coloured by its nearest centroid's t-SNE position (figure 6)."""
    fig = _figure(12, 3.8)
    axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 0.4])
    _image_axes(axes[0], to_display(expl.before), f"{expl.name}: input")
    _image_axes(axes[1], to_display(expl.after), "output")
    _image_axes(axes[2], cluster_map(expl.filters, clustering), "nearest centroid (t-SNE colour)")
    axes[3].imshow(colour_chart(101))
    axes[3].set_title("colour chart", fontsize=8)
    axes[3].axis("off")
    return fig
