"""Export a trained model to ONNX or TorchScript, checked against PyTorch.

The exported graph maps ``image (1, C, H, W)`` float32 in [0, 1] (C = 3 for
rgb models, 1 for y models), any H, W >= 1, to ``restored (1, C, H, W)``
clamped to [0, 1]: the model pass of :class:`pff.restore.Restorer` on the
whole image (batch norms folded the same way). Sizes that are not multiples
of the network stride are padded inside the graph as the model pads them in
PyTorch (the predictor's replicate pad, computed from the input's shape), so
the graph gives the same output at every size; :func:`export_model` checks
that at a multiple of the stride and at an odd size before writing. The
strength blend, the colour handling and tiling stay outside the graph.
"""
from __future__ import annotations

import io
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pff.errors import PffError
from pff.io import write_atomic
from pff.models.blocks import inference_copy

FORMATS = ("onnx", "torchscript")
# Checked before writing: a multiple of the shipped models' stride (8) and an odd size.
CHECK_SIZES = ((72, 104), (61, 75))


def _filter_flow_unrolled(image: torch.Tensor, phases: torch.Tensor, k: int, padding: str, dilation: int = 1) -> torch.Tensor:
    """The filter op as K*K slices of the padded image: the same numbers, plain graph ops.

    ``phases`` (1, K*K, s*s, h, w): one filter per output pixel in the layout of
    :func:`pff.ops.filter_flow_up`, applied in low resolution and interleaved at the end
    (``pixel_shuffle``, no upsampled image); s = 1 is :func:`pff.ops.filter_flow` (with ``dilation``).
    """
    r = dilation * (k // 2)
    b, c, h, w = image.shape
    s = math.isqrt(phases.shape[2])
    mode = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate"}[padding]
    padded = F.pad(image, (r, r, r, r), mode=mode)[:, :, None]  # (1, C, 1, h + 2r, w + 2r)
    out = torch.zeros(b, c, s * s, h, w, dtype=image.dtype, device=image.device)
    for i in range(k):
        for j in range(k):
            window = padded[..., i * dilation : i * dilation + h, j * dilation : j * dilation + w]
            out = out + phases[:, None, i * k + j] * window  # (1, C, s*s, h, w)
    out = out.flatten(1, 2)  # (1, C*s*s, h, w)
    return out if s == 1 else F.pixel_shuffle(out, s)  # (1, C, s*h, s*w)


class ExportWrapper(nn.Module):
    """``image (1, C, H, W) -> restored (1, C, s*H, s*W)`` in [0, 1], any H, W >= 1 (s: the model's upscale, 1 but for SR in low resolution).

    The model's own forward, except that a filter op that is not the linear
    low-rank path is unrolled into plain slices (``_filter_flow_unrolled``;
    an upscaling model's in low resolution).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        config = model.config
        self.unrolled = config.kind == "pff" and not (config.head == "basis" and config.constraint != "softmax")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.unrolled:
            config, s = self.model.config, self.model.upscale
            out = self.model.predict(image)
            # (1, K*K, s*s, H, W): an upscaling model's phase filters, else one filter per pixel
            phases = self.model._phase_filters(out) if s > 1 else self.model.filters_from(out)[:, :, None]
            restored = _filter_flow_unrolled(image, phases, config.kernel, config.padding, config.dilation)
        else:
            restored = self.model(image, return_filters=False)[0]
        return restored.clamp(0.0, 1.0)


def _onnx_bytes(wrapper: ExportWrapper, example: torch.Tensor) -> bytes:
    # H and W are free: the predictor pads to its stride with sizes computed
    # from the input's shape, which torch.export keeps symbolic.
    dims = {2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # e.g. "torchvision is not installed" on every export
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper, (example,), input_names=["image"], output_names=["restored"],
                dynamic_shapes={"image": dims}, dynamo=True, verbose=False,
            )  # fmt: skip
    finally:
        onnx_log.setLevel(level)
    buffer = io.BytesIO()
    program.save(buffer)
    return buffer.getvalue()


def _torchscript_bytes(wrapper: ExportWrapper, example: torch.Tensor) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    return buffer.getvalue()


def run_exported(data: bytes, fmt: Literal["onnx", "torchscript"], image: np.ndarray) -> np.ndarray:
    """Run exported bytes on ``image`` (1, C, H, W) float32: onnxruntime for ONNX, torch.jit for TorchScript."""
    if fmt == "onnx":
        try:
            import onnxruntime
        except ModuleNotFoundError as err:
            raise PffError("checking an ONNX export needs onnxruntime: pip install 'pff[export]'") from err
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        return session.run(None, {"image": image})[0]
    module = torch.jit.load(io.BytesIO(data))
    with torch.inference_mode():
        return module(torch.from_numpy(image)).numpy()


def export_model(
    model: nn.Module,
    out: str | os.PathLike[str],
    fmt: Literal["onnx", "torchscript"],
    *,
    check_sizes: tuple[tuple[int, int], ...] = CHECK_SIZES,
    seed: int = 0,
) -> float:
    """Export ``model`` to ``out`` and return the max |difference| to PyTorch on random images.

    The graph is traced on an image of neither check size; the exported
    file then runs on a seeded random image of every ``check_sizes`` (H, W)
    (by default a multiple of the stride and an odd size), and is written
    (atomically) only when every difference is <= 1e-4.
    """
    if fmt not in FORMATS:
        raise PffError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    model = inference_copy(model.float().cpu().eval())  # what the Restorer runs
    wrapper = ExportWrapper(model).eval()
    stride = int(getattr(model.predictor, "stride", 1))
    channels = model.in_channels
    example = torch.rand(1, channels, 4 * stride, 6 * stride, generator=torch.Generator().manual_seed(seed))
    try:
        data = _onnx_bytes(wrapper, example) if fmt == "onnx" else _torchscript_bytes(wrapper, example)
    except ModuleNotFoundError as err:
        raise PffError(f"exporting to ONNX needs the onnx and onnxscript packages: pip install 'pff[export]' ({err.name} missing)") from err
    except Exception as err:  # the tracers raise their own types; a model they cannot follow is one line
        raise PffError(f"cannot export this model to {fmt}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
    difference = 0.0
    for i, (h, w) in enumerate(check_sizes):
        check = torch.rand(1, channels, h, w, generator=torch.Generator().manual_seed(seed + 1 + i))
        with torch.inference_mode():
            expected = wrapper(check).numpy()
        try:
            got = run_exported(data, fmt, check.numpy())
        except PffError:
            raise
        except Exception as err:  # onnxruntime and torch.jit raise their own types
            raise PffError(f"the {fmt} export fails on a {h}x{w} image ({err}); nothing written") from err
        if got.shape != expected.shape:
            raise PffError(f"the {fmt} export returns shape {got.shape} for a {h}x{w} image, expected {expected.shape}; nothing written")
        difference = max(difference, float(np.abs(got - expected).max()))
        if not difference <= 1e-4:
            raise PffError(f"the {fmt} export differs from PyTorch by {difference:.2e} (> 1e-4) on a {h}x{w} image; nothing written")
    try:
        write_atomic(Path(out), lambda handle: handle.write(data))
    except OSError as err:
        raise PffError(f"cannot write '{out}': {err.strerror or err}") from err
    return difference
