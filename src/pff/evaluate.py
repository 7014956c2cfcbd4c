"""Benchmarks -> per-image records -> tables (../shared/PROTOCOL.md).

A benchmark is a folder turned into a list of items, each able to produce its
(degraded uint8, target uint8) pair on demand:

- deblur: ``NAME_GT.png`` / ``NAME_blurry.png`` pairs, read as RGB.
- jpeg: clean images; target = MATLAB Y (uint8), degraded = that Y encoded as
  a grayscale IJG JPEG at the given quality and decoded. Under the "color"
  protocol: target = the RGB image, degraded = it saved as an RGB JPEG with
  Pillow's defaults (4:2:0 chroma subsampling) and decoded.
- sr: clean images; target = the image cropped to a multiple of the scale
  (gray treated as RGB), degraded = its rounded bicubic downsampling (the
  low-resolution image). The baseline is its rounded bicubic upsampling
  (``pff.degrade.upsample``), which is also what a model that sharpens
  upsampled images is given (by :class:`pff.restore.Restorer`).

A restorer is any callable ``restore(degraded) -> restored``: uint8 in, float
in [0, 255] out, (H, W, 3) RGB or (H, W) Y. ``restore=None`` scores the
degraded input itself (for sr its upsampling), the baseline row of every
table. :func:`model_restorer` makes one from a model, through the Restorer.

Protocols: for deblur, "paper" is the official PFF evaluation code's recipe
and "standard" the common rules (Y, Gaussian SSIM, no crop). For jpeg and sr
the paper's tables follow the literature, which is the standard protocol, so
"paper" and "standard" give the same numbers there; "color" (jpeg only)
scores RGB PSNR over the three channels and SSIM averaged over R, G, B.
"""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pff.color import rgb_to_y
from pff.degrade import TASKS
from pff.degrade.jpeg import check_quality, jpeg_roundtrip
from pff.degrade.resize import modcrop, sr_pair, upsample
from pff.errors import PffError
from pff.io import list_images, read_image
from pff.metrics import Score, score_paper_deblur, score_rgb, score_standard

PROTOCOLS: tuple[str, ...] = ("paper", "standard", "color")

Restorer = Callable[[np.ndarray], np.ndarray]
Scorer = Callable[[np.ndarray, np.ndarray], Score]


