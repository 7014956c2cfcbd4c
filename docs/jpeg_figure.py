"""The README's colour JPEG picture: a crop of a held-out training photo, its
JPEG (Pillow, 4:2:0) and what ``pff restore --task jpeg`` makes of it.

    python docs/jpeg_figure.py [--image ../shared/data/train/bsds500/309040.jpg] [--quality 10] [-o docs/jpeg-color.png]

The photo is one of the 8 training images held out for validation (never
trained on); the JPEG is of the whole photo, as a camera or website makes it.
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
    parser.add_argument("--quality", type=int, default=10)
    parser.add_argument("--box", type=int, nargs=4, default=(170, 300, 266, 396), metavar=("TOP", "LEFT", "BOTTOM", "RIGHT"))
    parser.add_argument("-o", "--out", default="docs/jpeg-color.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pff.degrade import jpeg_roundtrip
    from pff.io import read_image, write_image
    from pff.metrics import psnr

    clean = read_image(args.image)
    with tempfile.TemporaryDirectory() as tmp:
        jpeg = Path(tmp) / "photo.png"  # the decoded JPEG, stored losslessly
        write_image(jpeg, jpeg_roundtrip(clean, args.quality))
        restored = Path(tmp) / "restored.png"
        subprocess.run([sys.executable, "-m", "pff", "restore", str(jpeg), "--task", "jpeg", "-o", str(restored)], check=True)
        degraded, result = read_image(jpeg), read_image(restored)
    t, l, b, r = args.box
    panels = [("original", clean), (f"JPEG q{args.quality} (4:2:0)", degraded), ("pff restore --task jpeg", result)]
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.9), dpi=100)
    for ax, (title, image) in zip(axes, panels):
        crop = image[t:b, l:r]
        score = "" if image is clean else f"\n{psnr(image, clean):.2f} dB (whole photo, RGB)"
        ax.imshow(np.repeat(np.repeat(crop, 3, axis=0), 3, axis=1), interpolation="nearest")
        ax.set_title(title + score, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
