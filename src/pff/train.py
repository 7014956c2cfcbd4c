"""Training: the run config, a short generic loop, and what hangs off it.

``Trainer.run`` is the loop: fetch a batch, forward, loss, backward, step,
then call the callbacks (progress/CSV/TensorBoard logging, validation,
checkpoints). The data order is a pure function of ``(seed, step)``: step
``s`` of rank ``r`` reads samples ``s*G + r*b ... s*G + r*b + b - 1`` of the
training stream (``G`` the global batch, ``b = G / world``), so a resumed or
multi-process run sees exactly the samples an uninterrupted single run would.

Checkpoints are one safetensors file (``checkpoint.safetensors``: model,
optimiser tensors, and a JSON ``state`` in its metadata), written atomically;
no pickle is ever read. At every checkpoint and at the end the run folder
also holds ``model.safetensors`` + ``config.json`` (``pff.models.load``).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load as st_load
from torch import nn

from pff.config import apply_overrides, bounded, check_bounds, from_dict, load_toml, to_dict
from pff.errors import PffError
from pff.io import read_image, write_json_atomic
from pff.models import ModelCard, ModelConfig, build_model, save, state_tensors
from pff.models.zoo import write_safetensors_atomic

CHECKPOINT = "checkpoint.safetensors"


# Every number in these configs is declared with ``bounded`` (finite, in range), so a bad
# value is a one-line error naming its key before anything is built or written. The upper
# bounds on workers, threads and batch stop a typo from forking or allocating without limit.


@dataclass(frozen=True)
class DataConfig:
    """Training pairs (``pff.data``): folders of clean images, held-out images for validation."""

    roots: tuple[str, ...] = ("../shared/data/train/91-image", "../shared/data/train/bsds500")
    val_count: int = bounded(8, ge=0)  # training images held out for validation (never the test sets)
    val_patch: int = bounded(128, ge=1)
    val_per_image: int = bounded(4, ge=1)
    patch: int = bounded(64, ge=1)
    augment: bool = True
    workers: int = bounded(1, ge=0, le=1024)  # DataLoader processes; 0 makes pairs in the training process
    gray: float = bounded(0.0, ge=0, le=1)  # share of RGB crops made gray (pff.data.PairDataset)
    degrade: dict[str, Any] = field(default_factory=dict)  # pff.degrade.for_task(task, **degrade)

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class OptimConfig:
    """Adam (the paper's settings) and the learning-rate schedule."""

    lr: float = bounded(5e-4, gt=0)
    betas: tuple[float, ...] = bounded((0.9, 0.999), ge=0, lt=1)
    weight_decay: float = bounded(0.0, ge=0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup: int = bounded(0, ge=0)  # steps of linear warm-up
    min_lr: float = bounded(0.02, ge=0, le=1)  # cosine: final lr as a fraction of lr
    step_every: int = bounded(10_000, ge=1)  # step: multiply by gamma every this many steps
    gamma: float = bounded(0.5, gt=0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if len(self.betas) != 2:
            raise PffError(f"betas: must be two numbers in [0, 1), got {list(self.betas)}")


@dataclass(frozen=True)
class LossConfig:
    """Pixel loss (L1 as in the paper, Charbonnier, or L2: the mean squared error that PSNR measures,
    for a last stage after L1) plus optional filter regularisers."""

    pixel: Literal["l1", "charbonnier", "l2"] = "l1"
    eps: float = bounded(1e-3, gt=0)  # Charbonnier: sqrt(d^2 + eps^2)
    smoothness: float = bounded(0.0, ge=0)  # weight of the mean |spatial gradient| of the filter maps
    sparsity: float = bounded(0.0, ge=0)  # weight of the mean L1 of the off-centre taps

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class LoopConfig:
    """Length, batch and the periodic work of a run."""

    steps: int = bounded(20_000, ge=1)
    batch_size: int = bounded(16, ge=1, le=65_536)  # global: split across processes under torchrun
    log_every: int = bounded(50, ge=1)
    val_every: int = bounded(1000, ge=1)
    ckpt_every: int = bounded(500, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True  # bfloat16 autocast for the predictor where the hardware has it (Trainer.autocast)
    channels_last: bool = True
    threads: int = bounded(0, ge=0, le=1024)  # torch threads per process; 0 = the cores left after the data workers
    tensorboard: bool = False  # needs the tensorboard package

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class RunConfig:
    """Everything ``pff train`` needs; one TOML file per shipped model in ``configs/``."""

    task: Literal["deblur", "jpeg", "sr"] = "deblur"
    channels: Literal["rgb", "y"] = "rgb"
    init: str = ""  # start from this model (shipped name or folder): pff.models.zoo.transplant
    seed: int = bounded(0, ge=0, lt=2**63)  # numpy and torch both take it (and seed + 1)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.data.gray and self.channels != "rgb":
            raise PffError(f"data.gray: gray crops need channels = 'rgb', got {self.channels!r}")
        if self.model.kind == "direct" and (self.loss.smoothness or self.loss.sparsity):
            raise PffError("loss.smoothness: filter regularisers need a filter model (model.kind = 'pff')")
        if self.model.upscale > 1:
            expected = {"scale": self.model.upscale, "upsample": False}
            if self.task != "sr" or {k: self.data.degrade.get(k) for k in expected} != expected:
                raise PffError(
                    f"model.upscale: a model that upscales by {self.model.upscale} trains on task 'sr' with"
                    f" data.degrade = {{scale = {self.model.upscale}, upsample = false}}"
                )

    @property
    def card(self) -> ModelCard:
        return ModelCard(task=self.task, channels=self.channels, model=self.model, degrade=dict(self.data.degrade))


def load_config(path: str | os.PathLike[str] | None, overrides: list[str] = ()) -> RunConfig:
    """A ``RunConfig`` from a TOML file (or the defaults) plus ``key=value`` overrides."""
    data = load_toml(path) if path is not None else {}
    return from_dict(RunConfig, apply_overrides(data, list(overrides)))


def lr_factor(optim: OptimConfig, step: int, total: int) -> float:
    """Multiplier of ``optim.lr`` for 0-based ``step`` of a ``total``-step run."""
    if step < optim.warmup:
        return (step + 1) / optim.warmup
    if optim.schedule == "constant":
        return 1.0
    if optim.schedule == "step":
        return optim.gamma ** (step // optim.step_every)
    t = (step - optim.warmup) / max(total - optim.warmup, 1)
    return optim.min_lr + (1 - optim.min_lr) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def restoration_loss(
    restored: torch.Tensor, clean: torch.Tensor, filters: torch.Tensor | None, cfg: LossConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """Scalar loss of ``restored``/``clean`` ``(B, C, H, W)`` (and ``filters (B, K*K, H, W)``).

    Also returns floats for logging: ``loss`` (the total), ``pixel`` and each
    regulariser in use (unweighted).
    """
    diff = restored.float() - clean
    if cfg.pixel == "l1":
        pixel = diff.abs().mean()
    elif cfg.pixel == "l2":
        pixel = (diff * diff).mean()
    else:
        pixel = torch.sqrt(diff * diff + cfg.eps**2).mean()
    total, parts = pixel, {"pixel": pixel.item()}
    if cfg.smoothness:
        smooth = (filters[..., 1:, :] - filters[..., :-1, :]).abs().mean() + (
            filters[..., 1:] - filters[..., :-1]
        ).abs().mean()
        total = total + cfg.smoothness * smooth
        parts["smoothness"] = smooth.item()
    if cfg.sparsity:
        centre = filters.shape[1] // 2
        sparse = filters.abs().sum(dim=1).mean() - filters[:, centre].abs().mean()
        total = total + cfg.sparsity * sparse
        parts["sparsity"] = sparse.item()
    parts["loss"] = total.item() if len(parts) > 1 else parts["pixel"]
    return total, parts


# --- processes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the torchrun process group if launched by torchrun (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    import torch.distributed as dist

    # Before the group exists: DDP imports torch._dynamo, which imports torch.distributed.nn,
    # whose functions take ``group=group.WORLD`` as a default argument. Imported while the
    # group exists, those defaults keep it alive after destroy_process_group, so gloo's
    # threads ran on into interpreter exit and now and then aborted the process there
    # ("terminate called without an active exception"). Imported first, the default is None.
    import torch.distributed.nn  # noqa: F401

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


class StepBatches(torch.utils.data.Sampler[list[int]]):
    """Index lists of steps ``start .. stop-1`` for one rank: ``s*G + rank*b + [0, b)``."""

    def __init__(self, start: int, stop: int, global_batch: int, dist: Dist) -> None:
        self.start, self.stop, self.global_batch, self.dist = start, stop, global_batch, dist
        self.batch = global_batch // dist.world

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            first = step * self.global_batch + self.dist.rank * self.batch
            yield list(range(first, first + self.batch))


# --- checkpoints -------------------------------------------------------------------------------


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Model and optimiser tensors + ``state`` (JSON in the metadata) in one atomic safetensors file."""
    tensors = {f"model.{k}": v for k, v in state_tensors(model).items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in opt["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    meta = dict(state, optim_groups=opt["param_groups"], optim_scalars=scalars)
    write_safetensors_atomic(path, tensors, {"state": json.dumps(meta)})


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """``(model state dict, optimiser state dict, state)`` from :func:`save_checkpoint`'s file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()["state"])
        tensors = st_load(path.read_bytes())
    except Exception as err:  # a foreign or damaged file
        raise PffError(f"cannot read checkpoint '{path}': {err}") from err
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            opt_state.setdefault(int(index), {})[name] = value
    for index, entry in meta.pop("optim_scalars").items():
        opt_state.setdefault(int(index), {}).update(entry)
    return model, {"state": opt_state, "param_groups": meta.pop("optim_groups")}, meta


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of the state dict (names, dtypes, shapes, bytes), to compare processes."""
    h = hashlib.sha256()
    for key, value in sorted(state_tensors(model).items()):
        h.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
        h.update(value.view(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return h.hexdigest()


# --- the loop ----------------------------------------------------------------------------------


class Trainer:
    """A model, its optimiser and a stream of batches; callbacks run after every step.

    A callback is ``fn(trainer)``; it reads ``trainer.step`` (steps done),
    ``trainer.loss_parts`` and anything else it needs from the trainer.
    """

    def __init__(self, cfg: RunConfig, model: nn.Module, device: torch.device, dist: Dist) -> None:
        self.cfg, self.device, self.dist = cfg, device, dist
        self.module = model  # the bare network (checkpoints, validation)
        self.model = model
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(model, device_ids=ids)
        opt = cfg.optim
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=opt.lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay
        )
        self.step = 0
        self.loss_parts: dict[str, float] = {}
        self.callbacks: list[Callable[[Trainer], None]] = []
        self.need_filters = bool(cfg.loss.smoothness or cfg.loss.sparsity)

    def autocast(self):
        """bfloat16 autocast for the predictor when ``train.amp`` and the device computes in bfloat16.

        Filters and the filter op stay float32 either way. On a CPU without
        bfloat16 units (AVX512-BF16 or AMX) the arithmetic is emulated: a
        deblur step ran 2.4x slower than in float32 on this project's
        2-core Xeon (benchmarks/bench_train.py, options table), so such a
        CPU trains in float32.
        """
        if not self.cfg.train.amp or not bf16_native(self.device):
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.train.channels_last else x

    def run(self, batches: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> None:
        total = self.cfg.train.steps
        self.model.train()
        for degraded, clean in batches:
            for group in self.optimizer.param_groups:
                group["lr"] = self.cfg.optim.lr * lr_factor(self.cfg.optim, self.step, total)
            degraded, clean = self.prepare(degraded), clean.to(self.device, non_blocking=True)
            with self.autocast():
                restored, filters = self.model(degraded, return_filters=self.need_filters)
            loss, self.loss_parts = restoration_loss(restored, clean, filters, self.cfg.loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            for callback in self.callbacks:
                callback(self)

    def sync_buffers(self) -> None:
        """Give every process rank 0's batch-norm statistics (what DDP does before each forward)."""
        if self.dist.world > 1:
            import torch.distributed as dist

            for buffer in self.module.buffers():
                dist.broadcast(buffer, src=0)


# --- what hangs off the loop (rank 0 only) -------------------------------------------------------

_COLUMNS = ("step", "lr", "loss", "pixel", "smoothness", "sparsity", "patches_per_s", "elapsed_s", "val_psnr", "val_input_psnr")


class Progress:
    """Progress bar (loss, patches/s, ETA), ``log.csv`` rows and optional TensorBoard scalars."""

    def __init__(self, out: Path, cfg: RunConfig, start: int) -> None:
        from tqdm import tqdm

        self.cfg, self.every = cfg, cfg.train.log_every
        self.path = out / "log.csv"
        _truncate_log(self.path, start)
        self.bar = tqdm(
            total=cfg.train.steps, initial=start, desc="train", unit="step", dynamic_ncols=True, mininterval=1.0
        )
        self.tb = None
        if cfg.train.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        self.t0 = self.t_last = time.perf_counter()
        self.step_last, self.sums, self.count = start, {}, 0

    def __call__(self, tr: Trainer) -> None:
        self.bar.update(1)
        for key, value in tr.loss_parts.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1
        if tr.step % self.every and tr.step != self.cfg.train.steps:
            return
        now = time.perf_counter()
        rate = (tr.step - self.step_last) * self.cfg.train.batch_size / max(now - self.t_last, 1e-9)
        means = {k: v / self.count for k, v in self.sums.items()}  # loss and its parts
        self.bar.set_postfix(loss=f"{means['loss']:.4f}", patches_s=f"{rate:.1f}", refresh=False)
        self.record(tr.step, lr=tr.optimizer.param_groups[0]["lr"], patches_per_s=rate, **means)
        self.t_last, self.step_last, self.sums, self.count = now, tr.step, {}, 0

    def record(self, step: int, **values: float) -> None:
        values["elapsed_s"] = time.perf_counter() - self.t0
        new = not self.path.exists()
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({"step": step, **{k: f"{v:.6g}" for k, v in values.items()}})
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.bar.close()
        if self.tb is not None:
            self.tb.close()


def _truncate_log(path: Path, step: int) -> None:
    """Drop rows after ``step`` (a killed run may have logged past its last checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= step]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


class Validation:
    """PSNR (RGB or Y, peak 1, output clamped, MSE pooled over crops) on fixed held-out crops."""

    def __init__(self, dataset, every: int, progress: Progress, batch: int = 8) -> None:
        pairs = [dataset[i] for i in range(len(dataset))]
        self.batches = [
            (torch.stack([d for d, _ in pairs[i : i + batch]]), torch.stack([c for _, c in pairs[i : i + batch]]))
            for i in range(0, len(pairs), batch)
        ]
        self.every, self.progress = every, progress
        self.input_psnr = _pooled_psnr([(_input_estimate(d, c), c) for d, c in self.batches])
        self.last: float | None = None

    def __call__(self, tr: Trainer) -> None:
        if tr.step % self.every and tr.step != tr.cfg.train.steps:
            return
        self.last = self.evaluate(tr)
        self.progress.record(tr.step, val_psnr=self.last, val_input_psnr=self.input_psnr)
        self.progress.bar.write(f"step {tr.step}: validation PSNR {self.last:.2f} dB (input {self.input_psnr:.2f} dB)")

    @torch.no_grad()
    def evaluate(self, tr: Trainer) -> float:
        tr.module.eval()
        outputs = []
        for degraded, clean in self.batches:
            with tr.autocast():
                restored, _ = tr.module(tr.prepare(degraded), return_filters=False)
            outputs.append((restored.float().cpu(), clean))
        tr.module.train()
        return _pooled_psnr(outputs)


def _input_estimate(degraded: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """The degraded batch at the clean one's size: itself, or (SR in low resolution) the protocol's
    baseline, ``pff.degrade.upsample`` of the 8-bit low-resolution crops."""
    if degraded.shape == clean.shape:
        return degraded
    from pff.degrade import upsample

    b, c, h, w = degraded.shape
    stack = (degraded.permute(2, 3, 0, 1).reshape(h, w, b * c) * 255).round().to(torch.uint8).numpy()  # (h, w, B*C)
    up = upsample(stack, clean.shape[-1] // w)  # (H, W, B*C) uint8
    up = up.reshape(*up.shape[:2], b, c).transpose(2, 3, 0, 1)  # (B, C, H, W)
    return torch.from_numpy(np.ascontiguousarray(up)).float() / 255.0


def _pooled_psnr(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """PSNR of the mean squared error over all crops (finite even when a crop is undamaged)."""
    total = sum(float((r.clamp(0, 1) - c).double().pow(2).sum()) for r, c in pairs)
    count = sum(c.numel() for _, c in pairs)
    return 10 * math.log10(count / max(total, 1e-30))


class Checkpointing:
    """Every ``every`` steps and at the end: ``checkpoint.safetensors`` and the loadable model files."""

    def __init__(self, out: Path, cfg: RunConfig) -> None:
        self.out, self.cfg = out, cfg

    def __call__(self, tr: Trainer) -> None:
        if tr.step % self.cfg.train.ckpt_every == 0 or tr.step == self.cfg.train.steps:
            self.write(tr)

    def write(self, tr: Trainer) -> None:
        state = {"step": tr.step, "config": to_dict(self.cfg), "world": tr.dist.world}
        save_checkpoint(self.out / CHECKPOINT, tr.module, tr.optimizer, state)
        save(tr.module, self.cfg.card, self.out)


# --- a run ------------------------------------------------------------------------------------


# Keys that do not change what is learnt from which samples (the data stream
# depends on seed, step and batch only), so a resumed run may set them anew.
_MAY_CHANGE_ON_RESUME = ("train.", "data.workers")


def resolve_config(out: Path, config: str | os.PathLike[str] | None, overrides: list[str], *, resume: bool) -> RunConfig:
    """The config of a new run (``config`` + overrides) or of a resumed one.

    Resuming starts from the run's saved config (or ``config`` if given) and
    applies the overrides; only ``train.*`` keys and ``data.workers`` may
    differ from the saved run (e.g. ``train.steps`` to extend it).
    """
    check_out(out)
    ckpt = out / CHECKPOINT
    if not resume:
        if ckpt.exists():
            raise PffError(f"'{out}' already holds a run ({CHECKPOINT}); pass --resume to continue it or choose another --out")
        if config is None:
            raise PffError("--config is required for a new run")
        return load_config(config, overrides)
    if not ckpt.exists():
        raise PffError(f"nothing to resume: '{ckpt}' does not exist")
    saved_dict = load_checkpoint_state(ckpt)["config"]
    saved = from_dict(RunConfig, saved_dict)
    base = load_toml(config) if config is not None else saved_dict
    cfg = from_dict(RunConfig, apply_overrides(base, overrides))
    new, old = _flatten(to_dict(cfg)), _flatten(to_dict(saved))
    for key in sorted(set(new) | set(old)):
        if not key.startswith(_MAY_CHANGE_ON_RESUME) and new.get(key) != old.get(key):
            raise PffError(f"--resume: {key} = {new.get(key)!r} differs from the saved run's {old.get(key)!r}")
    return cfg


def check_out(out: Path) -> None:
    """PffError unless ``out`` is a folder or can be made one (it and every existing parent are folders)."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise PffError(f"--out: '{path}' is a file, not a folder; choose another run folder")
            return


def load_checkpoint_state(path: Path) -> dict:
    """The JSON ``state`` of a checkpoint, without reading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return json.loads(handle.metadata()["state"])
    except Exception as err:
        raise PffError(f"cannot read checkpoint '{path}': {err}") from err


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict) and key != "degrade":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def make_datasets(cfg: RunConfig, length: int):
    """``(training stream of `length` samples, validation set or None)`` from ``cfg.data``."""
    from pff import data, degrade

    for root in cfg.data.roots:
        if not Path(root).is_dir():
            raise PffError(f"data.roots: image folder '{root}' does not exist")
    paths = data.list_images(cfg.data.roots)
    # Decode every image once now: a corrupt file is then a one-line error naming it, before the
    # run folder exists, instead of a traceback from a DataLoader worker hours into the run.
    for path in paths:
        read_image(path)
    try:
        train_paths, val_paths = data.split_train_val(paths, cfg.data.val_count, cfg.seed)
    except PffError as err:
        raise PffError(f"data.val_count: {err}") from err
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.data.degrade.items()}
    try:
        physics = degrade.for_task(cfg.task, **params)
    except (PffError, TypeError) as err:
        raise PffError(f"data.degrade: {err}") from err
    train_set = data.PairDataset(
        train_paths, physics, patch=cfg.data.patch, channels=cfg.channels, augment=cfg.data.augment,
        seed=cfg.seed, length=length, gray=cfg.data.gray,
    )
    val_set = None
    if val_paths:
        val_set = data.ValidationSet(
            val_paths, physics, patch=cfg.data.val_patch, per_image=cfg.data.val_per_image,
            channels=cfg.channels, seed=cfg.seed + 1, gray=cfg.data.gray,
        )
    return train_set, val_set


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 itself (a CUDA GPU that supports it; a CPU with AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe() for probe in probes if probe is not None)


def compute_threads(workers: int, world: int) -> int:
    """Threads for the training process: its share of the cores minus one per data worker.

    More threads than free cores is the one setting to avoid: on a 2-core CPU
    already running another job, two compute threads beside a data worker
    waited on each other at every parallel region (jpeg: 8-13 patches/s,
    against 120 with one thread).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // world - workers)


def _device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise PffError("train.device: 'cuda' requested but no CUDA device is available")
    return torch.device(name)


def train(cfg: RunConfig, out: str | os.PathLike[str], *, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) a run in folder ``out``; returns the summary also written to ``summary.json``."""
    out = Path(out)
    check_out(out)
    device = _device(cfg.train.device)
    if cfg.train.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise PffError("train.tensorboard: needs the tensorboard package (pip install 'pff[tensorboard]')") from None
    dist = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    torch.set_num_threads(cfg.train.threads or compute_threads(cfg.data.workers, dist.world))
    if cfg.train.batch_size % dist.world:
        raise PffError(f"train.batch_size: {cfg.train.batch_size} does not split over {dist.world} processes")
    saved = load_checkpoint(out / CHECKPOINT) if resume else None
    if saved is not None and saved[2]["step"] > cfg.train.steps:
        raise PffError(f"train.steps: {cfg.train.steps} is below the {saved[2]['step']} steps already done")
    train_set, val_set = make_datasets(cfg, cfg.train.steps * cfg.train.batch_size)

    with torch.random.fork_rng(devices=[]):  # initial weights from the seed, global RNG untouched
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model, 3 if cfg.channels == "rgb" else 1)
    if cfg.init and saved is None:
        from pff.models.zoo import load, transplant

        try:
            transplant(model, load(cfg.init)[0])
        except PffError as err:
            raise PffError(f"init: {err}") from err
    model = model.to(device, memory_format=torch.channels_last if cfg.train.channels_last else torch.preserve_format)
    trainer = Trainer(cfg, model, device, dist)
    if saved is not None:
        model.load_state_dict(saved[0])
        trainer.optimizer.load_state_dict(saved[1])
        trainer.step = saved[2]["step"]

    workers = cfg.data.workers
    loader = torch.utils.data.DataLoader(
        train_set, batch_sampler=StepBatches(trainer.step, cfg.train.steps, cfg.train.batch_size, dist),
        num_workers=workers, pin_memory=device.type == "cuda", prefetch_factor=2 if workers else None,
    )
    progress = validation = None
    if dist.main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PffError(f"--out: cannot make run folder '{out}': {err.strerror}") from err
        for stale in out.glob(".*.tmp"):  # left by a process killed while writing
            stale.unlink(missing_ok=True)
        write_json_atomic(out / "run.json", to_dict(cfg))
        progress = Progress(out, cfg, trainer.step)
        trainer.callbacks.append(progress)
        if val_set is not None:
            validation = Validation(val_set, cfg.train.val_every, progress)
            trainer.callbacks.append(validation)
        trainer.callbacks.append(Checkpointing(out, cfg))
    t0 = time.perf_counter()
    start = trainer.step
    try:
        trainer.run(iter(loader))
    finally:
        if progress is not None:
            progress.close()
    trainer.sync_buffers()
    digests = _gather_digests(trainer)
    summary = {
        "steps": trainer.step,
        "steps_this_session": trainer.step - start,
        "seconds_this_session": round(time.perf_counter() - t0, 2),
        "world": dist.world,
        "rank_digests": digests,
        "val_psnr": validation.last if validation else None,
        "val_input_psnr": validation.input_psnr if validation else None,
    }
    if dist.main:
        if trainer.step == start:  # nothing left to do: make sure the model files exist
            Checkpointing(out, cfg).write(trainer)
        save(trainer.module, cfg.card, out)  # after sync_buffers: the statistics every rank holds
        write_json_atomic(out / "summary.json", summary)
        if len(set(digests)) != 1:
            raise RuntimeError(f"processes ended with different weights: {digests}")
    if dist.world > 1:
        import torch.distributed as tdist

        # DDP holds the group too: drop it, so that destroying the group stops its threads now.
        trainer.model = trainer.module
        tdist.destroy_process_group()
    return summary


def _gather_digests(trainer: Trainer) -> list[str]:
    digest = weights_digest(trainer.module)
    if trainer.dist.world == 1:
        return [digest]
    import torch.distributed as dist

    digests: list[Any] = [None] * trainer.dist.world
    dist.all_gather_object(digests, digest)
    return digests
