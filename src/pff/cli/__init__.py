"""The ``pff`` command: parse arguments, call the library, print.

Each subcommand lives in its own module with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``; they are listed
explicitly in ``_COMMANDS`` (no import-time registry).
"""
from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from typing import NoReturn

from pff import __version__
from pff.allocator import keep_freed_memory
from pff.errors import PffError

# Subcommand modules, in the order ``pff --help`` lists them.
_COMMANDS: tuple[str, ...] = ("restore", "eval", "train", "explain", "demo", "export")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error printed as the one ``pff: error:`` line every error gets."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"pff: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``pff`` argument parser with every subcommand attached."""
    import importlib

    parser = _Parser(
        prog="pff",
        description="Interpretable image restoration with Predictive Filter Flow.",
    )
    parser.add_argument("--version", action="version", version=f"pff {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        module = importlib.import_module(f"pff.cli.{name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pff`` console script; returns the exit status."""
    # File names that are not valid UTF-8, printed to a strict-encoding stdout,
    # come out escaped rather than raising after the work is done.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    keep_freed_memory()  # restores and training steps run faster; a command's process is ours
    try:
        return int(args.run(args) or 0)
    except PffError as err:
        print(f"pff: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pff: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
