"""JPEG artifact reduction on held-out training images, under conditions the benchmarks lack.

    python benchmarks/jpeg_val.py [--models jpeg jpeg-y] [--data ../shared/data/train] [--val-count 8] [--seed 0]

The images are the ones the training configs hold out (``split_train_val``
with ``data.val_count`` and ``seed``; never anything under data/test). Each
is coded in colour by Pillow under every condition below and restored by
each model through ``pff.Restorer`` (the path ``pff restore`` takes); the
table prints the RGB PSNR (one MSE over the three channels, all images
pooled per condition) of the input and of each model. Conditions: qualities
5-90 with 4:2:0 (Pillow's default), 4:4:4, and double compression (q30 then
q20, 4:2:0). A gray row codes the luma as a grayscale JPEG at q20 and
scores the luma (the LIVE1 luma protocol's setting).
"""
from __future__ import annotations

import argparse

import numpy as np

CONDITIONS = [(f"q{q} 4:2:0", [(q, "4:2:0")]) for q in (5, 10, 20, 40, 60, 90)] + [
    ("q10 4:4:4", [(10, "4:4:4")]),
    ("q30 4:4:4", [(30, "4:4:4")]),
    ("q30 then q20", [(30, "4:2:0"), (20, "4:2:0")]),
]


def _psnr(mse: float) -> float:
    return float(10 * np.log10(255.0**2 / mse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["jpeg"])
    parser.add_argument("--data", nargs="+", default=["../shared/data/train/91-image", "../shared/data/train/bsds500"])
    parser.add_argument("--val-count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from pff import data
    from pff.color import rgb_to_y, to_uint8
    from pff.degrade import jpeg_roundtrip
    from pff.io import read_image
    from pff.restore import Restorer

    _, held_out = data.split_train_val(data.list_images(args.data), args.val_count, args.seed)
    images = [read_image(p) for p in held_out]
    restorers = {name: Restorer.from_pretrained(name) for name in args.models}
    rows = CONDITIONS + [("gray q20 (luma)", None)]
    print(f"{len(images)} held-out images: {', '.join(p.name for p in held_out)}")
    print("| condition | input | " + " | ".join(args.models) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in args.models) + " |")
    for label, steps in rows:
        errors = {name: [] for name in ["input", *args.models]}
        for clean in images:
            if steps is None:  # luma plane, grayscale JPEG, scored on luma
                clean = rgb_to_y(clean)
                degraded = jpeg_roundtrip(clean, 20)
            else:
                degraded = clean
                for quality, subsampling in steps:
                    degraded = jpeg_roundtrip(degraded, quality, subsampling=subsampling)
            outputs = {"input": degraded}
            for name, restorer in restorers.items():
                outputs[name] = restorer.restore_protocol(degraded) if steps is None else restorer.restore(degraded)
            for name, out in outputs.items():
                diff = to_uint8(out).astype(np.float64) - clean  # rounded as pff.metrics scores
                errors[name].append((np.sum(diff**2), diff.size))
        scores = {name: _psnr(sum(s for s, _ in v) / sum(n for _, n in v)) for name, v in errors.items()}
        gains = " | ".join(f"{scores[n]:.2f} ({scores[n] - scores['input']:+.2f})" for n in args.models)
        print(f"| {label} | {scores['input']:.2f} | {gains} |", flush=True)


if __name__ == "__main__":
    main()
