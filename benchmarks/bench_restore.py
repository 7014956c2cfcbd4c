"""Speed and memory of ``pff restore`` (Restorer, tiled) per shipped model.

Rows: every shipped model of each task (``pff.models.TASK_MODELS``; sr by scale).
For each: seconds per output megapixel on a 1-MP image (median of
--repeats) and on a 12-MP image; the peak RSS of a fresh process restoring
the 12-MP image, also as bytes per output pixel; and the speed against the
paper-size network (``ARCHS["paper"]``, kernel 17, softmax filters) restoring
the same --paper-megapixels image in the same process (paper s/MP over the
model's s/MP, medians of --ratio-repeats alternated runs: 10 means ten times faster). --models
times other models (shipped names or model folders, e.g. a training run's)
instead of the shipped ones, each beside the paper network in its own
process. A shipped name whose weights are missing is replaced by an
untrained pff-small of the same task (speed does not depend on the
weights). For sr the input is the low-resolution image, ``scale``
times smaller than the output. Each process keeps freed memory for reuse as
the ``pff`` command does (``pff.allocator``); ``--allocator system`` leaves
glibc's default (large blocks mapped afresh each time), to see the difference.

    python benchmarks/bench_restore.py [--megapixels 12] [--tasks deblur jpeg sr] [--precision fp32]
    python benchmarks/bench_restore.py --models sr-x2 runs/sr-x2-deeper --megapixels 4
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def _restorer(task: str, spec: str, precision: str):  # -> (pff.restore.Restorer, label)
    from pff.models import ModelCard, available, create
    from pff.restore import Restorer

    if spec in available() or os.path.isdir(spec):
        return Restorer.from_pretrained(spec, precision=precision), os.path.basename(os.path.normpath(spec))
    channels = "rgb" if task == "deblur" else "y"
    model = create("pff-small", channels=channels, constraint="normalized" if task == "deblur" else "none",
                   kernel={"deblur": 17, "jpeg": 11, "sr": 13}[task])  # fmt: skip
    card = ModelCard(task=task, channels=channels, model=model.config, degrade={"scale": 4} if task == "sr" else {})
    return Restorer(model, card, precision=precision), "untrained pff-small"


def _paper(restorer, precision: str):  # -> pff.restore.Restorer
    """The paper-size network restoring what ``restorer`` restores (for sr: the bicubic upsampling, same output)."""
    from pff.models import ModelCard, create
    from pff.restore import Restorer

    card = restorer.card
    model = create("paper", channels=card.channels, kernel=17, constraint="softmax")
    degrade = {"scale": card.scale} if card.task == "sr" else {}
    return Restorer(model, ModelCard(task=card.task, channels=card.channels, model=model.config, degrade=degrade),
                    precision=precision)  # fmt: skip


def _seconds_per_mp(restorer, h: int, w: int, repeats: int) -> tuple[float, int]:
    """(median seconds per output megapixel, output pixels) restoring the input of a random h x w output
    (h/s x w/s for sr)."""
    import numpy as np

    s = restorer.card.scale
    image = np.random.default_rng(0).integers(0, 256, (h // s, w // s, 3)).astype(np.uint8)
    restorer.halo  # measure the receptive field before timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = restorer.restore(image)
        times.append(time.perf_counter() - start)
    pixels = out.shape[0] * out.shape[1]
    return sorted(times)[len(times) // 2] / (pixels / 1e6), pixels


def _child(task: str, spec: str, h: int, w: int, repeats: int, precision: str, paper_mp: float,
           allocator: str, ratio_repeats: int) -> dict:
    from pff.allocator import keep_freed_memory

    if allocator == "kept":
        keep_freed_memory()  # as the pff command runs
    restorer, label = _restorer(task, spec, precision)
    s_per_mp, pixels = _seconds_per_mp(restorer, h, w, repeats)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before the paper network runs
    result = {"model": label, "s_per_mp": s_per_mp, "pixels": pixels, "rss_bytes": rss}
    if paper_mp > 0:
        ph = int(round((paper_mp * 1e6 * 3 / 4) ** 0.5))
        pw = ph * 4 // 3
        # Medians of alternated runs of both, so that the ratio does not hang on one run of each on a
        # machine whose speed drifts.
        paper = _paper(restorer, precision)
        own, theirs = [], []
        for _ in range(ratio_repeats):
            own.append(_seconds_per_mp(restorer, ph, pw, 1)[0])
            theirs.append(_seconds_per_mp(paper, ph, pw, 1)[0])
        result["vs_paper"] = sorted(theirs)[len(theirs) // 2] / sorted(own)[len(own) // 2]
    return result


def _run(task: str, spec: str, h: int, w: int, repeats: int, precision: str, allocator: str,
         paper_mp: float = 0.0, ratio_repeats: int = 0) -> dict:
    """One measurement in a fresh process (so that its peak RSS is its own)."""
    args = [task, spec, str(h), str(w), str(repeats), precision, str(paper_mp), allocator, str(ratio_repeats)]
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{task} ({spec}) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rows(tasks: list[str], models: list[str] | None) -> list[tuple[str, str]]:
    """(task, model) per row: ``models`` (their cards' tasks) if given, else every shipped model of
    ``tasks`` (sr by scale; the default when none is)."""
    from pff.models import TASK_MODELS, available
    from pff.models.zoo import read_card

    if models:
        return [(read_card(spec).task, spec) for spec in models]
    rows = []
    for task in tasks:
        names = [n for n in TASK_MODELS[task] if n in available()] or list(TASK_MODELS[task][:1])
        if task == "sr":
            names.sort(key=lambda n: int(n.rsplit("x", 1)[1]))
        rows += [(task, name) for name in names]
    return rows


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        task, spec, h, w, repeats, precision, paper_mp, allocator, ratio_repeats = sys.argv[2:]
        print(json.dumps(_child(task, spec, int(h), int(w), int(repeats), precision, float(paper_mp), allocator,
                                int(ratio_repeats))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=float, default=12.0, help="size of the large image (default 12, 4:3)")
    parser.add_argument("--tasks", nargs="+", default=["deblur", "jpeg", "sr"], choices=["deblur", "jpeg", "sr"])
    parser.add_argument("--models", nargs="+", metavar="MODEL",
                        help="shipped names or model folders to time instead of the shipped models of --tasks")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the 1-MP image (median)")
    parser.add_argument("--ratio-repeats", type=int, default=5,
                        help="alternated runs of the model and the paper network (median of each; default 5)")
    parser.add_argument("--paper-megapixels", type=float, default=0.25,
                        help="image size of the speed comparison with the paper-size network (default 0.25)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--allocator", choices=("kept", "system"), default="kept",
                        help="kept: freed memory reused, as the pff command runs (default); system: glibc's default")
    args = parser.parse_args()
    import torch

    from pff.errors import PffError

    try:
        rows = _rows(args.tasks, args.models)
    except PffError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision}, allocator {args.allocator}")  # fmt: skip
    h_big = int(round((args.megapixels * 1e6 * 3 / 4) ** 0.5))
    w_big = h_big * 4 // 3
    print(f"{'task':<8}{'model':<22}{'1 MP s/MP':>11}{f'{args.megapixels:g} MP s/MP':>13}{'peak RSS GB':>13}"
          f"{'bytes/px':>10}{f'x paper ({args.paper_megapixels:g} MP)':>20}")  # fmt: skip
    for task, spec in rows:
        small = _run(task, spec, 864, 1152, args.repeats, args.precision, args.allocator, args.paper_megapixels,
                     args.ratio_repeats)  # ~1 MP
        big = _run(task, spec, h_big, w_big, 1, args.precision, args.allocator)
        print(f"{task:<8}{small['model']:<22}{small['s_per_mp']:>11.2f}{big['s_per_mp']:>13.2f}"
              f"{big['rss_bytes'] / 1e9:>13.2f}{big['rss_bytes'] / big['pixels']:>10.1f}"
              f"{small['vs_paper']:>20.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