@dataclass(frozen=True)
class Item:
    """One benchmark image: its name and a loader of its (degraded, target) uint8 pair."""

    name: str
    load: Callable[[], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Benchmark:
    """A task's test set built from a folder; ``quality``/``scale`` only for jpeg/sr."""

    task: str
    data: Path
    items: tuple[Item, ...]
    quality: int | None = None
    scale: int | None = None

    def baseline(self, degraded: np.ndarray) -> np.ndarray:
        """The degraded input as scored without a model: for sr, its bicubic upsampling."""
        return degraded if self.scale is None else upsample(degraded, self.scale)


def _name(path: Path, folder: Path) -> str:
    """The image's path relative to the folder, without suffix ('baby', 'sub/x')."""
    return path.relative_to(folder).with_suffix("").as_posix()


def _listing(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _deblur_load(name: str, gt_path: Path, blurry_path: Path) -> tuple[np.ndarray, np.ndarray]:
    gt = read_image(gt_path)
    blurry = read_image(blurry_path)
    if gt.shape != blurry.shape:
        size_gt, size_blurry = f"{gt.shape[1]}x{gt.shape[0]}", f"{blurry.shape[1]}x{blurry.shape[0]}"
        raise PffError(f"pair '{name}': the ground truth is {size_gt} but the blurry image is {size_blurry}")
    return blurry, gt


def deblur_pairs(folder: str | os.PathLike[str]) -> list[tuple[str, Path, Path]]:
    """(name, GT path, blurry path) for every ``NAME_GT.*`` / ``NAME_blurry.*`` pair, sorted.

    Raises PffError if the folder has no pairs, or if a GT or blurry image has
    no partner (the message lists them). Other images are ignored.
    """
    folder = Path(folder)
    paths = list_images(folder)
    halves: dict[str, dict[str, Path]] = {"_GT": {}, "_blurry": {}}
    for path in paths:
        stem = _name(path, folder)
        for suffix, found in halves.items():
            if stem.endswith(suffix):
                key = stem[: -len(suffix)]
                if key in found:
                    raise PffError(f"two {suffix[1:]} images for '{key}' in '{folder}': {found[key].name}, {path.name}")
                found[key] = path
    gts, blurries = halves["_GT"], halves["_blurry"]
    unpaired = sorted(
        [gts[k].relative_to(folder).as_posix() for k in gts.keys() - blurries.keys()]
        + [blurries[k].relative_to(folder).as_posix() for k in blurries.keys() - gts.keys()]
    )
    if not gts.keys() & blurries.keys():
        others = unpaired or [p.relative_to(folder).as_posix() for p in paths]
        raise PffError(f"no NAME_GT / NAME_blurry image pairs in '{folder}' (found {_listing(others)})")
    if unpaired:
        raise PffError(f"images without a GT/blurry partner in '{folder}': {_listing(unpaired)}")
    return [(key, gts[key], blurries[key]) for key in sorted(gts)]


def deblur_benchmark(folder: str | os.PathLike[str]) -> Benchmark:
    """Deblurring pairs: degraded = the blurry image, target = GT, both (H, W, 3) uint8."""
    items = tuple(
        Item(name, lambda n=name, g=gt, b=blurry: _deblur_load(n, g, b))
        for name, gt, blurry in deblur_pairs(folder)
    )
    return Benchmark("deblur", Path(folder), items)


def check_scale(scale: int) -> int:
    """An SR scale must be an integer >= 2."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 2:
        raise PffError(f"super-resolution scale must be an integer >= 2, got {scale!r}")
    return int(scale)


def _jpeg_load(path: Path, quality: int, color: bool) -> tuple[np.ndarray, np.ndarray]:
    gt = read_image(path) if color else rgb_to_y(read_image(path))  # (H, W, 3) RGB or (H, W) Y, uint8
    return jpeg_roundtrip(gt, quality), gt


def jpeg_benchmark(folder: str | os.PathLike[str], quality: int, *, color: bool = False) -> Benchmark:
    """JPEG artifact reduction: target = Y (H, W) uint8, degraded = its grayscale JPEG at ``quality``;
    with ``color``, target = RGB (H, W, 3) uint8, degraded = its 4:2:0 colour JPEG."""
    quality = check_quality(quality)
    folder = Path(folder)
    items = tuple(Item(_name(p, folder), lambda p=p: _jpeg_load(p, quality, color)) for p in list_images(folder))
    return Benchmark("jpeg", folder, items, quality=quality)


def _sr_load(path: Path, scale: int) -> tuple[np.ndarray, np.ndarray]:
    image = read_image(path)  # gray becomes R = G = B
    if min(image.shape[:2]) < scale:
        raise PffError(f"cannot make a x{scale} pair of '{path}': the image is smaller than {scale} pixels")
    hr = modcrop(image, scale)
    lr, _ = sr_pair(hr, scale=scale)
    return lr, hr


def sr_benchmark(folder: str | os.PathLike[str], scale: int = 4) -> Benchmark:
    """Super-resolution: target = HR (H, W, 3) uint8 cropped to a multiple of ``scale``,
    degraded = its rounded bicubic downsampling (H / scale, W / scale, 3) uint8."""
    scale = check_scale(scale)
    folder = Path(folder)
    items = tuple(Item(_name(p, folder), lambda p=p: _sr_load(p, scale)) for p in list_images(folder))
    return Benchmark("sr", folder, items, scale=scale)


def build_benchmark(
    task: str,
    folder: str | os.PathLike[str],
    *,
    quality: int | None = None,
    scale: int | None = None,
    protocol: str = "paper",
) -> Benchmark:
    """The benchmark of ``task`` over ``folder``; jpeg needs ``quality``, sr uses ``scale`` (default 4).

    The "color" protocol (jpeg only) makes colour JPEG pairs."""
    if protocol not in PROTOCOLS:
        raise PffError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    if protocol == "color" and task != "jpeg":
        raise PffError(f"the color protocol is for --task jpeg, not {task!r}")
    if task == "deblur":
        return deblur_benchmark(folder)
    if task == "jpeg":
        if quality is None:
            raise PffError("the jpeg task needs a quality (--quality, e.g. 10, 20 or 40)")
        return jpeg_benchmark(folder, quality, color=protocol == "color")
    if task == "sr":
        return sr_benchmark(folder, 4 if scale is None else scale)
    raise PffError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")


def scorer(task: str, protocol: str, *, scale: int = 4) -> Scorer:
    """The scoring function ``score(restored, target) -> Score`` of a task under a protocol.

    For sr, ``scale`` pixels are cropped from every side before scoring.
    """
    if task not in TASKS:
        raise PffError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    if protocol not in PROTOCOLS:
        raise PffError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    if protocol == "color":
        if task != "jpeg":
            raise PffError(f"the color protocol is for --task jpeg, not {task!r}")
        return score_rgb
    if task == "deblur":
        return score_paper_deblur if protocol == "paper" else score_standard
    if task == "sr":
        return partial(score_standard, crop=scale)
    return score_standard


@dataclass(frozen=True)
class ImageRecord:
    """Scores of one image."""

    name: str
    psnr: float
    ssim: float


def _finite_or_none(value: float) -> float | None:
    """JSON has no Infinity: an infinite PSNR (identical images) is written as null."""
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class EvalResult:
    """Per-image records of one evaluation and their means."""

    task: str
    data: str
    model: str
    protocol: str
    records: tuple[ImageRecord, ...]
    quality: int | None = None
    scale: int | None = None

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def psnr(self) -> float:
        return float(np.mean([r.psnr for r in self.records]))

    @property
    def ssim(self) -> float:
        return float(np.mean([r.ssim for r in self.records]))

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` schema: task, data, model, protocol, [quality | scale], psnr, ssim, n, images."""
        out: dict[str, Any] = {"task": self.task, "data": self.data, "model": self.model, "protocol": self.protocol}
        if self.quality is not None:
            out["quality"] = self.quality
        if self.scale is not None:
            out["scale"] = self.scale
        out.update(psnr=_finite_or_none(self.psnr), ssim=self.ssim, n=self.n)
        out["images"] = [{"name": r.name, "psnr": _finite_or_none(r.psnr), "ssim": r.ssim} for r in self.records]
        return out


def _score_one(benchmark: Benchmark, item: Item, restore: Restorer | None, score: Scorer) -> ImageRecord:
    degraded, target = item.load()
    restored = benchmark.baseline(degraded) if restore is None else restore(degraded)
    try:
        result = score(restored, target)
    except (PffError, ValueError) as err:
        raise PffError(f"cannot score '{item.name}': {err}") from err
    return ImageRecord(item.name, result.psnr, result.ssim)


def evaluate(
    benchmark: Benchmark,
    restore: Restorer | None = None,
    *,
    protocol: str = "paper",
    model: str = "none",
    progress: bool = True,
) -> EvalResult:
    """Restore and score every image of ``benchmark``.

    restore: ``degraded uint8 -> restored float in [0, 255]`` ((H, W, 3) RGB or
    (H, W) Y), or None to score the degraded input itself (:meth:`Benchmark.baseline`). ``model`` is the
    name recorded in the result. The progress bar goes to stderr and only
    shows on a terminal (and when ``progress`` is true).
    """
    score = scorer(benchmark.task, protocol, scale=benchmark.scale or 4)
    records = []
    bar = tqdm(
        benchmark.items,
        desc=f"pff eval {benchmark.task}",
        unit="img",
        file=sys.stderr,
        leave=False,
        disable=None if progress else True,  # None: only on a terminal
    )
    with bar:
        for item in bar:
            records.append(_score_one(benchmark, item, restore, score))
    return EvalResult(
        task=benchmark.task,
        data=str(benchmark.data),
        model=model,
        protocol=protocol,
        records=tuple(records),
        quality=benchmark.quality,
        scale=benchmark.scale,
    )


def format_table(result: EvalResult) -> str:
    """A per-image table with the mean as its last row, columns aligned."""
    setting = {"jpeg": f" q{result.quality}", "sr": f" x{result.scale}"}.get(result.task, "")
    header = f"{result.task}{setting} on {result.data} | model {result.model} | protocol {result.protocol}"
    mean_name = f"mean ({result.n})"
    width = max([len("image"), len(mean_name)] + [len(r.name) for r in result.records])
    rows = [header, f"{'image':<{width}}  {'PSNR':>7}  {'SSIM':>6}"]
    rows += [f"{r.name:<{width}}  {r.psnr:7.2f}  {r.ssim:6.4f}" for r in result.records]
    rows.append("-" * (width + 17))
    rows.append(f"{mean_name:<{width}}  {result.psnr:7.2f}  {result.ssim:6.4f}")
    return "\n".join(rows)


def model_restorer(
    spec: str, task: str, *, scale: int | None = None, device: str = "cpu", protocol: str = "paper"
) -> Restorer:
    """A restorer from a shipped model name or a model folder: :meth:`pff.restore.Restorer.restore_protocol`,
    or for the "color" protocol :meth:`~pff.restore.Restorer.restore` (the whole colour image; a y
    model restores its luma and keeps its chroma).

    The model's card must fit ``task`` (and ``scale`` for sr; None accepts
    the card's). The whole image is restored at once (``tile=0``).
    """
    from pff.restore import Restorer as ModelRestorer

    restorer = ModelRestorer.from_pretrained(spec, task=task, scale=scale, device=device, tile=0)
    return restorer.restore if protocol == "color" else restorer.restore_protocol
