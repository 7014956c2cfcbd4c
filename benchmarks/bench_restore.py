"""Speed and memory of ``pff restore`` (Restorer, tiled) per task.

For every task: seconds per megapixel on a 1-MP image (median of --repeats)
and on a 12-MP image, and the peak RSS of a fresh process restoring the
12-MP image. Uses the shipped models when present, else an untrained network
of the same shape (pff-small; speed does not depend on the weights).

    python benchmarks/bench_restore.py [--megapixels 12] [--tasks deblur jpeg sr] [--precision fp32]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from pff.models import ModelCard, available, create
from pff.restore import Restorer
task, spec, h, w, repeats, precision = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
if spec in available():
    restorer = Restorer.from_pretrained(spec, precision=precision)
else:
    channels = "rgb" if task == "deblur" else "y"
    model = create("pff-small", channels=channels, constraint="normalized" if task == "deblur" else "none",
                   kernel={"deblur": 17, "jpeg": 11, "sr": 13}[task])
    restorer = Restorer(model, ModelCard(task=task, channels=channels, model=model.config), precision=precision)
    spec = "untrained pff-small"
if task == "sr":
    restorer.scale = 4
    h, w = h // 4, w // 4  # the low-resolution input of an h x w output
image = np.random.default_rng(0).integers(0, 256, (h, w, 3)).astype(np.uint8)
restorer.halo  # measure the receptive field before timing
times = []
for _ in range(repeats):
    start = time.perf_counter()
    out = restorer.restore(image)
    times.append(time.perf_counter() - start)
print(json.dumps({"model": spec, "seconds": sorted(times)[len(times) // 2], "megapixels": out.shape[0] * out.shape[1] / 1e6,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""

_MODELS = {"deblur": "deblur", "jpeg": "jpeg", "sr": "sr-x4"}


def _run(task: str, h: int, w: int, repeats: int, precision: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, task, _MODELS[task], str(h), str(w), str(repeats), precision],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=float, default=12.0, help="size of the large image (default 12, 4:3)")
    parser.add_argument("--tasks", nargs="+", default=list(_MODELS), choices=list(_MODELS))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the 1-MP image (median)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = parser.parse_args()
    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision}")  # fmt: skip
    h_big = int(round((args.megapixels * 1e6 * 3 / 4) ** 0.5))
    w_big = h_big * 4 // 3
    print(f"{'task':<8}{'model':<22}{'1 MP s/MP':>11}{f'{args.megapixels:g} MP s/MP':>13}{'peak RSS GB':>13}")
    for task in args.tasks:
        small = _run(task, 864, 1152, args.repeats, args.precision)  # ~1 MP
        big = _run(task, h_big, w_big, 1, args.precision)
        print(f"{task:<8}{small['model']:<22}{small['seconds'] / small['megapixels']:>11.2f}"
              f"{big['seconds'] / big['megapixels']:>13.2f}{big['rss_gb']:>13.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
