"""``pff explain`` as a library call: images -> figures (PNG) + report.html + summary.json.

Each image goes through the Restorer (:func:`explain_image`), which streams
its filters tile by tile into a temporary ``.npy`` file (memory-mapped), so
neither one large image nor a whole test set is ever held in memory as
filters; the PCA is accumulated from the files in blocks, the k-means sample
(``max_samples`` filters, drawn uniformly without replacement with the seed,
the same number from every image) read from them, and the per-image figures
that need the PCA or the centroids (loadings, nearest centroid) are drawn in
a second pass, again in bands of rows.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap
from tqdm import tqdm

from pff.errors import PffError
from pff.io import write_json_atomic
from pff.explain import figures as fig
from pff.explain.cluster import Clustering, cluster_filters
from pff.explain.flow import salient_pixels
from pff.explain.inference import Explanation, explain_image
from pff.explain.pca import FilterPCA, PCAResult
from pff.explain.report import ImageSection, render_report

__all__ = ["ExplainResult", "explain_images"]


@dataclass(frozen=True)
class ExplainResult:
    """What :func:`explain_images` wrote and computed."""

    out_dir: Path
    report: Path
    pca: PCAResult
    pca_uncentred: PCAResult
    clustering: Clustering | None
    points: dict[str, list[tuple[int, int]]]


def _folder_names(names: Sequence[str]) -> list[str]:
    """Safe, unique folder names for the images."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def _save(figure: Any, path: Path, captions: list[tuple[str, bytes]], caption: str) -> None:
    """Write ``figure`` as PNG to ``path`` and keep its bytes for the report."""
    png = fig.figure_png(figure)
    path.write_bytes(png)
    captions.append((caption, png))


def _check_points(points: Sequence[tuple[int, int]], expl: Explanation) -> None:
    h, w = expl.shape
    for x, y in points:
        if not (0 <= x < w and 0 <= y < h):
            raise PffError(f"--at {x},{y} is outside '{expl.name}' ({w}x{h} as the model sees it)")


