"""``pff explain``: what a model does to images, as figures and one HTML report."""
from __future__ import annotations

import argparse
from pathlib import Path

from pff.degrade import TASKS
from pff.errors import PffError

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
image, sr the LOW-resolution image. Every image goes through the same path
as pff restore (the Restorer): an sr model that sharpens upsampled images
gets the MATLAB bicubic upsampling by its scale (--scale picks the shipped
model of that scale), and --at coordinates are in the output frame; a
Y-channel model gets the luma of an RGB image. Images of any size work: the
model runs in tiles and each tile's filters go straight to a temporary file,
so memory is bounded by the tile size; the PCA reads every filter, k-means
is fitted on --samples of them."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="figures and an HTML report of a model's per-pixel filters",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("images", nargs="+", metavar="IMAGE", help="input image files")
    add("--task", required=True, choices=tuple(TASKS), help="restoration task")
    add("--model", metavar="NAME|PATH", help="shipped model name or model folder (default: the task's shipped model)")
    add("-o", "--out", required=True, metavar="DIR", help="output folder (new or empty, unless --overwrite)")
    add("--overwrite", action="store_true", help="write into a folder that already holds files, replacing a report there")
    add("--at", action="append", default=[], metavar="X,Y",
        help="show the filter of this pixel (repeatable); default: --salient pixels chosen automatically")
    add("--salient", type=int, default=6, metavar="N", help="pixels to choose when --at is not given (default 6)")
    add("--scale", type=int, metavar="S", help="sr only: the scale of the input, picks the shipped model (default 4)")
    add("--clusters", type=int, default=400, metavar="K", help="k-means clusters, 0 to skip k-means (default 400)")
    add("--samples", type=int, default=100_000, metavar="N",
        help="filters k-means is fitted on, sampled evenly over the images (default 100000)")
    add("--seed", type=int, default=0, help="seed of the k-means sample, k-means and t-SNE (default 0)")
    add("--crop", metavar="X,Y,W,H", help="explain only this region of each image (input pixels; for sr, low-resolution ones)")
    add("--tile", type=int, default=256, metavar="N",
        help="tile size in input pixels; memory grows with its square (default 256)")
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


def _prepare(path: str, crop: tuple[int, int, int, int] | None) -> tuple[str, object]:
    """``(name, image)`` read from ``path`` and cropped."""
    from pff.io import read_picture

    image = read_picture(path).pixels
    name = Path(path).stem
    if crop is not None:
        x, y, w, h = crop
        if x + w > image.shape[1] or y + h > image.shape[0]:
            raise PffError(f"--crop {x},{y},{w},{h} is outside '{name}' ({image.shape[1]}x{image.shape[0]})")
        image = image[y : y + h, x : x + w]
    return name, image


def run(args: argparse.Namespace) -> int:
    from pff.explain import explain_images, load_explainable
    from pff.models import default_model

    points = [parse_point(p) for p in args.at]
    for option, value, low in (("--salient", args.salient, 1), ("--clusters", args.clusters, 0),
                               ("--samples", args.samples, 1), ("--tile", args.tile, 0)):  # fmt: skip
        if value < low:
            raise PffError(f"{option} must be >= {low}, got {value}")
    if args.scale is not None and args.task != "sr":
        raise PffError("--scale applies only to --task sr")
    crop = parse_crop(args.crop) if args.crop else None
    check_out(Path(args.out), args.overwrite)
    images = [_prepare(p, crop) for p in args.images]
    spec = args.model if args.model is not None else default_model(args.task, scale=args.scale)
    restorer = load_explainable(spec, args.task, scale=args.scale, device=args.device, tile=args.tile)
    card = restorer.card
    meta = [("model", str(spec)), ("task", args.task), ("channels", card.channels)]
    if restorer.input_scale > 1:
        meta.append(("input", f"low-resolution image upsampled x{restorer.input_scale} (MATLAB bicubic)"))
    explain_images(
        restorer, images, args.out, points=points, salient=args.salient,
        clusters=args.clusters, max_samples=args.samples, seed=args.seed, meta=meta,
    )  # fmt: skip
    print(Path(args.out) / "report.html")
    return 0
