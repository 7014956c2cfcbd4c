"""The table of named architectures, and saving/loading trained models.

A trained model is a folder holding ``model.safetensors`` (the weights) and
``config.json`` (a :class:`ModelCard`: task, channels, the degradation it
undoes and the architecture). ``TASK_MODELS`` names the shipped models of
each task; ``default_model`` picks the one that fits a task and scale.
Shipped models live in ``pff/models/weights/<name>/``; ``load`` takes such a
name or any folder of that shape. Weights are only ever read with
safetensors, never with pickle.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from pff.errors import PffError
from pff.models.pff import PFF, ModelConfig, build_model

_WEIGHTS = Path(__file__).resolve().parent / "weights"
_FORMAT = "pff-model/1"
# A model card is a few kilobytes; anything far larger is not one.
MAX_CARD_BYTES = 1_000_000

# Named architectures (timm style). Parameter counts are for RGB input and
# kernel 17 (printed by `pff train --list-archs` and benchmarks/bench_train.py).
_SMALL = ModelConfig(arch="pff-small")
ARCHS: dict[str, ModelConfig] = {
    # For tests and smoke runs.
    "pff-tiny": ModelConfig(
        arch="pff-tiny", basis=8, stem_width=16, widths=(16, 32), depths=(1, 1), strides=(1, 2),
        dilations=(1, 1), taps=16, shallow_width=8, shallow_depth=1, embed=16, head_width=16,
    ),
    # The CPU default: output stride 8, low-rank (16-filter basis) 1x1 head.
    "pff-small": _SMALL,
    # Wider and deeper; still a low-rank head.
    "pff-base": ModelConfig(
        arch="pff-base", basis=24, stem_width=48, widths=(48, 96, 192, 256), depths=(2, 2, 2, 2),
        strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1), taps=48, shallow_width=32, shallow_depth=3,
        embed=48, head_width=48, head_depth=1, head_kernel=3,
    ),
    # The authors' released deblurring network, re-created: ResNet-18 trunk
    # (output stride 8, dilated last stages), full-resolution 5x32 stream,
    # 16-channel embedding, three 3x3 convolutions to all 289 taps.
    "paper": ModelConfig(
        arch="paper", head="full", stem_width=64, stem_stride=4, widths=(64, 128, 256, 512),
        depths=(2, 2, 2, 2), strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), taps=32, shallow_width=32,
        shallow_depth=5, embed=16, head_width=289, head_depth=2, head_kernel=3,
    ),
    # Super-resolution computed in low resolution (set ``upscale``): for every
    # low-resolution pixel, the full 7x7 filters of its s x s output pixels over
    # its low-resolution neighbourhood; a wider full-resolution stream than
    # pff-small, since fine detail is all the network has to work with.
    "pff-sr": replace(
        _SMALL, arch="pff-sr", kernel=7, constraint="none", head="full", padding="replicate", upscale=2,
        shallow_width=32, shallow_depth=3, embed=48, head_width=48,
    ),
    # The paper's "CNN" baseline: the pff-small network predicting pixels.
    "cnn-small": replace(_SMALL, arch="cnn-small", kind="direct"),
}  # fmt: skip


@dataclass(frozen=True)
class ModelCard:
    """What a saved model restores: ``task``, input ``channels``, the ``degrade`` it undoes, its architecture ``model``.

    ``degrade`` holds the parameters of the task's degradation the model was
    trained on (the training config's ``[data.degrade]``, as
    :func:`pff.degrade.for_task` takes them; ``{}`` is the task's default,
    e.g. ``{"scale": 4}`` for sr). ``training`` is the model-card record of
    how shipped weights were made (config, steps, patches seen, hardware,
    wall time); empty for a fresh run.
    """

    task: Literal["deblur", "jpeg", "sr"]
    channels: Literal["rgb", "y"]
    model: ModelConfig
    degrade: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.physics()  # an unknown or bad degradation parameter fails here, naming it

    @property
    def in_channels(self) -> int:
        return 3 if self.channels == "rgb" else 1

    def physics(self) -> Any:
        """The degradation this model undoes (a ``pff.degrade`` object)."""
        from pff.degrade import for_task

        params = {k: tuple(v) if isinstance(v, list) else v for k, v in self.degrade.items()}
        try:
            return for_task(self.task, **params)
        except PffError as err:
            raise PffError(f"degrade: {err}") from err

    @property
    def scale(self) -> int:
        """The SR factor the model was trained for; 1 for tasks that keep the size."""
        return int(getattr(self.physics(), "scale", 1))


# Shipped models of each task (the keys are pff.degrade.TASKS), the default
# first: a request (task, scale) takes the first shipped one whose card fits.
TASK_MODELS: dict[str, tuple[str, ...]] = {
    "deblur": ("deblur", "deblur-shake", "deblur-cnn", "deblur-shake-cnn"),
    "jpeg": ("jpeg", "jpeg-y"),
    "sr": ("sr-x4", "sr-x2", "sr-x3"),
}


def check_card(card: ModelCard, label: str, *, task: str | None = None, scale: int | None = None,
               channels: str | None = None) -> None:  # fmt: skip
    """PffError (one line) unless ``card`` restores ``task`` at ``scale`` with ``channels`` (None: any)."""
    if task is not None and card.task != task:
        raise PffError(f"model '{label}' restores {card.task!r}, not {task!r}")
    if scale is not None and card.scale != scale:
        raise PffError(f"model '{label}' is trained for {card.task} scale {card.scale}, not {scale}")
    if channels is not None and card.channels != channels:
        raise PffError(f"model '{label}' takes {card.channels!r} images, not {channels!r}")


def read_card(spec: str | os.PathLike[str]) -> ModelCard:
    """The card of a shipped name or model folder, without loading the weights."""
    config = _resolve(str(spec)) / "config.json"
    if not config.is_file():
        raise PffError(f"model folder '{config.parent}' has no config.json")
    try:
        return card_from_dict(_read_json(config))
    except PffError as err:
        raise PffError(f"'{config}': {err}") from err


def default_model(task: str, *, scale: int | None = None) -> str:
    """The shipped model for ``task`` (and, for sr, ``scale``; default 4): the first of ``TASK_MODELS[task]``
    that is shipped and whose card fits. PffError naming what is shipped otherwise."""
    from pff.degrade import TASKS

    if task not in TASKS:
        raise PffError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    if task != "sr" and scale not in (None, 1):
        raise PffError(f"scale applies only to task sr, not {task!r}")
    want = (4 if scale is None else scale) if task == "sr" else 1
    shipped = [(name, read_card(name)) for name in TASK_MODELS[task] if name in available()]
    for name, card in shipped:
        if card.task == task and card.scale == want:
            return name
    if task == "sr":
        scales = ", ".join(str(s) for s in sorted({c.scale for _, c in shipped if c.task == task})) or "none"
        raise PffError(f"no shipped sr model for scale {want} (available: {scales})")
    raise PffError(f"no shipped {task} model in this installation")


def arch_config(name: str, **overrides: Any) -> ModelConfig:
    """The ``ARCHS`` row ``name`` with some fields replaced (PffError for an unknown name)."""
    if name not in ARCHS:
        raise PffError(f"unknown architecture '{name}' (known: {', '.join(ARCHS)})")
    return replace(ARCHS[name], **overrides)


def create(name: str | ModelConfig, *, channels: Literal["rgb", "y"] = "rgb", **overrides: Any) -> nn.Module:
    """A freshly initialised model from an ``ARCHS`` name (with field overrides) or a config."""
    config = name if isinstance(name, ModelConfig) else arch_config(name, **overrides)
    return build_model(config, 3 if channels == "rgb" else 1)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def card_to_dict(card: ModelCard) -> dict[str, Any]:
    model = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(card.model).items()}
    degrade = {k: list(v) if isinstance(v, tuple) else v for k, v in card.degrade.items()}
    data = {"format": _FORMAT, "task": card.task, "channels": card.channels, "degrade": degrade, "model": model}
    if card.training:
        data["training"] = dict(card.training)
    return data


def card_from_dict(data: dict[str, Any]) -> ModelCard:
    """Parse ``config.json``; PffError naming the first bad or unknown key."""
    from pff.config import from_dict

    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise PffError(f"config.json is not a pff model card (expected \"format\": \"{_FORMAT}\")")
    body = {k: v for k, v in data.items() if k != "format"}
    return from_dict(ModelCard, body)


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as contiguous CPU tensors (for safetensors), DDP wrapper removed."""
    model = getattr(model, "module", model)
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def write_safetensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Serialise to a temporary file beside ``path``, fsync, then ``os.replace`` onto it."""
    from pff.io import write_atomic

    data = st_save(tensors, metadata=metadata)
    write_atomic(Path(path), lambda handle: handle.write(data))


def save(model: nn.Module, card: ModelCard, directory: str | os.PathLike[str]) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (each atomically)."""
    from pff.io import write_json_atomic

    directory = Path(directory)
    write_safetensors_atomic(directory / "model.safetensors", state_tensors(model))
    write_json_atomic(directory / "config.json", card_to_dict(card))


