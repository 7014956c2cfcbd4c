"""K-means of per-pixel filters, a t-SNE layout of the centroids, colour by layout.

The paper's figure 6: cluster all filters into K = 400 groups, embed the
centroids in 2-D with t-SNE, give each centroid the colour of its place on a
colour chart, and colour every pixel by its nearest centroid. A whole test
set has millions of filters, so k-means is fitted (mini-batch) on a seeded
sample of them; every pixel is then assigned exactly.
"""
from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from pff.errors import PffError
from pff.explain.flow import check_filters

__all__ = [
    "Clustering",
    "assign_filters",
    "cluster_filters",
    "cluster_map",
    "colour_chart",
    "layout_colours",
    "sample_filters",
]


@dataclass(frozen=True)
class Clustering:
    """k-means centroids of filters and their 2-D t-SNE layout.

    Attributes:
        centroids: (N, K*K) float32 mean filters.
        layout: (N, 2) t-SNE positions, each axis scaled to [0, 1].
        colours: (N, 3) uint8, each centroid's colour on the chart (:func:`colour_chart`).
        samples: number of filters k-means was fitted on.
    """

    centroids: np.ndarray
    layout: np.ndarray
    colours: np.ndarray
    samples: int

    @property
    def kernel(self) -> int:
        return math.isqrt(self.centroids.shape[1])


def sample_filters(
    filter_sets: Sequence[np.ndarray], max_samples: int = 100_000, *, seed: int = 0
) -> np.ndarray:
    """(N, K*K) float32: up to ``max_samples`` filters drawn without replacement, evenly over the images."""
    if not filter_sets:
        raise PffError("sample_filters: no filters given")
    rng = np.random.default_rng(seed)
    per_image = max(1, max_samples // len(filter_sets))
    rows = []
    for filters in filter_sets:
        filters = check_filters(filters, "sample_filters")
        flat = filters.reshape(filters.shape[0], -1)  # (K*K, H*W)
        take = min(per_image, flat.shape[1])
        idx = np.sort(rng.choice(flat.shape[1], size=take, replace=False))
        rows.append(flat[:, idx].T)
    return np.ascontiguousarray(np.concatenate(rows))


def _kmeans(samples: np.ndarray, k: int, *, seed: int, epochs: int, progress: bool) -> np.ndarray:
    """(k, D) centroids of mini-batch k-means over ``samples`` (N, D), one bar step per batch."""
    from sklearn.cluster import MiniBatchKMeans

    batch = max(4096, 3 * k)
    kmeans = MiniBatchKMeans(n_clusters=k, batch_size=batch, random_state=seed, n_init=1)
    rng = np.random.default_rng(seed)
    batches = [(e, s) for e in range(epochs) for s in range(0, len(samples), batch)]
    order = None
    with warnings.catch_warnings():
        # Fewer distinct filters than clusters (a near-constant model) is fine here.
        warnings.simplefilter("ignore")
        bar = tqdm(batches, desc=f"k-means (K={k})", unit="batch", file=sys.stderr, leave=False,
                   disable=None if progress else True)  # fmt: skip
        for epoch, start in bar:
            if start == 0:
                order = rng.permutation(len(samples))
            chunk = samples[order[start : start + batch]]
            if epoch == 0 and start == 0 and len(chunk) < k:
                chunk = samples  # the first batch seeds all k centres
            kmeans.partial_fit(chunk)
    return kmeans.cluster_centers_.astype(np.float32)


def _tsne(points: np.ndarray, *, seed: int, progress: bool) -> np.ndarray:
    """(N, 2) t-SNE of ``points`` (N, D); a line on the progress bar while it runs."""
    n = len(points)
    if n < 4:  # t-SNE needs perplexity < n: place a handful on a circle instead
        angle = 2 * np.pi * np.arange(n) / max(n, 1)
        return np.stack([np.cos(angle), np.sin(angle)], axis=1) * (n > 1)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (n - 1) / 3))
    # Exact t-SNE is quicker than Barnes-Hut for the few hundred centroids used here.
    method = "exact" if n <= 1000 else "barnes_hut"
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, method=method)
    with tqdm(total=1, desc=f"t-SNE ({n} centroids)", file=sys.stderr, leave=False,
              disable=None if progress else True) as bar:  # fmt: skip
        layout = tsne.fit_transform(points.astype(np.float64))
        bar.update(1)
    return layout


