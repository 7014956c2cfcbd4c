"""Energy of the filters held by their top 10 principal components, per model and benchmark.

    python benchmarks/explain_energy.py                     # every shipped model
    python benchmarks/explain_energy.py --model runs/jpeg   # model folders instead
    python benchmarks/explain_energy.py --limit 2           # first 2 images per set

The paper (section 5) reports that the 10-D principal subspace of the
predicted filters holds 99.65% (non-uniform blur), 99.99% (JPEG artifact
removal) and 99.99% (super-resolution) of the filter energy. For each model
the filters of every pixel of its task's benchmark are pooled: deblur on the
blurry images of blur-moderate, jpeg on LIVE1 compressed at quality 10, sr on
the bicubic x4 inputs of Set5 and of Set14 (and both together), made exactly
as ``pff eval`` makes them (``pff.evaluate.build_benchmark``). Energies are
given centred (covariance around the mean filter) and uncentred (raw second
moment); see ``pff.explain.pca``. Whole images go through the model at once.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pff.errors import PffError
from pff.evaluate import build_benchmark
from pff.explain import FilterPCA, explain_image, load_explainable

_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "test"
PAPER = {"deblur": "99.65", "jpeg": "99.99", "sr": "99.99"}
# (row label, folder under the data root, build_benchmark keyword arguments) per task.
SETS = {
    "deblur": [("blur-moderate", "blur-moderate", {})],
    "jpeg": [("LIVE1 q10", "live1", {"quality": 10})],
    "sr": [("Set5 x4", "set5", {"scale": 4}), ("Set14 x4", "set14", {"scale": 4})],
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (f"{platform.system()} {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
            f"python {platform.python_version()}")  # fmt: skip


def _accumulate(restorer, benchmark, limit: int | None, accumulators: list[FilterPCA]) -> int:
    items = benchmark.items[:limit] if limit else benchmark.items
    for item in tqdm(items, desc=benchmark.data.name, unit="img", file=sys.stderr, leave=False):
        degraded, _ = item.load()
        expl = explain_image(restorer, degraded, name=item.name)  # the path of pff restore / pff explain
        for acc in accumulators:
            acc.add(expl.filters)
    return len(items)


def rows_for(spec: str, root: Path, limit: int | None, components: int, device: str) -> list[list[str]]:
    """One table row per benchmark set of the model's task (plus the sets pooled, for sr)."""
    restorer = load_explainable(spec, device=device)
    card = restorer.card
    pooled = FilterPCA()
    rows, images = [], 0
    for label, folder, kwargs in SETS[card.task]:
        acc = FilterPCA()
        n = _accumulate(restorer, build_benchmark(card.task, root / folder, **kwargs), limit, [acc, pooled])
        images += n
        rows.append(_row(spec, card, label, n, acc, components))
    if len(SETS[card.task]) > 1:
        rows.append(_row(spec, card, " + ".join(s[0] for s in SETS[card.task]), images, pooled, components))
    return rows


def _row(spec: str, card, label: str, images: int, acc: FilterPCA, components: int) -> list[str]:
    centred, raw = acc.result(center=True), acc.result(center=False)
    k = card.model.kernel
    return [str(spec), card.task, label, str(images), str(acc.count), f"{k}x{k}",
            f"{100 * centred.energy(components):.2f}", f"{100 * raw.energy(components):.3f}", PAPER[card.task]]  # fmt: skip


def format_table(rows: list[list[str]], components: int) -> str:
    header = ["model", "task", "benchmark", "images", "filters", "K", f"top-{components} centred %",
              f"top-{components} uncentred %", "paper %"]  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), "-" * (sum(widths) + 2 * (len(widths) - 1)), *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", metavar="NAME|PATH",
                        help="model to measure (repeatable); default: every shipped model")  # fmt: skip
    parser.add_argument("--data", type=Path, default=_ROOT, help=f"benchmark root (default {_ROOT})")
    parser.add_argument("--limit", type=int, help="use only the first N images of each set")
    parser.add_argument("--components", type=int, default=10, help="principal components (default 10)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    args = parser.parse_args(argv)

    from pff.models import available, load

    # Shipped models that predict filters (a direct CNN has none to measure).
    specs = args.model or [name for name in available() if load(name)[1].model.kind == "pff"]
    if not specs:
        print("explain_energy: no shipped models yet; pass --model FOLDER", file=sys.stderr)
        return 1
    print(f"# {machine()}")
    start = time.perf_counter()
    rows = []
    try:
        for spec in specs:
            rows += rows_for(spec, args.data, args.limit, args.components, args.device)
    except PffError as err:
        print(f"explain_energy: error: {err}", file=sys.stderr)
        return 2
    print(format_table(rows, args.components))
    print(f"# {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