def available() -> list[str]:
    """Names of the models shipped with this installation."""
    if not _WEIGHTS.is_dir():
        return []
    return sorted(p.name for p in _WEIGHTS.iterdir() if (p / "model.safetensors").is_file())


def _resolve(spec: str) -> Path:
    if not spec.strip():
        raise PffError(f"no model name or folder given (shipped: {', '.join(available()) or 'none yet'})")
    folder = Path(spec)
    if folder.is_dir():
        return folder
    if spec in available():
        return _WEIGHTS / spec
    names = ", ".join(available()) or "none shipped yet"
    raise PffError(f"no model '{spec}': not a shipped model name (available: {names}) and not a folder")


def load(spec: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """``(model in eval mode on device, card)`` from a shipped name or a folder.

    The folder must hold ``model.safetensors`` and ``config.json`` as written
    by :func:`save` (``pff train`` does). ``model(x)`` maps ``(B, C, H, W)``
    float32 in [0, 1] to ``(restored, filters or None)``.
    """
    folder = _resolve(str(spec))
    weights, config = folder / "model.safetensors", folder / "config.json"
    for path in (weights, config):
        if not path.is_file():
            raise PffError(f"model folder '{folder}' has no {path.name}")
    card = read_card(folder)
    model = build_model(card.model, card.in_channels)
    try:
        state = st_load(weights.read_bytes())
    except Exception as err:  # safetensors raises its own error types
        raise PffError(f"'{weights}' is not a safetensors file: {err}") from err
    missing, unexpected = _load_strict(model, state)
    if missing or unexpected:
        raise PffError(f"'{weights}' does not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval(), card


def transplant(model: nn.Module, source: nn.Module) -> list[str]:
    """Start ``model`` from the weights of a smaller or equal ``source``; returns the names copied.

    Each tensor of ``source`` goes into the leading corner of the tensor of the
    same name (same rank, no dimension larger) and the rest of that tensor is
    zeroed: input channels ``model`` adds start ignored, outputs it adds (a
    head's new coefficients) start at zero, that is at the identity filter.
    Tensors ``source`` lacks keep their initialisation. The rows a larger
    filter basis adds keep theirs too (their coefficients start at zero, so
    the start is unchanged, and a zero row would never learn). Anything else
    is a PffError naming the tensor.

    A full-head model (one free coefficient per tap) starts from a basis
    model of the same kernel, constraint and scale as exactly the same
    function: its output convolution becomes the basis times the source's
    coefficient convolution (``filters = start + basis^T @ coefficients``).
    A full-head model starts from a full-head model of another kernel size
    (same constraint and scale) tap by tap, centre on centre: a larger
    kernel's outer taps are dropped, a smaller one's missing taps start at
    zero. The starts are the same filter (the delta; an upscaling model's
    bicubic, whose taps all lie within 5 x 5, down to kernel 5), so only the
    dropped corrections change the function.

    A ``fuse_deep = "low"`` model starts from an ``"upsampled"`` one with
    the fuse's deep taps summed into its 1x1 projection and its shallow taps
    unchanged: the deep maps are bilinear upsamplings (smooth over a stride
    of pixels), so the start is close to the source's function, not equal.
    """
    ours, theirs = model.state_dict(), source.state_dict()
    if _basis_to_full(model, source):
        theirs = _full_head_state(source)
    elif _retap(model, source):
        theirs = _retapped_state(theirs, source.config, model.config.kernel)
    if _lower_fuse(model, source):
        theirs = _lowered_fuse_state(theirs, source.config.taps)
    copied = []
    with torch.no_grad():
        for name, value in theirs.items():
            if name not in ours:
                raise PffError(f"cannot start from that model: it has '{name}', this architecture does not")
            target = ours[name]
            if target.ndim != value.ndim or any(a > b for a, b in zip(value.shape, target.shape)):
                raise PffError(
                    f"cannot start from that model: '{name}' has shape {tuple(value.shape)},"
                    f" which does not fit into {tuple(target.shape)}"
                )
            if target.shape != value.shape and not name.endswith("basis"):
                target.zero_()
            target[tuple(slice(0, n) for n in value.shape)] = value.to(target.dtype)
            copied.append(name)
    return copied


def _basis_to_full(model: nn.Module, source: nn.Module) -> bool:
    """Whether ``transplant`` expands the basis head of ``source`` into the full head of ``model``."""
    if not (isinstance(model, PFF) and isinstance(source, PFF)):
        return False
    ours, theirs = model.config, source.config
    return (
        theirs.head == "basis" and ours.head == "full" and theirs.color == ours.color == "shared"
        and theirs.constraint == ours.constraint != "softmax"
        and (theirs.kernel, theirs.upscale, theirs.dilation) == (ours.kernel, ours.upscale, ours.dilation)
    )  # fmt: skip


def _retap(model: nn.Module, source: nn.Module) -> bool:
    """Whether ``transplant`` maps the full head of ``source`` onto the other kernel size of ``model``'s."""
    if not (isinstance(model, PFF) and isinstance(source, PFF)):
        return False
    ours, theirs = model.config, source.config
    return (
        ours.kernel != theirs.kernel and theirs.head == ours.head == "full"
        and theirs.color == ours.color == "shared" and theirs.constraint == ours.constraint != "softmax"
        and (theirs.upscale, theirs.dilation) == (ours.upscale, ours.dilation)
    )  # fmt: skip


def _retapped_state(state: dict[str, torch.Tensor], config: ModelConfig, kernel: int) -> dict[str, torch.Tensor]:
    """``state`` of a full head of ``config.kernel`` with its output rows moved to ``kernel``: centre on centre."""
    state = dict(state)
    old, phases = config.kernel, config.upscale**2
    inner, offset = min(old, kernel), abs(old - kernel) // 2
    for name in ("predictor.out.weight", "predictor.out.bias"):
        value = state[name]  # output row t * s*s + p: tap t of phase p
        rows = value.reshape(old, old, phases, *value.shape[1:])
        new = value.new_zeros(kernel, kernel, phases, *value.shape[1:])
        if kernel < old:
            new[...] = rows[offset : offset + inner, offset : offset + inner]
        else:
            new[offset : offset + inner, offset : offset + inner] = rows
        state[name] = new.reshape(kernel * kernel * phases, *value.shape[1:])
    return state


def _lower_fuse(model: nn.Module, source: nn.Module) -> bool:
    """Whether ``transplant`` moves the fuse of ``source`` onto the low-resolution fuse of ``model``."""
    ours, theirs = getattr(model, "config", None), getattr(source, "config", None)
    return isinstance(ours, ModelConfig) and isinstance(theirs, ModelConfig) and (
        (theirs.fuse_deep, ours.fuse_deep) == ("upsampled", "low")
    )  # fmt: skip


def _lowered_fuse_state(state: dict[str, torch.Tensor], taps: int) -> dict[str, torch.Tensor]:
    """``state`` with its fuse (conv over ``[deep taps, shallow]``, batch norm) as a ``LowResFuse``'s."""
    state = dict(state)
    weight = state.pop("predictor.fuse.0.weight")  # (embed, taps + shallow, k, k)
    state["predictor.fuse.conv.weight"] = weight[:, taps:].clone()
    state["predictor.fuse.proj.weight"] = weight[:, :taps].sum(dim=(2, 3), keepdim=True)
    for name in [n for n in state if n.startswith("predictor.fuse.1.")]:
        state["predictor.fuse.bn." + name.removeprefix("predictor.fuse.1.")] = state.pop(name)
    return state


def _full_head_state(source: PFF) -> dict[str, torch.Tensor]:
    """``source``'s weights with its basis folded into the output convolution: one output per filter tap."""
    state = dict(source.state_dict())
    basis = source._basis().detach()  # (N, K*K), as the forward pass uses it (centred if normalized)
    del state["basis"]
    weight, bias = state["predictor.out.weight"], state["predictor.out.bias"]  # (N, C, k, k), (N,)
    state["predictor.out.weight"] = torch.einsum("nt,nchw->tchw", basis.to(weight.dtype), weight)
    state["predictor.out.bias"] = basis.to(bias.dtype).T @ bias
    return state


def _read_json(path: Path) -> Any:
    """Parse a small JSON file; PffError if it is too large, not UTF-8, malformed or nested too deeply."""
    size = path.stat().st_size
    if size > MAX_CARD_BYTES:
        raise PffError(f"{size:,} bytes is too large for a model card (at most {MAX_CARD_BYTES:,})")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise PffError(f"not UTF-8 text ({err.reason} at byte {err.start})") from err
    except RecursionError as err:
        raise PffError("not a model card: nested too deeply") from err
    except ValueError as err:  # JSONDecodeError, and integers too long to convert
        raise PffError(f"not valid JSON: {str(err).splitlines()[0]}") from err


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        return missing, unexpected
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise PffError(f"weight '{key}' has shape {tuple(value.shape)}, config.json expects {tuple(own[key].shape)}")
    model.load_state_dict(state)
    return [], []
