"""Speed and memory of ``pff.ops.filter_flow`` against the unfold reference, and of ``apply_basis``.

    python benchmarks/bench_ops.py            # the full table (1-2 minutes)
    python benchmarks/bench_ops.py --quick    # fewer repeats, K = 17 only
    python benchmarks/bench_ops.py --threads 1

For every case it prints, for the unfold reference, the fast op and their
ratio (reference / fast):

- ``fwd``: forward only, no autograd graph (``torch.no_grad``).
- ``fb(w)``: forward + backward with only the filters requiring grad, the
  training case (the degraded image is data).
- ``fb(x,w)``: forward + backward with both inputs requiring grad.
- ``kept(w)``, ``kept(x,w)``: MB the op keeps alive for backward in those two
  cases: the distinct storages autograd saves during the forward
  (``saved_tensors_hooks``), inputs included when they are saved.
- ``peak fwd``, ``peak fb``: MB of process resident memory above the level
  with the inputs allocated, at its highest during one no-grad forward and
  during one fb(x,w) (which includes the two gradients it returns).  Linux
  only ("-" elsewhere): measured in a child process whose glibc is told to
  give every allocation of 64 KiB or more its own mapping
  (MALLOC_MMAP_THRESHOLD_), so freed tensors leave the resident set at once
  and allocator caching cannot hide a temporary; the high-water mark VmHWM
  is reset through /proc/self/clear_refs before each run.

and a ``floor`` row: the time to read the filters once (``filters.sum()``)
for fwd; that plus writing a fresh same-size gradient
(``torch.empty_like(filters).fill_(1)``, page faults included) for fb(w),
whose backward needs only the image; and one more read for fb(x,w), whose
image gradient needs the filters again.

A second table times the low-rank path the shipped models run,
``apply_basis(image, coeffs, basis)`` with N = 16 basis filters ("basis"),
against ``filter_flow(image, coeffs @ basis)``, the same filters
materialised as (B, K*K, H, W) first ("filters"; the product is timed too,
since it is the work the low-rank path avoids), on the same shapes; ratio =
filters / basis.  ``fb(c,b)`` is forward + backward with the coefficients
and the basis requiring grad (training: the image is data), ``kept(c,b)``
the MB autograd keeps for it.

A third table times a full head at inference (``deblur-shake``, the paper
network): filters made by a 1x1 convolution of E = 32 channels-last feature
maps, as the predictor's output convolution makes them, then ``filter_flow``
("filters": the (B, K*K, H, W) filters written and read back), against
``filter_flow_linear`` on the same features ("strips"), linear and softmax
(``fwd``, ``fwd(sm)``); ratio = filters / strips. ``--full-megapixels``
sets the image (default 1 MP, the size a restore runs whole).
Times are medians of several repeats after a warm-up, in this one process.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from pff.ops import apply_basis, filter_flow, filter_flow_linear, filter_flow_reference

SHAPES = ((16, 3, 64, 64), (1, 3, 512, 512))
KS = (5, 9, 17)
BASIS = 16
MB = 2**20


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def kept_mb(run: Callable[[], object]) -> float:
    """MB of distinct storages autograd saves for backward during ``run()``."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run()
    del out
    return sum(storages.values()) / MB


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise OSError(field)


