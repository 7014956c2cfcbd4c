"""Filter-predicting networks: the two-stream predictor, PFF, the direct CNN, the named table.

``create("pff-small")`` builds a fresh network; ``load(name_or_folder)``
returns ``(model, card)`` for a trained one; ``ARCHS`` lists the named
architectures (``pff train --list-archs`` prints them with their sizes).
"""
from __future__ import annotations

from pff.models.pff import PFF, DirectCNN, ModelConfig, build_model, hermite_basis
from pff.models.predictor import TwoStreamPredictor
from pff.models.zoo import (
    ARCHS,
    ModelCard,
    arch_config,
    available,
    count_parameters,
    create,
    load,
    save,
    state_tensors,
)

__all__ = [
    "ARCHS",
    "PFF",
    "DirectCNN",
    "ModelCard",
    "ModelConfig",
    "TwoStreamPredictor",
    "arch_config",
    "available",
    "build_model",
    "count_parameters",
    "create",
    "hermite_basis",
    "load",
    "save",
    "state_tensors",
]
