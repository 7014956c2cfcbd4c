"""``pff demo``: a small, self-checking run of the filter-flow operator.

Builds a synthetic batch, applies a different filter in each quadrant (the
identity, a shift, a Gaussian blur, a one-sided motion blur), checks the
fast op against the unfold reference, and prints timings and the expected
flow of each quadrant next to the value it must have.  Runs in seconds.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from pff.errors import PffError
from pff.ops import expected_flow, filter_flow, filter_flow_reference


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a small example of the filter-flow operator",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    add = parser.add_argument
    add("--size", type=int, default=128, help="image height and width (default 128)")
    add("--batch", type=int, default=4, help="images in the batch (default 4)")
    add("-k", "--kernel-size", type=int, default=9, help="filter size K, odd (default 9)")
    add("--seed", type=int, default=0, help="seed of the synthetic images (default 0)")
    parser.set_defaults(run=run)


def synthetic_images(batch: int, size: int, seed: int) -> torch.Tensor:
    """(B, 3, S, S) in [0, 1]: colour ramps, a checkerboard and a little noise."""
    gen = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(ramp, ramp, indexing="ij")  # (S, S) each
    checker = ((torch.arange(size)[:, None] // 8 + torch.arange(size) // 8) % 2).float()
    base = torch.stack([xx, yy, 0.5 * checker + 0.25])  # (3, S, S)
    noise = 0.05 * torch.randn(batch, 3, size, size, generator=gen)
    return (base + noise).clamp(0, 1)


def quadrant_filters(
    batch: int, size: int, k: int
) -> tuple[torch.Tensor, list[tuple[str, float, float]]]:
    """(B, K*K, S, S) filters, one kind per quadrant, and each kind's (name, dx, dy)."""
    r = k // 2
    offsets = torch.arange(-r, r + 1, dtype=torch.float32)
    identity = torch.zeros(k, k)
    identity[r, r] = 1
    shift = torch.zeros(k, k)
    shift[r, r + min(2, r)] = 1  # reads 2 pixels to the right: content moves left
    gauss_1d = torch.exp(-(offsets**2) / (2 * 1.5**2))
    gauss = torch.outer(gauss_1d, gauss_1d)
    motion = torch.zeros(k, k)
    motion[r, r:] = 1  # a one-sided horizontal smear
    kinds = [
        ("identity", identity),
        (f"shift dx=+{min(2, r)}", shift),
        ("gaussian blur s=1.5", gauss),
        (f"motion blur 0..+{r}", motion),
    ]
    half = size // 2
    top, bottom, left, right = slice(0, half), slice(half, size), slice(0, half), slice(half, size)
    slices = [(top, left), (top, right), (bottom, left), (bottom, right)]
    filters = torch.empty(batch, k * k, size, size)
    table = []
    for (name, kernel), (ys, xs) in zip(kinds, slices):
        kernel = kernel / kernel.sum()
        filters[:, :, ys, xs] = kernel.reshape(1, k * k, 1, 1)
        dx = float((kernel.sum(0) * offsets).sum())  # column offsets weigh x
        dy = float((kernel.sum(1) * offsets).sum())
        table.append((name, dx, dy))
    return filters, table


def _median_ms(fn: Callable[[], object], repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def run(args: argparse.Namespace) -> int:
    k, size, batch = args.kernel_size, args.size, args.batch
    if k < 1 or k % 2 == 0:
        raise PffError(f"--kernel-size must be odd and >= 1, got {k}")
    if size < 2 * k:
        raise PffError(f"--size must be at least 2*K = {2 * k} for the quadrants, got {size}")
    if batch < 1:
        raise PffError(f"--batch must be >= 1, got {batch}")

    image = synthetic_images(batch, size, args.seed)
    filters, kinds = quadrant_filters(batch, size, k)
    print(f"pff demo: {batch}x3x{size}x{size} image, K={k}, {torch.get_num_threads()} threads")

    out = filter_flow(image, filters, padding="reflect")
    ref = filter_flow_reference(image, filters, padding="reflect")
    x = image.clone().requires_grad_()
    w = filters.clone().requires_grad_()
    grads = torch.autograd.grad(filter_flow(x, w, padding="reflect").square().sum(), (x, w))
    ref_loss = filter_flow_reference(x, w, padding="reflect").square().sum()
    ref_grads = torch.autograd.grad(ref_loss, (x, w))
    err = max(float((a - b).abs().max()) for a, b in zip((out, *grads), (ref, *ref_grads)))
    print(f"fast vs unfold reference: max |difference| in output and gradients = {err:.2e}")

    half, step = size // 2, min(2, k // 2)
    inner = out[:, :, k : half - k, half + k : size - k]  # shift quadrant, away from its edges
    moved = image[:, :, k : half - k, half + k + step : size - k + step]
    print(f"shift quadrant is the image moved left by {step} pixels: {torch.equal(inner, moved)}")

    print("\nexpected flow at each quadrant's centre (mean over the batch)")
    print(f"  {'filter':<22}{'dx':>8}{'dy':>8}{'exact dx':>10}{'exact dy':>10}")
    flow = expected_flow(filters)  # (B, 2, S, S)
    quarter = half // 2
    near, far = quarter, half + quarter
    centres = [(near, near), (near, far), (far, near), (far, far)]
    for (name, dx, dy), (cy, cx) in zip(kinds, centres):
        # + 0.0 turns a rounded -0.0 into 0.0
        values = [round(float(v), 3) + 0.0 for v in (*flow[:, :, cy, cx].mean(0), dx, dy)]
        print(f"  {name:<22}" + "".join(f"{v:>{n}.3f}" for v, n in zip(values, (8, 8, 10, 10))))

    print("\ntimes in ms (median of 5)")
    print(f"  {'':<18}{'unfold ref':>12}{'fast':>10}{'ref/fast':>10}")
    for label, image_grad in (("forward", None), ("forward+backward", True)):
        times = []
        for op in (filter_flow_reference, filter_flow):
            if image_grad is None:
                def call(op=op) -> None:
                    with torch.no_grad():
                        op(image, filters, padding="reflect")
            else:
                def call(op=op) -> None:
                    torch.autograd.grad(op(x, w, padding="reflect").sum(), (x, w))
            times.append(_median_ms(call))
        print(f"  {label:<18}{times[0]:>12.2f}{times[1]:>10.2f}{times[0] / times[1]:>10.1f}")
    return 0 if err < 1e-4 else 1
