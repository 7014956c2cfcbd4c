"""Super-resolution on held-out training images: the validation set for choosing SR models.

    python benchmarks/sr_val.py [--scales 2 3 4] [--models sr-x4 runs/sr-x4] [--data ../shared/data/train/...]

The images are the ones the training configs hold out (``split_train_val``
with ``data.val_count`` and ``seed``; never anything under data/test). Each is
scored exactly as ``pff eval --task sr --scale S`` scores Set5 (Y PSNR / SSIM,
S-pixel border; ``pff.evaluate``), through a temporary folder of links to the
held-out files. Rows: bicubic, then each model whose card is for that scale
(default: the shipped model of the scale); a model of another scale is skipped.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4])
    parser.add_argument("--models", nargs="+", default=None, help="shipped names or model folders (default: per scale)")
    parser.add_argument("--data", nargs="+", default=["../shared/data/train/91-image", "../shared/data/train/bsds500"])
    parser.add_argument("--val-count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from pff import data
    from pff.evaluate import evaluate, model_restorer, sr_benchmark
    from pff.models import default_model, read_card

    _, held_out = data.split_train_val(data.list_images(args.data), args.val_count, args.seed)
    print(f"{len(held_out)} held-out images: {', '.join(p.name for p in held_out)}")
    print("| scale | model | PSNR | SSIM | gain over bicubic |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(held_out):  # links, so that equal names in two roots cannot collide
            (Path(tmp) / f"{i}_{path.name}").symlink_to(path.resolve())
        for scale in args.scales:
            bench = sr_benchmark(tmp, scale)
            bicubic = evaluate(bench, progress=False)
            print(f"| x{scale} | bicubic | {bicubic.psnr:.3f} | {bicubic.ssim:.4f} | |", flush=True)
            names = args.models or [default_model("sr", scale=scale)]
            for name in names:
                if read_card(name).scale != scale:
                    continue
                result = evaluate(bench, model_restorer(name, "sr", scale=scale), model=name, progress=False)
                gain = result.psnr - bicubic.psnr
                print(f"| x{scale} | {name} | {result.psnr:.3f} | {result.ssim:.4f} | {gain:+.3f} |", flush=True)


if __name__ == "__main__":
    main()
