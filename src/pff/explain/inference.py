"""Running a model to get what the explanations are made of: input, output, filters."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pff.color import rgb_to_y, to_uint8
from pff.errors import PffError

__all__ = [
    "TASKS",
    "Explanation",
    "check_explainable",
    "explain_image",
    "explain_input",
    "load_explainable",
    "model_input",
    "to_model_channels",
]

TASKS: tuple[str, ...] = ("deblur", "jpeg", "sr")


@dataclass(frozen=True)
class Explanation:
    """One image seen through a model.

    Attributes:
        name: a label for figures and the report.
        before: (H, W, C) float32 in [0, 1], the model's input (C = 1 for Y models).
        after: (H, W, C) float32 in [0, 1], the restored image (clipped).
        filters: (K*K, H, W) float32, each pixel's filter (pff.ops layout).
        dilation: tap spacing the filters are applied with.
    """

    name: str
    before: np.ndarray
    after: np.ndarray
    filters: np.ndarray
    dilation: int = 1

    @property
    def kernel(self) -> int:
        return math.isqrt(self.filters.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return self.filters.shape[1], self.filters.shape[2]


def model_input(image: np.ndarray, task: str, channels: str, *, scale: int = 4) -> np.ndarray:
    """The model's input (H', W', C) float32 in [0, 1] from an image as a user has it.

    image: (H, W) or (H, W, 3) uint8. For sr it is the low-resolution image,
    upsampled by ``scale`` with MATLAB bicubic and rounded, as the benchmark
    makes its inputs (``pff.degrade.resize.sr_pair``); for deblur and jpeg it
    is used as it is. A Y model (``channels == "y"``) gets the MATLAB luma of
    an RGB image; an RGB model gets R = G = B from a gray one.
    """
    if task not in TASKS:
        raise PffError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise PffError(f"expected an (H, W) or (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    if task == "sr":
        from pff.degrade.resize import imresize

        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
            raise PffError(f"the sr scale must be an integer >= 2, got {scale!r}")
        image = to_uint8(imresize(image, float(scale)))
    return to_model_channels(image, channels)


def to_model_channels(image: np.ndarray, channels: str) -> np.ndarray:
    """(H, W[, 3]) uint8 -> (H, W, C) float32 in [0, 1]: MATLAB luma for a Y model, R = G = B for RGB."""
    if channels not in ("rgb", "y"):
        raise PffError(f"unknown model channels {channels!r} (expected 'rgb' or 'y')")
    if channels == "y" and image.ndim == 3:
        image = rgb_to_y(image)
    if channels == "rgb" and image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 2:
        image = image[..., None]
    return image.astype(np.float32) / 255.0  # (H, W, C)


def load_explainable(spec: str | os.PathLike[str], task: str | None = None, *, device: str = "cpu") -> tuple[Any, Any]:
    """``(model, card)`` of a shipped name or model folder that predicts filters (and restores ``task``)."""
    from pff import models

    try:
        model, card = models.load(spec, device=device)
    except PffError as err:
        raise PffError(f"cannot load model '{spec}': {err}") from err
    check_explainable(card, str(spec), task)
    return model, card


def check_explainable(card: Any, label: str, task: str | None) -> None:
    """PffError unless the model predicts filters and, when ``task`` is given, restores it."""
    if card.model.kind != "pff":
        raise PffError(
            f"model '{label}' predicts pixels directly (kind={card.model.kind!r}): it has no filters to explain"
        )
    if task is not None and card.task != task:
        raise PffError(f"model '{label}' restores {card.task!r}, not {task!r}")


def explain_image(
    model: torch.nn.Module,
    card: Any,
    image: np.ndarray,
    *,
    task: str | None = None,
    scale: int = 4,
    name: str = "image",
) -> Explanation:
    """Run ``model`` (with its ``card``) on one image and keep input, output and filters.

    ``image`` is (H, W[, 3]) uint8 as :func:`model_input` takes it (for sr,
    the low-resolution image); ``task`` defaults to the card's. The whole
    image goes through the model at once, on the device of its parameters.
    """
    task = task or card.task
    check_explainable(card, name, task)
    return explain_input(model, card, model_input(image, task, card.channels, scale=scale), name=name)


def explain_input(model: torch.nn.Module, card: Any, before: np.ndarray, *, name: str = "image") -> Explanation:
    """Like :func:`explain_image` for an input already in the model's form: (H, W, C) float32 in [0, 1]."""
    check_explainable(card, name, None)
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(before.transpose(2, 0, 1)))[None].to(device)  # (1, C, H, W)
    model.eval()
    with torch.inference_mode():
        restored, filters = model(x)
    if filters is None:
        raise PffError(f"model for '{name}' returned no filters: it has nothing to explain")
    if filters.ndim != 4:
        raise PffError(f"expected shared filters (B, K*K, H, W) from the model, got shape {tuple(filters.shape)}")
    after = restored[0].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy()  # (H, W, C)
    return Explanation(
        name=name,
        before=before,
        after=np.ascontiguousarray(after),
        filters=np.ascontiguousarray(filters[0].float().cpu().numpy()),  # (K*K, H, W)
        dilation=int(getattr(card.model, "dilation", 1)),
    )
