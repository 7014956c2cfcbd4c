"""File batching for ``pff restore``: which input goes to which output, checked before anything is written.

:func:`plan` turns the command line's inputs (files and folders) into
:class:`Job` s and refuses, before any file is touched: inputs that are not
regular files or folders (devices, FIFOs, sockets), two outputs with the same
path, an output that is an input, an output that exists (unless
``overwrite``) or is not a regular file, and output folders that cannot be
created. :func:`restore_file` then runs one job.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pff.errors import PffError
from pff.io import file_kind, list_images

if TYPE_CHECKING:
    from pff.restore import Restorer


@dataclass(frozen=True)
class Job:
    """Restore ``source`` into ``target``; with ``flow``, also write its flow map there."""

    source: Path
    target: Path
    flow: Path | None = None


def plan(
    inputs: list[Path], output: Path | None, flow: Path | None, *, suffix: str, overwrite: bool = False
) -> list[Job]:
    """One :class:`Job` per image under ``inputs`` (files or folders, recursive), in order.

    With one input file, ``output`` and ``flow`` name files (default output:
    ``NAME<suffix>.EXT`` beside the input); otherwise they name folders
    mirroring the inputs' names (inputs' own folder names kept when several
    are given), flow maps named ``NAME-flow.png``; without ``output`` each
    image goes beside its input with ``suffix``. Raises PffError for any
    problem listed in the module docstring; creates nothing.
    """
    files = _input_files(inputs)
    single = len(inputs) == 1 and not inputs[0].is_dir()
    jobs = []
    for path, relative in files:
        if output is None:
            target = path.with_name(f"{path.stem}{suffix}{path.suffix}")
        else:
            target = output if single else output / relative
        flow_target = None
        if flow is not None:
            mirrored = relative if output is not None else Path(target.name)
            flow_target = flow if single else flow / mirrored.with_name(f"{mirrored.stem}-flow.png")
        jobs.append(Job(path, target, flow_target))
    _check_distinct(jobs)
    _check_targets([p for job in jobs for p in (job.target, job.flow) if p is not None], overwrite)
    return jobs


def restore_file(restorer: Restorer, job: Job, *, overwrite: bool = False) -> None:
    """Read ``job.source``, restore it, write ``job.target`` atomically (same mode and bit depth, ICC and EXIF kept).

    With ``job.flow``, also write the colour-coded expected flow there
    (``pff.flowviz.flow_to_rgb``). Without ``overwrite`` an existing target
    is left alone. Raises PffError for any problem with the files.
    """
    from pff.flowviz import flow_to_rgb
    from pff.io import read_picture, write_picture

    picture = read_picture(job.source)
    if job.flow is None:
        restored, flow = restorer.restore(picture.pixels), None
    else:
        restored, flow = restorer.restore_with_flow(picture.pixels)
    write_picture(job.target, restored, icc_profile=picture.icc_profile, exif=picture.exif, overwrite=overwrite)
    if flow is not None and job.flow is not None:
        write_picture(job.flow, flow_to_rgb(flow), overwrite=overwrite)


def _input_files(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """``(image file, its path mirrored under an output folder)`` for every input."""
    files: list[tuple[Path, Path]] = []
    for source in inputs:
        kind = file_kind(source)
        if kind is not None:
            raise PffError(f"input '{source}' is {kind}, not an image file or folder")
        if source.is_dir():
            found = list_images(source)
            prefix = Path(source.resolve().name) if len(inputs) > 1 else Path()
            files += [(f, prefix / f.relative_to(source)) for f in found]
        elif source.exists():
            files.append((source, Path(source.name)))
        else:
            raise PffError(f"input '{source}' does not exist")
    return files


def _check_distinct(jobs: list[Job]) -> None:
    """No output is an input, and no two outputs (images and flow maps) share a path."""
    inputs = {job.source.resolve(): job.source for job in jobs}
    written: dict[Path, str] = {}
    for job in jobs:
        for path, role in ((job.target, "output"), (job.flow, "flow map")):
            if path is None:
                continue
            key = path.resolve()
            if key in inputs:
                raise PffError(f"refusing to overwrite the input '{inputs[key]}' with the {role} of '{job.source}' (choose another -o or --flow)")
            if key in written:
                raise PffError(
                    f"{written[key]} and the {role} of '{job.source}' would both be written to '{path}'"
                    " (choose other -o or --flow paths, or restore those inputs separately)"
                )
            written[key] = f"the {role} of '{job.source}'"


def _check_targets(paths: list[Path], overwrite: bool) -> None:
    """Every output is new (or a regular file, with ``overwrite``) in a folder that exists or can be made."""
    existing = []
    for path in paths:
        kind = file_kind(path)
        if kind is not None:
            raise PffError(f"output '{path}' is {kind}, not a regular file")
        if path.is_dir():
            raise PffError(f"output '{path}' is a folder, not a file")
        if path.exists() or path.is_symlink():
            existing.append(path)
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more outputs)" if len(existing) > 1 else ""
        raise PffError(f"output '{existing[0]}' already exists{more}; pass --overwrite to replace")
    for folder in sorted({path.parent for path in paths}):
        check_folder(folder)


def check_folder(folder: Path) -> None:
    """``folder`` exists and is writable, or its nearest existing ancestor is a writable folder."""
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PffError(f"cannot create the output folder '{folder}': '{existing}' is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == folder:
            raise PffError(f"cannot write into the output folder '{folder}': permission denied")
        raise PffError(f"cannot create the output folder '{folder}': permission denied in '{existing}'")
