"""``pff restore``: restore image files or folders with a trained model."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pff.degrade import TASKS
from pff.errors import PffError

SUFFIX = "-restored"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="restore image files or folders",
        description=(
            "Restore images (PNG, JPEG, BMP, TIFF, WebP; gray, RGB, alpha, palette, 8 or 16 bits). "
            "With one input file -o names the output file; with several inputs or a folder it names "
            f"an output folder mirroring the inputs' names. Without -o, outputs go beside the inputs "
            f"as NAME{SUFFIX}.EXT. Inputs are never overwritten, nor existing files unless --overwrite "
            "is given; every output path is checked before anything is written. Animated images are "
            "refused. For --task sr the input is the low-resolution image."
        ),
    )
    add = parser.add_argument
    add("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    add("--task", choices=tuple(TASKS), help="what to undo (default: the model's task)")
    add("-o", "--output", metavar="OUT", help="output file (one input file) or folder")
    add("--model", metavar="NAME|PATH", help="shipped model name or model folder (default: the task's shipped model)")
    add("--scale", type=int, help="super-resolution factor (--task sr; default 4): picks the shipped model of that scale")
    add("--tile", type=int, metavar="N", help="tile size in pixels; 0 = whole image (default: tile images over 1.5 MP)")
    add("--iterations", type=int, default=1, metavar="N", help="passes of the model, each on the last output (2 = the paper's PFF+1)")
    add("--strength", type=float, default=1.0, metavar="S", help="0 = input unchanged ... 1 = the model's output (default 1)")
    add("--flow", metavar="FILE", help="also write the expected-flow colour map (a folder for several inputs)")
    add("--overwrite", action="store_true", help="replace existing output files (never an input)")
    add("--device", default="cpu", help="cpu or cuda (default cpu)")
    add("--precision", choices=("fp32", "bf16"), default="fp32", help="network arithmetic (default fp32)")
    parser.set_defaults(run=run)


def _restorer(args: argparse.Namespace):  # -> pff.restore.Restorer
    from pff.models import default_model
    from pff.restore import Restorer, check_device

    if args.task is None and args.model is None:
        raise PffError("give --task (to use its shipped model) or --model")
    if args.scale is not None and args.task != "sr":
        raise PffError("--scale applies only to --task sr")
    check_device(args.device)
    spec = args.model if args.model is not None else default_model(args.task, scale=args.scale)
    options = dict(tile=args.tile, iterations=args.iterations, strength=args.strength, precision=args.precision)
    return Restorer.from_pretrained(spec, task=args.task, scale=args.scale, device=args.device, progress=True, **options)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pff.cli.batch import plan, restore_file

    for option, value in [("-o", args.output), ("--flow", args.flow)] + [("INPUT", p) for p in args.inputs]:
        if value == "":
            raise PffError(f"{option} must name a file or folder, got ''")
    inputs = [Path(p) for p in args.inputs]
    output = Path(args.output) if args.output is not None else None
    flow = Path(args.flow) if args.flow is not None else None
    jobs = plan(inputs, output, flow, suffix=SUFFIX, overwrite=args.overwrite)
    restorer = _restorer(args)
    if flow is not None and not restorer.has_filters:
        raise PffError("--flow needs a filter-flow model; this one predicts pixels directly")
    if len(inputs) == 1 and not inputs[0].is_dir():
        restore_file(restorer, jobs[0], overwrite=args.overwrite)
        print(f"{jobs[0].source} -> {jobs[0].target}")
        return 0
    failures: list[str] = []
    bar = tqdm(jobs, desc="pff restore", unit="img", file=sys.stderr, disable=None)
    for job in bar:
        try:
            restore_file(restorer, job, overwrite=args.overwrite)
        except PffError as err:
            failures.append(str(err))
    done = len(jobs) - len(failures)
    print(f"restored {done} of {len(jobs)} images" + (f" into {output}" if output else ""))
    if failures:
        for failure in failures:
            print(f"pff: error: {failure}", file=sys.stderr)
        raise PffError(f"{len(failures)} of {len(jobs)} images failed (listed above)")
    return 0