def peak_mb(fn: Callable[[], object]) -> float | None:
    """Peak resident MB above the current level while ``fn`` runs (Linux only)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current VmRSS
        before = _rss_kb("VmRSS:")
        fn()
        return (_rss_kb("VmHWM:") - before) / 1024
    except OSError:
        return None


def make_inputs(shape: tuple[int, ...], k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    b, c, h, w = shape
    image = torch.randn(shape, generator=gen)
    filters = torch.randn(b, k * k, h, w, generator=gen) / k
    grad_out = torch.randn(shape, generator=gen)
    return image, filters, grad_out


def fwd_bwd(op: Callable, image: torch.Tensor, filters: torch.Tensor, grad_out: torch.Tensor,
            image_grad: bool) -> Callable[[], None]:
    x = image.clone().requires_grad_(image_grad)
    f = filters.clone().requires_grad_()
    inputs = (x, f) if image_grad else (f,)

    def run() -> None:
        torch.autograd.grad(op(x, f), inputs, grad_out)

    return run


def measure(op: Callable, shape: tuple[int, ...], k: int, repeats: int) -> dict[str, float | None]:
    image, filters, grad_out = make_inputs(shape, k)

    def forward() -> None:
        with torch.no_grad():
            op(image, filters)

    b, _, h, w = shape
    slow = k * k * b * h * w > 2e7  # fewer repeats where the reference takes seconds
    reps = max(3, repeats // 2) if slow else repeats
    return {
        "fwd": median_ms(forward, reps),
        "fb(w)": median_ms(fwd_bwd(op, image, filters, grad_out, False), reps),
        "fb(x,w)": median_ms(fwd_bwd(op, image, filters, grad_out, True), reps),
        "kept(w)": kept_mb(lambda: op(image, filters.clone().requires_grad_())),
        "kept(x,w)": kept_mb(lambda: op(image.clone().requires_grad_(), filters.clone().requires_grad_())),
    }


def measure_peaks(op: Callable, shape: tuple[int, ...], k: int) -> dict[str, float | None]:
    image, filters, grad_out = make_inputs(shape, k)

    def forward() -> None:
        with torch.no_grad():
            op(image, filters)

    both = fwd_bwd(op, image, filters, grad_out, True)
    forward()  # first calls allocate what later calls reuse (thread pools, ...)
    both()
    return {"peak fwd": peak_mb(forward), "peak fb": peak_mb(both)}


def peaks_in_child(cases: list[tuple[tuple[int, ...], int]], threads: int) -> dict[str, dict]:
    """Runs measure_peaks for every case in a child with a fixed mmap threshold."""
    if not os.path.exists("/proc/self/clear_refs"):
        return {}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    spec = json.dumps({"cases": cases, "threads": threads})
    done = subprocess.run(
        [sys.executable, __file__, "--peaks-child", spec],
        env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout)


def child_main(spec: str) -> int:
    config = json.loads(spec)
    torch.set_num_threads(config["threads"])
    result = {}
    for shape, k in config["cases"]:
        for impl, op in (("ref", filter_flow_reference), ("fast", filter_flow)):
            result[f"{tuple(shape)}|{k}|{impl}"] = measure_peaks(op, tuple(shape), k)
    print(json.dumps(result))
    return 0


def floor(shape: tuple[int, ...], k: int, repeats: int) -> dict[str, float | None]:
    b, _, h, w = shape
    filters = torch.randn(b, k * k, h, w)
    read = median_ms(filters.sum, repeats)
    write = median_ms(lambda: torch.empty_like(filters).fill_(1), repeats)
    return {"fwd": read, "fb(w)": read + write, "fb(x,w)": 2 * read + write}


def via_filters(image: torch.Tensor, coeffs: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``filter_flow`` with the low-rank filters materialised: what ``apply_basis`` avoids."""
    return filter_flow(image, torch.einsum("bnhw,nk->bkhw", coeffs, basis))  # filters (B, K*K, H, W)


def measure_basis(op: Callable, shape: tuple[int, ...], k: int, repeats: int) -> dict[str, float | None]:
    gen = torch.Generator().manual_seed(0)
    b, _, h, w = shape
    image = torch.randn(shape, generator=gen)
    coeffs = torch.randn(b, BASIS, h, w, generator=gen)
    basis = torch.randn(BASIS, k * k, generator=gen) / k
    grad_out = torch.randn(shape, generator=gen)
    c, bs = coeffs.clone().requires_grad_(), basis.clone().requires_grad_()

    def forward() -> None:
        with torch.no_grad():
            op(image, coeffs, basis)

    def both() -> None:
        torch.autograd.grad(op(image, c, bs), (c, bs), grad_out)

    return {
        "fwd": median_ms(forward, repeats),
        "fb(c,b)": median_ms(both, repeats),
        "kept(c,b)": kept_mb(lambda: op(image, c, bs)),
    }


BASIS_COLUMNS = ("fwd", "fb(c,b)", "kept(c,b)")
FEATURES = 32


def via_head(image: torch.Tensor, features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
             softmax: bool) -> torch.Tensor:
    """The filters of a 1x1 output convolution written out in standard layout, then ``filter_flow``."""
    b, e, h, w = features.shape
    cols = features.permute(0, 2, 3, 1).reshape(b, h * w, e).transpose(1, 2)  # a view of the channels-last maps
    filters = torch.baddbmm(bias[None, :, None], weight.expand(b, -1, -1), cols).view(b, -1, h, w)
    return filter_flow(image, torch.softmax(filters, dim=1) if softmax else filters)


