"""``pff train``: train a model from a TOML config (also under ``torchrun -m pff train``)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

_EPILOG = """\
overrides:
  --set KEY=VALUE sets any config key (repeatable), e.g.
    --set model.arch=pff-base --set model.kernel=11 --set optim.lr=1e-3
    --set data.roots='["photos/"]' --set data.degrade.quality=10
  VALUE is read as TOML (numbers, true/false, [lists], "strings");
  a bare word is a string. --steps N and --batch-size N are short for
  --set train.steps=N and --set train.batch_size=N.

resume:
  --resume continues the run in --out from its checkpoint (model, optimiser,
  schedule, step, data stream). The saved config is used unless --config is
  given; only train.* keys and data.workers may change (--steps extends a
  finished run). Bit-identical resumption needs the same train.threads.

several processes / GPUs:
  torchrun --nproc_per_node 2 -m pff train --config configs/deblur.toml
  (gloo on CPU, NCCL on CUDA; --batch-size is the global batch)
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a restoration model from a config file",
        description="Train a Predictive Filter Flow model on pairs made on the fly from clean images.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="TOML run config (see configs/)")
    parser.add_argument("--out", metavar="DIR", help="run folder (default: runs/<config name>)")
    parser.add_argument("--steps", type=int, metavar="N", help="total optimiser steps")
    parser.add_argument("--batch-size", type=int, metavar="N", help="global batch size")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable)")
    parser.add_argument("--list-archs", action="store_true", help="print the named architectures and exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pff.errors import PffError

    if args.list_archs:
        print(arch_table())
        return 0
    if args.out is None:
        if args.config is None:
            raise PffError("give --config FILE (and --out DIR to choose the run folder)")
        args.out = str(Path("runs") / Path(args.config).stem)
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.batch_size is not None:
        overrides.append(f"train.batch_size={args.batch_size}")

    from pff.train import resolve_config, train

    cfg = resolve_config(Path(args.out), args.config, overrides, resume=args.resume)
    summary = train(cfg, args.out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        line = f"done: {summary['steps']} steps; model in {args.out}/"
        if summary["val_psnr"] is not None:
            line += f" (validation PSNR {summary['val_psnr']:.2f} dB, input {summary['val_input_psnr']:.2f} dB)"
        print(line)
    return 0


def arch_table() -> str:
    """The named architectures with their parameter counts (RGB input, kernel 17)."""
    from pff.models import ARCHS, count_parameters, create

    rows = [f"{'name':<10} {'kind':<6} {'head':<10} {'params':>12}"]
    for name, config in ARCHS.items():
        head = f"basis-{config.basis}" if config.kind == "pff" and config.head == "basis" else (
            "full" if config.kind == "pff" else "pixels")
        rows.append(f"{name:<10} {config.kind:<6} {head:<10} {count_parameters(create(name)):>12,}")
    return "\n".join(rows)
