"""How far one linear filter per image can go: least-squares fits with the ground truth.

    python benchmarks/deblur_bound.py DIR [DIR ...] [--model deblur] [--kernel 17] [--border 20]

For every ``NAME_GT`` / ``NAME_blurry`` pair of each folder (the layout
``pff eval --task deblur`` reads), fits the K x K filter that, applied to
the blurry image at every pixel (the same filter everywhere, shared by the
three channels), comes closest to the ground truth in the least-squares
sense, and prints the PSNR gain it gives over the input. It is an upper
bound for a spatially invariant filter of that size, not a method: the
fit sees the answer. A second column restricts the filter to what a
basis-head model (``--model``, default ``deblur``) can express: its start
(the delta) plus any combination of its learned basis filters.

Use it to tell whether a deblurring model is limited by its filters (the
bound is low) or by how well it predicts them (the bound is far above what
it reaches). Scores are over the pixels at least ``--border`` from the
image edge (values in [0, 255], all channels).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def normal_equations(blurry: np.ndarray, sharp: np.ndarray, kernel: int, border: int):
    """``(G, h, yy, n, input_sse)``: ``A^T A``, ``A^T y``, ``y^T y``, rows and the input's squared error.

    Row p of A is the K x K neighbourhood of pixel p in the blurry image (row-major taps, one row per pixel
    and channel), y the ground truth there; pixels within ``border`` of the edge are left out.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    r = kernel // 2
    crop = border - r
    gram = np.zeros((kernel * kernel, kernel * kernel))
    rhs = np.zeros(kernel * kernel)
    yy = input_sse = 0.0
    rows = 0
    for c in range(blurry.shape[2]):
        b = blurry[:, :, c].astype(np.float64)
        y = sharp[border:-border, border:-border, c].astype(np.float64).reshape(-1)
        windows = sliding_window_view(b, (kernel, kernel))[crop : b.shape[0] - kernel + 1 - crop,
                                                           crop : b.shape[1] - kernel + 1 - crop]  # fmt: skip
        a = windows.reshape(-1, kernel * kernel)
        gram += a.T @ a
        rhs += a.T @ y
        yy += y @ y
        input_sse += np.sum((b[border:-border, border:-border].reshape(-1) - y) ** 2)
        rows += len(y)
    return gram, rhs, yy, rows, input_sse


def psnr(sse: float, rows: int) -> float:
    return float(10 * np.log10(255.0**2 / max(sse / rows, 1e-12)))


def fitted_sse(gram: np.ndarray, rhs: np.ndarray, yy: float, basis: np.ndarray | None, start: np.ndarray) -> float:
    """Squared error of the best filter ``start + basis^T c`` (``basis`` None: any filter)."""
    if basis is None:
        f = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    else:
        lhs = basis @ gram @ basis.T
        c = np.linalg.lstsq(lhs, basis @ (rhs - gram @ start), rcond=None)[0]
        f = start + basis.T @ c
    return float(yy - 2 * f @ rhs + f @ gram @ f)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--model", default="deblur", help="basis-head model for the second column (name or folder)")
    parser.add_argument("--kernel", type=int, default=None, help="filter side (default: the model's)")
    parser.add_argument("--border", type=int, default=20, help="pixels left out at each edge (at least kernel // 2)")
    args = parser.parse_args()

    from pff.errors import PffError
    from pff.evaluate import deblur_benchmark
    from pff.models import load

    try:
        model, card = load(args.model)
        if card.model.head != "basis" or card.model.color != "shared":
            raise PffError(f"--model: '{args.model}' does not filter with one learned basis (head 'basis', 'shared')")
        kernel = args.kernel or card.model.kernel
        if kernel != card.model.kernel:
            raise PffError(f"--kernel {kernel} differs from the model's {card.model.kernel}")
        if args.border < kernel // 2:
            raise PffError(f"--border must be at least {kernel // 2} for a {kernel}x{kernel} filter")
        basis = model._basis().detach().double().numpy()  # (N, K*K) as the model applies it
        start = model.delta.double().numpy()  # (K*K,) the delta the basis corrections are added to
        benches = [deblur_benchmark(folder) for folder in args.folders]
    except PffError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    span = f"in the span of {args.model}'s {len(basis)}-filter basis"
    print(f"| set | image | input PSNR | any {kernel}x{kernel} filter | {span} |")
    print("| --- | --- | --- | --- | --- |")
    for bench in benches:
        gains = []
        for item in bench.items:
            try:
                blurry, sharp = item.load()
                if min(blurry.shape[:2]) <= 2 * args.border:
                    size = f"{blurry.shape[1]}x{blurry.shape[0]}"
                    raise PffError(f"'{item.name}' is {size}: nothing left inside a {args.border}-pixel border")
            except PffError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            gram, rhs, yy, rows, input_sse = normal_equations(blurry, sharp, kernel, args.border)
            base = psnr(input_sse, rows)
            full = psnr(fitted_sse(gram, rhs, yy, None, start), rows) - base
            spanned = psnr(fitted_sse(gram, rhs, yy, basis, start), rows) - base
            gains.append((full, spanned))
            print(f"| {bench.data.name} | {item.name} | {base:.2f} | {full:+.2f} | {spanned:+.2f} |", flush=True)
        mean = np.mean(gains, axis=0)
        print(f"| {bench.data.name} | **mean gain** | | **{mean[0]:+.2f}** | **{mean[1]:+.2f}** |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
