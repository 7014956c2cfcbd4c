"""PCA of per-pixel filters: eigenfilters, the energy they capture, loading maps.

The filters of every pixel of every image are samples in R^(K*K). Their
second-moment matrix is accumulated image by image in float64 (a K*K x K*K
matrix), so PCA over a whole test set never holds all filters at once.

"Energy" is the share of the eigenvalue sum held by the leading components.
Centred (the default) decomposes the covariance around the mean filter, as
PCA usually does, and the paper's figure 7 shows the mean kernel beside the
components; uncentred decomposes the raw second moment sum w w^T, the
energy sum ||w||^2 itself, of which the mean filter alone holds most.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pff.errors import PffError
from pff.explain.flow import check_filters, kernel_size

__all__ = ["FilterPCA", "PCAResult", "filter_pca", "pca_loadings"]

_CHUNK = 65536  # pixels per float64 block in FilterPCA.add


@dataclass(frozen=True)
class PCAResult:
    """Principal components of filters.

    Attributes:
        mean: (K*K,) mean filter (zeros when ``centered`` is false).
        components: (K*K, K*K) unit eigenfilters as rows, by decreasing
            eigenvalue; sign fixed so each one's largest-magnitude tap is positive.
        eigenvalues: (K*K,) non-negative, decreasing.
        centered: whether the mean was removed first.
        count: number of filters the PCA saw.
    """

    mean: np.ndarray
    components: np.ndarray
    eigenvalues: np.ndarray
    centered: bool
    count: int

    @property
    def kernel(self) -> int:
        return kernel_size(self.mean[:, None, None])

    @property
    def energy_ratio(self) -> np.ndarray:
        """(K*K,) each component's share of the total energy."""
        total = self.eigenvalues.sum()
        return self.eigenvalues / total if total > 0 else np.zeros_like(self.eigenvalues)

    def energy(self, n: int) -> float:
        """Share of the energy held by the top ``n`` components, in [0, 1]."""
        return float(np.clip(self.energy_ratio[:n].sum(), 0.0, 1.0))

    def eigenfilters(self, n: int = 10) -> np.ndarray:
        """(n, K, K): the top ``n`` components as filters."""
        k = self.kernel
        return self.components[:n].reshape(-1, k, k)


class FilterPCA:
    """Accumulates filters (``add``) and decomposes them (``result``)."""

    def __init__(self) -> None:
        self._moment: np.ndarray | None = None  # (K*K, K*K) sum of w w^T
        self._sum: np.ndarray | None = None  # (K*K,) sum of w
        self.count = 0

    def add(self, filters: np.ndarray) -> None:
        """Adds (K*K, H, W) filters of one image, or (N, K*K) filters as rows."""
        arr = np.asarray(filters)
        if arr.ndim == 3:
            arr = check_filters(arr, "FilterPCA.add")
            rows = arr.reshape(arr.shape[0], -1).T  # (H*W, K*K)
        elif arr.ndim == 2:
            rows = arr  # (N, K*K)
        else:
            raise PffError(f"FilterPCA.add: expected (K*K, H, W) or (N, K*K) filters, got shape {arr.shape}")
        if self._moment is None:
            d = rows.shape[1]
            self._moment, self._sum = np.zeros((d, d)), np.zeros(d)
        elif rows.shape[1] != self._moment.shape[0]:
            raise PffError(
                f"FilterPCA.add: filters of {rows.shape[1]} taps after filters of {self._moment.shape[0]}"
            )
        for start in range(0, rows.shape[0], _CHUNK):  # bounded float64 copies of big images
            block = rows[start : start + _CHUNK].astype(np.float64)
            self._moment += block.T @ block
            self._sum += block.sum(axis=0)
        self.count += rows.shape[0]

    def result(self, *, center: bool = True) -> PCAResult:
        """The decomposition of everything added so far."""
        if self._moment is None or self.count == 0:
            raise PffError("FilterPCA: no filters were added")
        mean = self._sum / self.count
        second = self._moment / self.count  # (K*K, K*K)
        cov = second - np.outer(mean, mean) if center else second
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
        order = np.argsort(values)[::-1]
        values, vectors = np.maximum(values[order], 0.0), vectors[:, order].T  # rows = components
        peak = np.argmax(np.abs(vectors), axis=1)
        vectors *= np.sign(vectors[np.arange(len(vectors)), peak])[:, None]
        return PCAResult(
            mean=mean if center else np.zeros_like(mean),
            components=vectors,
            eigenvalues=values,
            centered=center,
            count=self.count,
        )


def filter_pca(filter_sets: Iterable[np.ndarray], *, center: bool = True) -> PCAResult:
    """PCA of all filters of every (K*K, H, W) array in ``filter_sets`` (or (N, K*K) rows)."""
    acc = FilterPCA()
    for filters in filter_sets:
        acc.add(filters)
    return acc.result(center=center)


def pca_loadings(filters: np.ndarray, pca: PCAResult, n: int = 6) -> np.ndarray:
    """(n, H, W) float32: each pixel's coefficient on the top ``n`` components."""
    filters = check_filters(filters, "pca_loadings")
    if filters.shape[0] != pca.components.shape[1]:
        raise PffError(f"pca_loadings: filters have {filters.shape[0]} taps, the PCA {pca.components.shape[1]}")
    kk, h, w = filters.shape
    components, mean = pca.components[:n].astype(np.float32), pca.mean[:, None, None].astype(np.float32)
    maps = np.empty((len(components), h, w), dtype=np.float32)
    rows = max(1, _CHUNK // max(w, 1))
    for r in range(0, h, rows):  # bands of rows: a memory-mapped image is never copied whole
        centred = filters[:, r : r + rows] - mean  # (K*K, h', W)
        maps[:, r : r + rows] = np.tensordot(components, centred, axes=1)
    return maps
