"""The README's camera-shake picture: a held-out training photo blurred by a curved shake path, and what
``pff restore --task deblur`` makes of it, with the expected-flow map of its filters.

    python docs/deblur_figure.py [--image ../shared/data/train/bsds500/309040.jpg] [--model deblur-shake]
        [--seed 2] [--noise 2.55] [-o docs/deblur-shake.png]

The photo is one of the 8 training images held out for validation (never
trained on). The blur is one seeded ``pff.degrade.shake`` kernel (a curved,
jerky path of 25 px arc length), then Gaussian noise of ``--noise`` (255
units) and 8-bit rounding, as a camera would store it. The restoration and the
flow map come from ``pff restore --flow``; the kernel is shown enlarged in the
corner of the blurry panel.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="../shared/data/train/bsds500/309040.jpg")
    parser.add_argument("--model", default="deblur-shake")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--length", type=float, default=25.0, help="arc length of the shake path (pixels)")
    parser.add_argument("--noise", type=float, default=2.55, help="Gaussian noise sigma (255 units)")
    parser.add_argument("--box", type=int, nargs=4, default=(40, 40, 200, 200), metavar=("TOP", "LEFT", "BOTTOM", "RIGHT"))
    parser.add_argument("-o", "--out", default="docs/deblur-shake.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pff.degrade import add_gaussian_noise, blur, quantize
    from pff.degrade.shake import rasterise_path, shake_path
    from pff.io import read_image, write_image
    from pff.metrics import psnr

    clean = read_image(args.image)
    rng = np.random.default_rng(args.seed)
    kernel = rasterise_path(shake_path(rng, args.length))
    blurry = quantize(add_gaussian_noise(blur(clean.astype(np.float64), kernel), args.noise, rng)).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        source, restored, flow = (Path(tmp) / name for name in ("blurry.png", "restored.png", "flow.png"))
        write_image(source, blurry)
        command = [sys.executable, "-m", "pff", "restore", str(source), "--task", "deblur", "--model", args.model,
                   "-o", str(restored), "--flow", str(flow)]  # fmt: skip
        subprocess.run(command, check=True)
        result, flow_map = read_image(restored), read_image(flow)
    t, l, b, r = args.box
    panels = [
        ("blurred (curved shake + noise)", blurry),
        (f"pff restore --model {args.model}", result),
        ("expected flow of its filters", flow_map),
        ("original", clean),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(12.8, 3.9), dpi=100)
    for ax, (title, image) in zip(axes, panels):
        score = f"\n{psnr(image, clean):.2f} dB (whole photo)" if image is blurry or image is result else ""
        ax.imshow(image[t:b, l:r], interpolation="nearest")
        ax.set_title(title + score, fontsize=9)
        ax.axis("off")
    inset = axes[0].inset_axes([0.0, 0.0, 0.3, 0.3])
    inset.imshow(kernel, cmap="gray", interpolation="nearest")
    inset.set_xticks([])
    inset.set_yticks([])
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