def _to_unit_square(layout: np.ndarray) -> np.ndarray:
    """Each axis of 2-D points scaled to [0, 1] (t-SNE axes carry no units)."""
    lo, hi = layout.min(axis=0), layout.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (layout - lo) / span


# The colour chart: bilinear between four corners, (u, v) = (0, 0) top left.
_CORNERS = np.array(
    [
        [[0.13, 0.40, 0.95], [0.95, 0.20, 0.30]],  # v = 0: blue .. red
        [[0.15, 0.80, 0.35], [1.00, 0.85, 0.10]],  # v = 1: green .. yellow
    ]
)


def layout_colours(layout: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 chart colours of points (N, 2) = (u, v) in [0, 1]^2 (u right, v down)."""
    u, v = np.clip(np.asarray(layout, dtype=np.float64), 0, 1).T[:, :, None]  # (N, 1) each
    top = (1 - u) * _CORNERS[0, 0] + u * _CORNERS[0, 1]
    bottom = (1 - u) * _CORNERS[1, 0] + u * _CORNERS[1, 1]
    return np.floor(255 * ((1 - v) * top + v * bottom) + 0.5).astype(np.uint8)


def colour_chart(size: int = 101) -> np.ndarray:
    """(size, size, 3) uint8: the chart :func:`layout_colours` reads, u along x, v along y."""
    t = np.linspace(0, 1, size)
    v, u = np.meshgrid(t, t, indexing="ij")
    return layout_colours(np.stack([u.ravel(), v.ravel()], axis=1)).reshape(size, size, 3)


def cluster_filters(
    filter_sets: Sequence[np.ndarray],
    k: int = 400,
    *,
    max_samples: int = 100_000,
    epochs: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> Clustering:
    """Mini-batch k-means of the filters of all images, then t-SNE of the centroids.

    Args:
        filter_sets: (K*K, H, W) filters of each image.
        k: clusters; lowered to the number of sampled filters when fewer.
        max_samples: filters k-means is fitted on (sampled evenly, seeded).
        epochs: passes of mini-batch k-means over the sample.
        seed: seeds the sample, k-means and t-SNE.
        progress: show progress bars on stderr (only on a terminal).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise PffError(f"cluster_filters: k must be an integer >= 1, got {k!r}")
    samples = sample_filters(filter_sets, max_samples, seed=seed)
    k = min(k, len(samples))
    centroids = _kmeans(samples, k, seed=seed, epochs=epochs, progress=progress)
    layout = _to_unit_square(_tsne(centroids, seed=seed, progress=progress))
    return Clustering(centroids, layout.astype(np.float32), layout_colours(layout), len(samples))


def assign_filters(filters: np.ndarray, centroids: np.ndarray, *, chunk: int = 65536) -> np.ndarray:
    """(H, W) int: index of the nearest centroid (N, K*K) of each pixel's filter (K*K, H, W)."""
    filters = check_filters(filters, "assign_filters")
    kk, h, w = filters.shape
    flat = filters.reshape(kk, h * w)
    c = centroids.astype(np.float32)
    c_norm = (c * c).sum(axis=1)  # (N,)
    labels = np.empty(h * w, dtype=np.int64)
    for start in range(0, h * w, chunk):
        block = flat[:, start : start + chunk]  # (K*K, n)
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; ||x||^2 is the same for every c.
        labels[start : start + chunk] = np.argmin(c_norm[:, None] - 2 * (c @ block), axis=0)
    return labels.reshape(h, w)


def cluster_map(filters: np.ndarray, clustering: Clustering) -> np.ndarray:
    """(H, W, 3) uint8: every pixel in the chart colour of its nearest centroid."""
    return clustering.colours[assign_filters(filters, clustering.centroids)]
