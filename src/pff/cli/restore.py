"""``pff restore``: restore image files or folders with a trained model."""
from __future__ import annotations

import argparse
import os
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
            f"as NAME{SUFFIX}.EXT. Inputs are never overwritten. For --task sr the input is the "
            "low-resolution image."
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
    spec = args.model or default_model(args.task, scale=args.scale)
    options = dict(tile=args.tile, iterations=args.iterations, strength=args.strength, precision=args.precision)
    return Restorer.from_pretrained(spec, task=args.task, scale=args.scale, device=args.device, progress=True, **options)


def _flow_paths(
    pairs: list[tuple[Path, Path]], flow: str | None, single: bool, output: Path | None
) -> list[Path | None]:
    """Where each flow map goes: the --flow file, or NAME-flow.png in the --flow folder mirroring the outputs."""
    if flow is None:
        return [None] * len(pairs)
    if single:
        return [Path(flow)]
    paths: list[Path | None] = []
    for _, target in pairs:
        relative = target.relative_to(output) if output is not None else Path(target.name)
        paths.append(Path(flow) / relative.with_name(f"{relative.stem}-flow.png"))
    return paths


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PffError(f"cannot create the output folder '{folder}': {err.strerror or err}") from err
    if not folder.is_dir():
        raise PffError(f"output '{folder}' is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PffError(f"cannot write into the output folder '{folder}': permission denied")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pff.restore import output_paths, restore_file

    inputs = [Path(p) for p in args.inputs]
    single = len(inputs) == 1 and inputs[0].is_file()
    output = Path(args.output) if args.output else None
    pairs = output_paths(inputs, output, SUFFIX)
    if output is not None:
        _check_writable(output.parent if single else output)
    flows = _flow_paths(pairs, args.flow, single, output)
    if args.flow and not single:
        _check_writable(Path(args.flow))
    restorer = _restorer(args)
    if args.flow and not restorer.has_filters:
        raise PffError("--flow needs a filter-flow model; this one predicts pixels directly")
    if single:
        source, target = pairs[0]
        restore_file(restorer, source, target, flow_target=flows[0])
        print(f"{source} -> {target}")
        return 0
    failures: list[str] = []
    bar = tqdm(list(zip(pairs, flows)), desc="pff restore", unit="img", file=sys.stderr, disable=None)
    for (source, target), flow in bar:
        try:
            restore_file(restorer, source, target, flow_target=flow)
        except PffError as err:
            failures.append(str(err))
    done = len(pairs) - len(failures)
    print(f"restored {done} of {len(pairs)} images" + (f" into {output}" if output else ""))
    if failures:
        for failure in failures:
            print(f"pff: error: {failure}", file=sys.stderr)
        raise PffError(f"{len(failures)} of {len(pairs)} images failed (listed above)")
    return 0