def measure_head(op: Callable, shape: tuple[int, ...], k: int, repeats: int) -> dict[str, float | None]:
    gen = torch.Generator().manual_seed(0)
    b, _, h, w = shape
    image = torch.randn(shape, generator=gen)
    features = torch.randn(b, FEATURES, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(k * k, FEATURES, generator=gen) / (k * FEATURES**0.5)
    bias = torch.randn(k * k, generator=gen) / k
    with torch.no_grad():
        return {column: median_ms(lambda sm=softmax: op(image, features, weight, bias, sm), repeats)
                for column, softmax in (("fwd", False), ("fwd(sm)", True))}


def strips(image: torch.Tensor, features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
           softmax: bool) -> torch.Tensor:
    return filter_flow_linear(image, features, weight, bias, softmax=softmax)


HEAD_COLUMNS = ("fwd", "fwd(sm)")


def print_header(title: str, columns: tuple[str, ...]) -> None:
    header = f"{'shape':<13} {'K':>3} {'impl':<8}" + "".join(f"{c:>10}" for c in columns)
    print(f"\n{title}\n{header}\n" + "-" * len(header))


def print_case(shape: tuple[int, ...], k: int, rows: dict[str, dict], columns: tuple[str, ...],
               over: tuple[str, str]) -> None:
    """One row per implementation, then the ratio row ``over[0] / over[1]``."""
    name = "x".join(map(str, shape))
    for impl, row in rows.items():
        cells = "".join(f"{fmt(row.get(c)):>10}" for c in columns)
        print(f"{name:<13} {k:>3} {impl:<8}{cells}")
    num, den = rows[over[0]], rows[over[1]]
    ratios = "".join(f"{fmt(num[c] / den[c]) if num.get(c) and den.get(c) else '-':>10}" for c in columns)
    print(f"{name:<13} {k:>3} {'ratio':<8}{ratios}", flush=True)


COLUMNS = ("fwd", "fb(w)", "fb(x,w)", "kept(w)", "kept(x,w)", "peak fwd", "peak fb")


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="K = 17 only, fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per number")
    parser.add_argument("--full-megapixels", type=float, default=1.0, help="image of the full-head table")
    parser.add_argument("--peaks-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peaks_child:
        return child_main(args.peaks_child)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 7)
    cases = [(shape, k) for shape in SHAPES for k in ((17,) if args.quick else KS)]

    print(f"cpu: {cpu_model()}, {os.cpu_count()} logical cores; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"capability {torch.backends.cpu.get_cpu_capability()}; "
          f"python {platform.python_version()}")
    print("times in ms (median), memory in MB; ratio = ref / fast (low rank: filters / basis); "
          "columns: see the docstring")
    print("measuring peak memory in a child process ...", flush=True)
    peaks = peaks_in_child(cases, torch.get_num_threads())
    print_header("filter_flow: unfold reference (ref) vs fast op (fast)", COLUMNS)
    for shape, k in cases:
        rows = {}
        for impl, op in (("ref", filter_flow_reference), ("fast", filter_flow)):
            rows[impl] = measure(op, shape, k, repeats)
            rows[impl].update(peaks.get(f"{shape}|{k}|{impl}", {}))
        rows["floor"] = floor(shape, k, repeats)
        print_case(shape, k, rows, COLUMNS, ("ref", "fast"))
    print_header(f"low rank, N = {BASIS}: filter_flow(image, coeffs @ basis) (filters) vs apply_basis (basis)",
                 BASIS_COLUMNS)
    for shape, k in cases:
        rows = {impl: measure_basis(op, shape, k, repeats) for impl, op in (("filters", via_filters), ("basis", apply_basis))}
        print_case(shape, k, rows, BASIS_COLUMNS, ("filters", "basis"))
    side = max(1, round((args.full_megapixels * 1e6) ** 0.5))
    print_header(f"full head, E = {FEATURES}: 1x1 convolution then filter_flow (filters) vs filter_flow_linear "
                 f"(strips)", HEAD_COLUMNS)  # fmt: skip
    for k in (17,) if args.quick else KS:
        rows = {impl: measure_head(op, (1, 3, side, side), k, repeats) for impl, op in (("filters", via_head), ("strips", strips))}
        print_case((1, 3, side, side), k, rows, HEAD_COLUMNS, ("filters", "strips"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
