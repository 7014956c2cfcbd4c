"""``pff explain``: what a model does to images, as figures and one HTML report."""
from __future__ import annotations

import argparse
from pathlib import Path

from pff.errors import PffError

_TASKS = ("deblur", "jpeg", "sr")

_DESCRIPTION = """\
Run a PFF model on images and show its per-pixel filters: for each image the
expected-flow colour map, maps of filter shape (entropy, spread) and the
filters at chosen (--at) or salient pixels; over all images given, PCA of the
filters (top 10 eigenfilters, the energy they hold, loading maps of the top 6)
and k-means of the filters with a t-SNE layout of the centroids and every
pixel coloured by its nearest centroid (paper, figure 6). Writes PNGs, a
summary.json and report.html (self-contained, opens offline, with a pixel
inspector) into -o DIR.

Inputs are what the model restores: deblur a blurry image, jpeg a compressed
image, sr the LOW-resolution image, which is upsampled by --scale with MATLAB
bicubic (as the benchmarks make SR inputs) before the model sees it; --at
coordinates are in that upsampled frame. A Y-channel model gets the luma of
an RGB image."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="figures and an HTML report of a model's per-pixel filters",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("images", nargs="+", metavar="IMAGE", help="input image files")
    add("--task", required=True, choices=_TASKS, help="restoration task")
    add("--model", metavar="NAME|PATH", help="shipped model name or model folder (default: the task's shipped model)")
    add("-o", "--out", required=True, metavar="DIR", help="output folder (new or empty, unless --overwrite)")
    add("--overwrite", action="store_true", help="write into a folder that already holds files, replacing a report there")
    add("--at", action="append", default=[], metavar="X,Y",
        help="show the filter of this pixel (repeatable); default: --salient pixels chosen automatically")
    add("--salient", type=int, default=6, metavar="N", help="pixels to choose when --at is not given (default 6)")
    add("--scale", type=int, default=4, metavar="S", help="sr only: upsampling factor of the input (default 4)")
    add("--clusters", type=int, default=400, metavar="K", help="k-means clusters, 0 to skip k-means (default 400)")
    add("--samples", type=int, default=100_000, metavar="N",
        help="filters k-means is fitted on, sampled evenly over the images (default 100000)")
    add("--seed", type=int, default=0, help="seed of the k-means sample, k-means and t-SNE (default 0)")
    add("--crop", metavar="X,Y,W,H", help="explain only this region of each image (input pixels; for sr, low-resolution ones)")
    add("--max-megapixels", type=float, default=2.0, metavar="MP",
        help="refuse larger images at the model's input: every pixel's filter is kept"
        " (17x17 filters: peak memory about 2.7 GB at 1 MP, 9.5 GB at 3.9 MP); default 2")
    add("--device", default="cpu", help="torch device (default cpu)")
    parser.set_defaults(run=run)


def parse_point(text: str) -> tuple[int, int]:
    """'X,Y' -> (x, y) integers >= 0."""
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise PffError(f"--at expects X,Y (two integers), got {text!r}") from None
    if x < 0 or y < 0:
        raise PffError(f"--at expects non-negative coordinates, got {text!r}")
    return x, y


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """'X,Y,W,H' -> (x, y, w, h) with x, y >= 0 and w, h >= 1."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise PffError(f"--crop expects X,Y,W,H (four integers), got {text!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise PffError(f"--crop expects X,Y >= 0 and W,H >= 1, got {text!r}")
    return x, y, w, h


def check_out(out: Path, overwrite: bool) -> None:
    """-o is a new folder that can be made, an empty folder, or (with ``overwrite``) any folder."""
    from pff.cli.batch import check_folder

    if out.exists() and not out.is_dir():
        raise PffError(f"-o '{out}' exists and is not a folder (pff explain writes a folder of figures)")
    if out.is_dir() and not overwrite and any(out.iterdir()):
        raise PffError(f"-o '{out}' is a folder that already holds files; pass --overwrite to write into it")
    check_folder(out)


def _prepare(path: str, crop: tuple[int, int, int, int] | None, scale: int, max_mp: float):
    """``(name, image)`` read from ``path``, cropped, and checked against the size limit."""
    from pff.io import read_image

    image = read_image(path)  # (H, W, 3) uint8
    name = Path(path).stem
    if crop is not None:
        x, y, w, h = crop
        if x + w > image.shape[1] or y + h > image.shape[0]:
            raise PffError(f"--crop {x},{y},{w},{h} is outside '{name}' ({image.shape[1]}x{image.shape[0]})")
        image = image[y : y + h, x : x + w]
    megapixels = image.shape[0] * image.shape[1] * scale**2 / 1e6
    if megapixels > max_mp:
        raise PffError(
            f"'{name}' is {megapixels:.1f} MP at the model's input and pff explain keeps every pixel's filter:"
            f" pass --crop X,Y,W,H (or raise --max-megapixels above {max_mp:g})"
        )
    return name, image


def run(args: argparse.Namespace) -> int:
    from pff.cli.eval import DEFAULT_MODELS
    from pff.explain import explain_images, load_explainable

    points = [parse_point(p) for p in args.at]
    for option, value, low in (("--salient", args.salient, 1), ("--clusters", args.clusters, 0),
                               ("--samples", args.samples, 1), ("--scale", args.scale, 2)):  # fmt: skip
        if value < low:
            raise PffError(f"{option} must be >= {low}, got {value}")
    if not args.max_megapixels > 0:
        raise PffError(f"--max-megapixels must be > 0, got {args.max_megapixels}")
    crop = parse_crop(args.crop) if args.crop else None
    check_out(Path(args.out), args.overwrite)
    scale = args.scale if args.task == "sr" else 1
    images = [_prepare(p, crop, scale, args.max_megapixels) for p in args.images]
    spec = args.model if args.model is not None else DEFAULT_MODELS[args.task]
    model, card = load_explainable(spec, args.task, device=args.device)
    meta = [("model", str(spec)), ("task", args.task), ("channels", card.channels)]
    if args.task == "sr":
        meta.append(("input", f"low-resolution image upsampled x{args.scale} (MATLAB bicubic)"))
    explain_images(
        model, card, images, args.out, task=args.task, scale=args.scale, points=points, salient=args.salient,
        clusters=args.clusters, max_samples=args.samples, seed=args.seed, meta=meta,
    )  # fmt: skip
    print(Path(args.out) / "report.html")
    return 0
