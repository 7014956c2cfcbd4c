"""Degradations ("physics"): what turns a clean image into the model's input.

Plain functions (``imresize``, ``sr_pair``, ``jpeg_roundtrip``, ``blur``,
``motion_kernel``, ...) do the work; the small frozen dataclasses
``MotionBlur``, ``CameraShake``, ``Jpeg`` and ``Bicubic`` hold a task's parameters and share
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
from pff.degrade.shake import CameraShake
from pff.errors import PffError

__all__ = [
    "Bicubic",
    "CameraShake",
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


# The table of tasks: each one's degradations, the default first. Models, benchmarks and the CLI take their
# task names from here; a training config or model card names another of its task's by ``physics``.
TASKS: dict[str, tuple[type, ...]] = {"deblur": (MotionBlur, CameraShake), "jpeg": (Jpeg,), "sr": (Bicubic,)}


def for_task(task: str, **params: Any) -> Degradation:
    """A degradation of ``task`` ("deblur", "jpeg" or "sr") with ``params`` overriding fields.

    The task's default (the first of ``TASKS[task]``) unless ``physics`` names
    another of its degradations by class name. Examples: ``for_task("jpeg",
    quality=10)`` is ``Jpeg(quality=10)``; ``for_task("deblur", physics="CameraShake",
    noise_max=2.55)`` is ``CameraShake(noise_max=2.55)``.
    """
    if task not in TASKS:
        raise PffError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    choices = {cls.__name__: cls for cls in TASKS[task]}
    name = params.pop("physics", TASKS[task][0].__name__)
    if name not in choices:
        raise PffError(f"unknown physics {name!r} for task {task!r}; expected one of {', '.join(choices)}")
    cls = choices[name]
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise PffError(
            f"unknown parameter(s) {', '.join(unknown)} for task {task!r} ({cls.__name__});"
            f" expected some of {', '.join(fields)}"
        )
    return cls(**params)
