"""``pff eval``: score a model (or the degraded input) on a benchmark folder."""
from __future__ import annotations

import argparse
import sys

from pff.degrade import TASKS
from pff.errors import PffError

_PROTOCOLS = ("paper", "standard", "color")  # pff.evaluate.PROTOCOLS, kept here so --help imports no scipy (tested equal)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score a model or the degraded input on a benchmark",
        description=(
            "Score a model on a benchmark folder with the protocol of the paper's tables. "
            "deblur folders hold NAME_GT.png / NAME_blurry.png pairs; jpeg and sr folders hold "
            "clean images, degraded here. --model none scores the degraded input itself."
        ),
    )
    parser.add_argument("--task", required=True, choices=tuple(TASKS), help="restoration task")
    parser.add_argument("--data", required=True, metavar="DIR", help="benchmark folder")
    parser.add_argument("--quality", metavar="Q", help="JPEG quality 1-100 (required for --task jpeg)")
    parser.add_argument("--scale", metavar="S", help="super-resolution scale (--task sr; default 4)")
    parser.add_argument(
        "--protocol",
        choices=_PROTOCOLS,
        default="paper",
        help="'paper': the paper's scoring (for deblur, the official code's recipe); "
        "'standard': Y, Gaussian SSIM, no crop (identical for jpeg and sr); "
        "'color' (jpeg): colour JPEGs (4:2:0), RGB PSNR, SSIM averaged over R, G, B. Default: paper",
    )
    parser.add_argument(
        "--model",
        metavar="NAME|PATH|none",
        help="shipped model name, model folder, or 'none' for the degraded input "
        "(default: the task's shipped model; for sr, the one of --scale)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.set_defaults(run=run)


def _int_option(value: str | None, option: str, task: str, wanted_task: str) -> int | None:
    """An integer option's value; None when not given. Only valid for ``wanted_task``."""
    if value is None:
        return None
    if task != wanted_task:
        raise PffError(f"{option} applies only to --task {wanted_task}")
    try:
        return int(value)
    except ValueError:
        raise PffError(f"{option} must be an integer, got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    from pff.evaluate import build_benchmark, evaluate, format_table, model_restorer
    from pff.io import write_json_atomic
    from pff.models import default_model

    quality = _int_option(args.quality, "--quality", args.task, "jpeg")
    scale = _int_option(args.scale, "--scale", args.task, "sr")
    benchmark = build_benchmark(args.task, args.data, quality=quality, scale=scale, protocol=args.protocol)
    model = args.model if args.model is not None else default_model(args.task, scale=benchmark.scale)
    restore = None if model == "none" else model_restorer(model, args.task, scale=benchmark.scale, protocol=args.protocol)
    result = evaluate(benchmark, restore, protocol=args.protocol, model=model)
    print(format_table(result))
    if args.json:
        write_json_atomic(args.json, result.to_dict())
        print(f"pff: wrote {args.json}", file=sys.stderr)
    return 0
