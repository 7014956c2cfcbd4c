"""Degradations ("physics"): what turns a clean image into the model's input.

Plain functions (``imresize``, ``sr_pair``, ``jpeg_roundtrip``, ``blur``,
``motion_kernel``, ...) do the work; the small frozen dataclasses
``MotionBlur``, ``Jpeg`` and ``Bicubic`` hold a task's parameters and share
one interface (:class:`Degradation`), which ``pff.data`` uses to make
training pairs. Every random choice comes from the ``numpy.random.Generator``
passed in; nothing here imports a model.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from pff.degrade.blur import (
    MotionBlur,
    blur,
    gaussian_kernel,
    motion_kernel,
    nonuniform_blur,
    random_masks,
    random_motion_kernel,
)
from pff.degrade.jpeg import Jpeg, jpeg_roundtrip
from pff.degrade.noise import add_gaussian_noise
from pff.degrade.quantize import quantize, to_uint8
from pff.degrade.resize import Bicubic, imresize, modcrop, sr_pair, upsample
from pff.errors import PffError

__all__ = [
    "Bicubic",
    "Degradation",
    "Jpeg",
    "MotionBlur",
    "TASKS",
    "add_gaussian_noise",
    "blur",
    "for_task",
    "gaussian_kernel",
    "imresize",
    "jpeg_roundtrip",
    "modcrop",
    "motion_kernel",
    "nonuniform_blur",
    "quantize",
    "random_masks",
    "random_motion_kernel",
    "sr_pair",
    "to_uint8",
    "upsample",
]


class Degradation(Protocol):
    """What ``pff.data`` needs from a degradation.

    ``margin``: pixels of context a clean crop needs on each side so that
    the centre of the degraded crop sees no border effects.
    ``channels``: the channel count it accepts, or None for any.
    ``__call__(clean, rng)``: (H, W, C) uint8 or float in [0, 255] ->
    degraded (H, W, C) float32 with integer values in [0, 255].
    """

    @property
    def margin(self) -> int: ...

    @property
    def channels(self) -> int | None: ...

    def __call__(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


# The table of tasks: each one's degradation. Models, benchmarks and the CLI take their task names from here.
TASKS: dict[str, type] = {"deblur": MotionBlur, "jpeg": Jpeg, "sr": Bicubic}


def for_task(task: str, **params: Any) -> Degradation:
    """The default degradation of ``task`` ("deblur", "jpeg" or "sr"), with ``params`` overriding fields.

    Example: ``for_task("jpeg", quality=10)`` is ``Jpeg(quality=10)``.
    """
    if task not in TASKS:
        raise PffError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    cls = TASKS[task]
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise PffError(
            f"unknown parameter(s) {', '.join(unknown)} for task {task!r} ({cls.__name__});"
            f" expected some of {', '.join(fields)}"
        )
    return cls(**params)