def explain_images(
    restorer: Any,
    images: Sequence[tuple[str, np.ndarray]],
    out_dir: str | os.PathLike[str],
    *,
    points: Sequence[tuple[int, int]] = (),
    salient: int = 6,
    clusters: int = 400,
    max_samples: int = 100_000,
    components: int = 10,
    seed: int = 0,
    meta: Sequence[tuple[str, str]] = (),
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> ExplainResult:
    """Explain ``images`` ((name, image as ``Restorer.restore`` takes it) pairs) with ``restorer``
    (a :class:`pff.restore.Restorer` of a filter model) and write everything to ``out_dir``.

    Per image (a folder named after it): flow.png, shape.png, filters.png
    (``points`` (x, y) or, when none are given, ``salient`` chosen ones),
    loadings.png, clusters.png. Over all images: pca_eigenfilters.png,
    pca_energy.png, kmeans_tsne.png; then report.html. ``clusters=0`` skips
    k-means and t-SNE. Returns the PCA (centred and uncentred), the
    clustering and the points shown.
    """
    if not images:
        raise PffError("explain_images: no images given")
    log = log or (lambda line: print(line, file=sys.stderr))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folders = _folder_names([name for name, _ in images])
    pca_acc = FilterPCA()
    captions: dict[int, list[tuple[str, bytes]]] = {}
    shown: dict[str, list[tuple[int, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="pff-explain-") as tmp:
        stored: list[Explanation] = []
        for i, ((name, image), folder) in enumerate(zip(images, folders)):
            log(f"pff explain: [{i + 1}/{len(images)}] {name}")
            size = restorer.output_size(*np.shape(image)[:2])
            kernel = restorer.card.model.kernel
            store = open_memmap(Path(tmp) / f"{i}.npy", mode="w+", dtype=np.float32, shape=(kernel**2, *size))
            expl = explain_image(restorer, image, name=name, filters_out=store)
            stored.append(expl)
            pca_acc.add(expl.filters)
            _check_points(points, expl)
            pts = list(points) or salient_pixels(expl.filters, salient)
            shown[folder] = pts
            (out / folder).mkdir(exist_ok=True)
            caps = captions.setdefault(i, [])
            _save(fig.flow_figure(expl), out / folder / "flow.png", caps, "expected flow")
            _save(fig.shape_figure(expl), out / folder / "shape.png", caps, "filter shape")
            _save(fig.filters_figure(expl, pts), out / folder / "filters.png", caps, "filters at chosen pixels")
        pca, pca_raw = pca_acc.result(center=True), pca_acc.result(center=False)
        log(
            f"pff explain: PCA of {pca.count} filters: top {components} hold "
            f"{100 * pca.energy(components):.2f}% (centred), {100 * pca_raw.energy(components):.2f}% (uncentred)"
        )
        overall: list[tuple[str, bytes]] = []
        _save(fig.eigenfilters_figure(pca, components), out / "pca_eigenfilters.png", overall, "PCA: eigenfilters")
        _save(fig.energy_figure(pca, components), out / "pca_energy.png", overall, "PCA: energy captured")
        clustering = None
        if clusters > 0:
            log(f"pff explain: k-means (K={clusters}) and t-SNE of the centroids")
            clustering = cluster_filters(
                [e.filters for e in stored], clusters, max_samples=max_samples, seed=seed, progress=progress
            )
            _save(fig.tsne_figure(clustering), out / "kmeans_tsne.png", overall, "k-means centroids by t-SNE")
        bar = tqdm(list(enumerate(zip(stored, folders))), desc="figures", unit="img", file=sys.stderr,
                   leave=False, disable=None if progress else True)  # fmt: skip
        for i, (expl, folder) in bar:
            caps = captions[i]
            _save(fig.loadings_figure(expl, pca), out / folder / "loadings.png", caps, "PCA loading factors")
            if clustering is not None:
                _save(fig.cluster_figure(expl, clustering), out / folder / "clusters.png", caps, "nearest centroid")
        sections = [ImageSection(e, captions[i]) for i, e in enumerate(stored)]
        meta = list(meta) + [
            ("images", str(len(images))),
            ("filters", f"{stored[0].kernel}x{stored[0].kernel}, {pca.count} in all"
             + (", of the luma (this model filters chroma with filters of its own)"
                if restorer.card.model.color == "ycbcr" else "")),
            (f"PCA energy, top {components}", f"{100 * pca.energy(components):.3f}% centred, "
             f"{100 * pca_raw.energy(components):.3f}% uncentred"),
        ]  # fmt: skip
        report = out / "report.html"
        report.write_text(render_report(sections, overall, meta=meta), encoding="utf-8")
        del stored, sections  # release the memory maps before the folder goes
    write_json_atomic(out / "summary.json", _summary(folders, images, shown, pca, pca_raw, clustering, components))
    log(f"pff explain: wrote {report}")
    return ExplainResult(out, report, pca, pca_raw, clustering, shown)


def _summary(
    folders: Sequence[str],
    images: Sequence[tuple[str, np.ndarray]],
    shown: dict[str, list[tuple[int, int]]],
    pca: PCAResult,
    pca_raw: PCAResult,
    clustering: Clustering | None,
    components: int,
) -> dict[str, Any]:
    """The numbers of a run, for summary.json."""
    return {
        "images": [
            {"name": name, "folder": folder, "points": [list(p) for p in shown[folder]]}
            for (name, _), folder in zip(images, folders)
        ],
        "filters": pca.count,
        "kernel": pca.kernel,
        "pca": {
            "components": components,
            "energy_centred": pca.energy(components),
            "energy_uncentred": pca_raw.energy(components),
            "energy_ratio_centred": [float(v) for v in pca.energy_ratio[:components]],
        },
        "kmeans": None if clustering is None else {"k": len(clustering.centroids), "samples": clustering.samples},
    }
