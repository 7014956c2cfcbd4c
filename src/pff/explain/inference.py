"""What the explanations are made of: a model's input, output and filters on an image, from the Restorer.

Every image goes through :meth:`pff.restore.Restorer.restore_with_filters`,
the path ``pff restore`` takes, so an explanation's filters are
``Restorer.filters`` by construction (same colour conversion, SR upsampling,
tiling and strength).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from pff.errors import PffError

__all__ = ["Explanation", "check_explainable", "explain_image", "load_explainable"]


@dataclass(frozen=True)
class Explanation:
    """One image seen through a model.

    Attributes:
        name: a label for figures and the report.
        before: (H, W, C) float32 in [0, 1], the model's input (C = 1 for Y models).
        after: (H, W, C) float32 in [0, 1], the restored image (clipped).
        filters: (K*K, H, W) float32, each pixel's filter (pff.ops layout); may be a memory map.
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


def check_explainable(card: Any, label: str) -> None:
    """PffError unless the model predicts filters."""
    if card.model.kind == "direct":
        raise PffError(
            f"model '{label}' predicts pixels directly (kind={card.model.kind!r}): it has no filters to explain"
        )


def load_explainable(
    spec: str | os.PathLike[str], task: str | None = None, *, scale: int | None = None, **options: Any
) -> Any:
    """A :class:`pff.restore.Restorer` for a shipped name or model folder that predicts filters.

    ``task``/``scale``: what the caller asks for (PffError if the card does
    not fit); ``options`` go to the Restorer (device, tile, ...).
    """
    from pff.restore import Restorer

    restorer = Restorer.from_pretrained(spec, task=task, scale=scale, **options)
    check_explainable(restorer.card, str(spec))
    return restorer


def explain_image(restorer: Any, image: Any, *, name: str = "image", filters_out: np.ndarray | None = None) -> Explanation:
    """Run ``restorer`` on one image (as :meth:`~pff.restore.Restorer.restore` takes it; for sr the
    low-resolution image) and keep the model's input, output and filters.

    ``filters_out``: a zero-filled (K*K, H, W) float32 array (e.g. a memory
    map on disk, size from :meth:`~pff.restore.Restorer.output_size`) that
    the filters are streamed into tile by tile.
    """
    check_explainable(restorer.card, name)
    result = restorer.restore_with_filters(image, filters_out=filters_out)
    return Explanation(
        name=name,
        before=result.model_input,
        after=result.model_output,
        filters=result.filters,
        dilation=int(restorer.card.model.dilation),
    )
