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
    TASK_MODELS,
    ModelCard,
    arch_config,
    available,
    check_card,
    count_parameters,
    create,
    default_model,
    load,
    read_card,
    save,
    state_tensors,
)

__all__ = [
    "ARCHS",
    "PFF",
    "TASK_MODELS",
    "DirectCNN",
    "ModelCard",
    "ModelConfig",
    "TwoStreamPredictor",
    "arch_config",
    "available",
    "build_model",
    "check_card",
    "count_parameters",
    "create",
    "default_model",
    "hermite_basis",
    "load",
    "read_card",
    "save",
    "state_tensors",
]
