"""``pff export``: write a model as ONNX or TorchScript, checked against PyTorch."""
from __future__ import annotations

import argparse

from pff.errors import PffError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX or TorchScript",
        description=(
            "Export a model: input 'image' (1, C, H, W) float32 in [0, 1], any H and W, output "
            "'restored' of the same shape, as pff restore's model pass on the whole image. The file is "
            "checked against PyTorch on random images of 72x104 and 61x75 (max difference <= 1e-4) "
            "before it is written. ONNX needs pip install 'pff[export]'."
        ),
    )
    parser.add_argument("out", metavar="OUT", help="output file (e.g. jpeg.onnx, jpeg.pt)")
    parser.add_argument("--model", required=True, metavar="NAME|PATH", help="shipped model name or model folder")
    parser.add_argument("--format", required=True, choices=("onnx", "torchscript"), help="file format")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pff import models
    from pff.export import export_model

    try:
        model, card = models.load(args.model)
    except PffError as err:
        raise PffError(f"cannot load model '{args.model}': {err}") from err
    difference = export_model(model, args.out, args.format)
    channels = card.in_channels
    print(f"wrote {args.out} ({args.format}, {card.task}, input (1, {channels}, H, W)); max |difference| to PyTorch {difference:.1e}")
    return 0
