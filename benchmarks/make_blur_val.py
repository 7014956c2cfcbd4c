"""Make the deblurring validation sets of real-looking camera shake from held-out training images.

    python benchmarks/make_blur_val.py OUT_DIR [--data ../shared/data/train] [--val-count 8] [--seed 0]
        [--score MODEL ...]

Holds out the same training images as the training configs (``split_train_val``
with ``data.val_count`` and ``seed``; never anything under data/test) and
writes, for each of four conditions, a folder in the layout of the public
blur sets (``NAME_GT.png`` / ``NAME_blurry.png``), so that
``pff eval --task deblur --protocol standard --data OUT_DIR/CONDITION`` scores it:

- ``shake``: one curved camera-shake kernel per image (``pff.degrade.shake``),
  arc length 10-35 px, no noise;
- ``shake-noise``: the same kernels plus Gaussian noise of sigma 2.55 (255 units);
- ``varying``: spatially varying shake (3 kernels blended by smooth masks);
- ``varying-noise``: the same plus noise of sigma 2.55;
- ``line-blend``: spatially varying straight motion (3 of the authors' centred
  lines, 3-23 px at random angles, blended by smooth masks), no noise.

With ``--score``, each model (shipped name or model folder) is then scored on
every condition as ``pff eval --protocol standard`` scores it, in one table
of PSNR and gain over the blurry input.

Every choice comes from ``np.random.default_rng([seed, image index, condition])``:
the sets are the same on every machine. Images are centre-cropped to at most
320x320 to keep validation fast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pff import data, io
from pff.degrade import add_gaussian_noise, blur, nonuniform_blur, quantize, random_masks, random_motion_kernel
from pff.degrade.shake import pad_kernels, shake_kernel
from pff.errors import PffError

CONDITIONS = ("shake", "shake-noise", "varying", "varying-noise", "line-blend")  # append only: seeds follow the order
NOISE_SIGMA = 2.55
CROP = 320


def degrade(clean: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 -> blurred (H, W, 3) uint8 for one condition."""
    if condition == "line-blend":
        stack = np.stack([random_motion_kernel(rng, size=25, length_range=(3, 23)) for _ in range(3)])  # (3, 25, 25)
        blurred = nonuniform_blur(clean.astype(np.float64), stack, random_masks(rng, clean.shape[:2], 3, scale=96.0))
    elif condition.startswith("varying"):
        stack = pad_kernels([shake_kernel(rng, (10.0, 35.0)) for _ in range(3)])  # (3, S, S)
        blurred = nonuniform_blur(clean.astype(np.float64), stack, random_masks(rng, clean.shape[:2], 3, scale=96.0))
    else:
        blurred = blur(clean.astype(np.float64), shake_kernel(rng, (10.0, 35.0)))
    if condition.endswith("noise"):
        blurred = add_gaussian_noise(blurred, NOISE_SIGMA, rng)
    return quantize(blurred).astype(np.uint8)


def score(root: Path, models: list[str]) -> None:
    """Print PSNR (standard protocol) and the gain over the input of each model on each condition."""
    from pff.evaluate import deblur_benchmark, evaluate, model_restorer

    restorers = [(name, model_restorer(name, "deblur", protocol="standard")) for name in models]
    print("| condition | input | " + " | ".join(models) + " |")
    print("| --- | --- |" + " --- |" * len(models))
    for condition in CONDITIONS:
        bench = deblur_benchmark(root / condition)
        base = evaluate(bench, protocol="standard", progress=False).psnr
        cells = []
        for name, restore in restorers:
            psnr = evaluate(bench, restore, protocol="standard", model=name, progress=False).psnr
            cells.append(f"{psnr:.2f} ({psnr - base:+.2f})")
        print(f"| {condition} | {base:.2f} | " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    parser.add_argument("--val-count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score", nargs="+", default=[], metavar="MODEL", help="models to score on the sets")
    args = parser.parse_args(argv)
    try:
        paths = data.list_images([args.data / "91-image", args.data / "bsds500"])
        _, held_out = data.split_train_val(paths, args.val_count, args.seed)
        for c, condition in enumerate(CONDITIONS):
            folder = args.out / condition
            folder.mkdir(parents=True, exist_ok=True)
            for i, path in enumerate(held_out):
                clean = io.read_image(path)
                h, w = clean.shape[:2]
                top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
                clean = np.ascontiguousarray(clean[top : top + CROP, left : left + CROP])
                blurry = degrade(clean, condition, np.random.default_rng([args.seed, i, c]))
                io.write_picture(folder / f"{path.stem}_GT.png", clean)
                io.write_picture(folder / f"{path.stem}_blurry.png", blurry)
            print(f"{folder}: {len(held_out)} pairs")
        if args.score:
            score(args.out, args.score)
    except PffError as err:
        print(f"make_blur_val: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
