"""``pff demo``: restore the sample images shipped with pff, one per task.

Each sample (a 160x160 crop of a training image, src/pff/samples/) is
degraded with its task's physics (motion blur; colour JPEG at quality 20;
bicubic x4 downsampling), restored with the shipped model, and saved as a
side-by-side picture (input | restored | expected-flow map | clean) in the
output folder; the PSNR of input and output against the clean sample is
printed.
"""
from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np

from pff.errors import PffError

# (task, what the input is); each task's default shipped model restores it.
DEMOS: tuple[tuple[str, str], ...] = (
    ("deblur", "motion blur"),
    ("jpeg", "JPEG q20"),
    ("sr", "bicubic x4"),
)
_SEED = 7


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="restore the shipped sample images and show the filter flow",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument("-o", "--out", default="pff-demo", metavar="DIR", help="output folder (default ./pff-demo)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.set_defaults(run=run)


def sample(task: str) -> np.ndarray:
    """The clean sample of ``task``: (160, 160, 3) uint8 RGB."""
    from pff.io import read_image

    with resources.as_file(resources.files("pff") / "samples" / f"{task}.png") as path:
        return read_image(path)


def degrade(task: str, clean: np.ndarray, scale: int = 4) -> np.ndarray:
    """The demo input: (H, W, 3) uint8; for sr the (H/scale, W/scale, 3) low-resolution image
    (default: the default sr model's scale)."""
    from pff.degrade import Jpeg, MotionBlur, imresize, to_uint8

    rng = np.random.default_rng(_SEED)
    if task == "deblur":
        return MotionBlur(length_range=(11, 15))(clean, rng).astype(np.uint8)
    if task == "jpeg":
        return Jpeg(quality=20, gray=False)(clean, rng).astype(np.uint8)
    return to_uint8(imresize(clean, 1.0 / scale))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _side_by_side(panels: list[np.ndarray], gap: int = 4) -> np.ndarray:
    h = max(p.shape[0] for p in panels)
    out = np.full((h, sum(p.shape[1] for p in panels) + gap * (len(panels) - 1), 3), 255, np.uint8)
    x = 0
    for panel in panels:
        out[: panel.shape[0], x : x + panel.shape[1]] = panel
        x += panel.shape[1] + gap
    return out


def run(args: argparse.Namespace) -> int:
    from pff.degrade import upsample
    from pff.flowviz import flow_to_rgb
    from pff.io import write_image
    from pff.models import default_model
    from pff.restore import Restorer, check_device

    check_device(args.device)
    out = Path(args.out)
    restorers = {}
    for task, _ in DEMOS:  # fail before any work if a model is missing
        try:
            name = default_model(task)
            restorers[task] = (name, Restorer.from_pretrained(name, task=task, device=args.device))
        except PffError as err:
            raise PffError(f"pff demo needs a shipped {task} model: {err}") from err
    print(f"{'task':<8}{'input':<13}{'model':<8}{'PSNR in':>9}{'PSNR out':>10}{'gain':>8}  picture")
    for task, what in DEMOS:
        name, restorer = restorers[task]
        clean = sample(task)
        degraded = degrade(task, clean)
        restored, flow = restorer.restore_with_flow(degraded)
        shown = upsample(degraded, restorer.card.scale) if task == "sr" else degraded
        before, after = _psnr(shown, clean), _psnr(restored, clean)
        picture = out / f"{task}.png"
        write_image(picture, _side_by_side([shown, restored, flow_to_rgb(flow), clean]))
        print(f"{task:<8}{what:<13}{name:<8}{before:>9.2f}{after:>10.2f}{after - before:>+8.2f}  {picture}")
    print("each picture: input | restored | expected flow (hue: direction, saturation: length) | clean")
    return 0
