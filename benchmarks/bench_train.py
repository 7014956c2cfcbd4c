"""Training throughput: 64x64 patches per second (forward, backward, Adam step; batch 16).

Prints the machine, then one row per config in configs/ and one for a network
of the paper's size (the ``paper`` architecture: ResNet-18 trunk, 289-channel
head), each with the options `pff train` uses (bfloat16 autocast where the
device has bfloat16 units, channels-last, threads as training picks them from data.workers), and the
ratio to the paper network. A second table switches bfloat16 and channels-last on and off.
Inputs are random tensors, so this times the network only; the data
pipeline runs in its own worker process during training. A config whose
model upscales by s (low-resolution SR) gets floor(64/s)-pixel inputs and s times larger targets.

    python benchmarks/bench_train.py [--steps 5] [--threads N] [--skip-options]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from pff.config import from_dict
from pff.models import build_model, count_parameters
from pff.train import RunConfig, bf16_native, compute_threads, load_config

ROOT = Path(__file__).resolve().parents[1]
BATCH, SIZE = 16, 64


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"machine: {cpu}, {cores} cores{' (native bf16)' if bf16 else ''}; GPU: {gpu}\n"
            f"python {platform.python_version()}, torch {torch.__version__}, {platform.system()} {platform.release()}")


def throughput(cfg: RunConfig, *, amp: bool, channels_last: bool, steps: int, device: torch.device) -> float:
    """Median patches/s over ``steps`` timed training steps after two warm-up steps.

    ``amp`` here means bfloat16 autocast even where ``pff train`` would not use it (a CPU without bfloat16
    units), so that the options table shows what it would cost.
    """
    import pff.train

    native = pff.train.bf16_native
    pff.train.bf16_native = lambda _device: True  # measure emulated bfloat16 too
    try:
        return _throughput(cfg, amp=amp, channels_last=channels_last, steps=steps, device=device)
    finally:
        pff.train.bf16_native = native


def _throughput(cfg: RunConfig, *, amp: bool, channels_last: bool, steps: int, device: torch.device) -> float:
    from pff.train import Dist, Trainer

    cfg = replace(cfg, train=replace(cfg.train, amp=amp, channels_last=channels_last))
    torch.manual_seed(0)
    model = build_model(cfg.model, 3 if cfg.channels == "rgb" else 1).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    trainer = Trainer(cfg, model, device, Dist())
    c = 3 if cfg.channels == "rgb" else 1
    gen = torch.Generator().manual_seed(0)
    s = cfg.model.upscale  # an upscaling model's input is the low-resolution patch
    low = SIZE // s
    batch = (torch.rand(BATCH, c, low, low, generator=gen), torch.rand(BATCH, c, s * low, s * low, generator=gen))
    times: list[float] = []

    def tick(_trainer: Trainer) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter())

    trainer.callbacks.append(tick)
    start = time.perf_counter()
    trainer.run(iter([batch] * (steps + 2)))
    stamps = [start, *times][2:]
    return BATCH / statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per row (paper network: at least 3)")
    parser.add_argument("--threads", type=int, help="torch threads (default: every core; the batches are synthetic)")
    parser.add_argument("--skip-options", action="store_true", help="only the main table")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(machine())
    print(f"device {device.type}, batch {BATCH} of {SIZE}x{SIZE}, timed steps {args.steps} (median)\n")

    configs = {path.stem: load_config(path) for path in sorted((ROOT / "configs").glob("*.toml"))}
    deblur = configs.get("deblur") or next(iter(configs.values()))
    # The paper's network trained like the deblur config.
    paper = replace(deblur, model=from_dict(RunConfig, {"model": {"arch": "paper", "constraint": "softmax"}}).model)
    rows = {**configs, "paper network": paper}
    results, lines = {}, []
    for name, cfg in rows.items():
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        steps = max(3, args.steps // 2) if cfg.model.arch == "paper" else args.steps
        opts = (cfg.train.amp and bf16_native(device), cfg.train.channels_last)  # what pff train uses here
        threads = args.threads or compute_threads(0, 1)  # no data workers: the batches are random tensors
        torch.set_num_threads(threads)
        results[name] = throughput(cfg, amp=opts[0], channels_last=opts[1], steps=steps, device=device)
        params = count_parameters(build_model(cfg.model, 3 if cfg.channels == "rgb" else 1))
        label = "+".join(o for o, on in zip(("bf16", "chlast"), opts) if on) or "fp32"
        lines.append(f"{name:<14} {cfg.model.arch:<10} {cfg.model.kernel:>3} {cfg.model.constraint:<10} "
                     f"{cfg.channels:<3} {params:>11,} {label:<12} {threads:>7} {results[name]:>9.1f}")
    base = results["paper network"]
    header = (f"{'config':<14} {'arch':<10} {'K':>3} {'constraint':<10} {'ch':<3} {'params':>11} "
              f"{'options':<12} {'threads':>7} {'patches/s':>9} {'vs paper':>8}")
    print(header)
    print("-" * len(header))
    for line, value in zip(lines, results.values()):
        print(f"{line} {value / base:>7.1f}x")

    if args.skip_options:
        return 0
    threads = args.threads or compute_threads(0, 1)
    torch.set_num_threads(threads)
    print(f"\noptions ({threads} thread(s)): patches/s")
    print(f"{'config':<14} {'fp32':>8} {'chlast':>8} {'bf16':>8} {'bf16+chlast':>12}")
    for name in ("deblur", "paper network"):
        cfg = rows.get(name, deblur)
        steps = max(3, args.steps // 2) if cfg.model.arch == "paper" else args.steps
        values = [throughput(cfg, amp=a, channels_last=c, steps=steps, device=device)
                  for a, c in ((False, False), (False, True), (True, False), (True, True))]
        print(f"{name:<14} {values[0]:>8.1f} {values[1]:>8.1f} {values[2]:>8.1f} {values[3]:>12.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
