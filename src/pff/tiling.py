"""Tiled inference: a measured receptive field, and a model run over overlapping tiles.

Large images are cut into overlapping tiles whose offsets are multiples of
the network's total stride (so pooling grids line up with the whole image's)
and of the 8-pixel JPEG grid; every tile reads a halo of at least the
network's receptive field plus the filter radius around the part it
contributes, and neighbouring tiles are feather-blended across a thin band.
The result equals whole-image inference up to float rounding, for any tile
size, with memory bounded by the tile size. A model whose output is
``upscale`` times its input (an LR-input SR model) is tiled in input space;
its output spans are the input spans times ``upscale``.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pff.errors import PffError

# Width of the band over which neighbouring tiles are blended.
FEATHER = 8


def network_stride(model: nn.Module) -> int:
    """Total downsampling of the model's predictor (1 if it has none)."""
    return int(getattr(getattr(model, "predictor", model), "stride", 1))


def model_upscale(model: nn.Module) -> int:
    """How many times larger the model's output is than its input: ``model.upscale``, 1 when absent."""
    return int(getattr(model, "upscale", 1))


def filter_radius(model: nn.Module) -> int:
    """Input pixels the filter op reaches beyond the predictor: ``dilation * (K // 2)`` output
    pixels, divided by the upscale (rounded up); 0 for a model without filters."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "kind", "direct") == "direct":
        return 0
    return math.ceil(config.dilation * (config.kernel // 2) / model_upscale(model))


class _ReachConv(nn.Module):
    """Stands in for a convolution in the reach probe: the channel mean, then a positive box filter.

    The probe only asks *where* an input pixel can change the output, and a
    convolution carries a change from any input channel to every output
    channel, so one channel of positive averages has the same reach at a
    fraction of the cost.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        x = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
        padding: Any = conv.padding
        if conv.padding_mode != "zeros":
            x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
            padding = 0
        kh, kw = conv.kernel_size
        weight = x.new_full((1, 1, kh, kw), 1.0 / (kh * kw))
        return F.conv2d(x, weight, stride=conv.stride, padding=padding, dilation=conv.dilation)


def _probe_copy(model: nn.Module) -> nn.Module:
    """A one-channel stand-in of the predictor in which every path passes positive values on.

    Convolutions become positive averages (``_ReachConv``) and batch norms the
    identity, so with a non-negative input every ReLU and max-pool passes a
    change on: an output is non-zero exactly where the input reaches it.
    An image-wide context (``TwoStreamPredictor.context``) is left out: it
    reads all of whatever it is given, so the reach measured is the local one
    a tile's halo must cover, and each tile's context is its own.
    """
    net = copy.deepcopy(getattr(model, "predictor", model)).double().cpu().eval()
    if getattr(net, "context", None) is not None:
        net.context = None
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.Conv2d) or isinstance(module, nn.modules.batchnorm._BatchNorm):
            parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
            replacement = _ReachConv(module) if isinstance(module, nn.Conv2d) else nn.Identity()
            parent._modules[name.rpartition(".")[2]] = replacement
    return net


# Receptive fields measured so far, by architecture (the reach depends only on the shapes).
_RF_CACHE: dict[tuple[Any, int], int] = {}


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def predictor_receptive_field(model: nn.Module, *, max_size: int = 2048) -> int:
    """Measured radius (input pixels) of the predictor's receptive field.

    For every phase of the network stride, one pixel is set to 1 in a zero
    image and the furthest output that changes is found (see
    ``_probe_copy``); the image grows until the reach stays clear of its
    border. An output further than this from every changed input pixel does
    not change at all. An output ``s`` times larger than the input is read
    in input pixels (output row ``o`` lies in input row ``o // s``).
    """
    channels = int(getattr(model, "in_channels", 3))
    config = getattr(model, "config", None)
    # A frozen ModelConfig fixes the reach; anything else (a stand-in) is cached per object.
    key = (config if isinstance(config, Hashable) and config is not None else id(model), channels)
    if key in _RF_CACHE:
        return _RF_CACHE[key]
    net = _probe_copy(model)
    stride = network_stride(model)
    size = 128
    while size <= max_size:
        centre = size // 2 // stride * stride
        reach = 0
        for p in range(stride):
            x = torch.zeros(1, channels, size, size)
            x[0, :, centre + p, centre + p] = 1.0
            with torch.inference_mode():
                out = _first(net(x))[0]  # (C', s*size, s*size)
            up = out.shape[-1] // size
            hit = out.abs().sum(0) > 0
            rows = torch.nonzero(hit.any(1)).flatten() // up
            cols = torch.nonzero(hit.any(0)).flatten() // up
            c = centre + p
            reach = max(reach, c - int(rows[0]), int(rows[-1]) - c, c - int(cols[0]), int(cols[-1]) - c)
        if reach < centre - stride:
            _RF_CACHE[key] = reach
            return reach
        size *= 2
    raise PffError(f"the model's receptive field is wider than {max_size // 2} pixels; use --tile 0")


def receptive_field(model: nn.Module) -> int:
    """Radius (input pixels) of the whole model's receptive field: predictor plus filter radius."""
    return predictor_receptive_field(model) + filter_radius(model)


@dataclass(frozen=True)
class Span:
    """One tile along one axis: it reads ``[read_lo, read_hi)`` and contributes ``weights`` to ``[lo, hi)``."""

    read_lo: int
    read_hi: int
    lo: int
    hi: int
    weights: np.ndarray  # (hi - lo,) float32 in (0, 1]


def ceil_to(n: int, step: int) -> int:
    """The smallest multiple of ``step`` that is >= ``n``."""
    return -(-n // step) * step


def axis_spans(length: int, tile: int, halo: int, align: int, feather: int = FEATHER) -> list[Span]:
    """Split ``[0, length)`` into tiles of ``tile`` pixels (a multiple of ``align``).

    Neighbouring tiles overlap by ``2 * feather`` pixels, where their weights
    ramp linearly and sum to 1; every tile reads ``halo`` more pixels on each
    side (clipped at the image border), starting at a multiple of ``align``.
    """
    if tile % align or tile < align:
        raise ValueError(f"tile must be a positive multiple of {align}, got {tile}")
    feather = min(feather, tile // 2)
    spans = []
    for start in range(0, length, tile):
        end = min(start + tile, length)
        lo = max(0, start - feather)
        hi = min(length, end + feather)
        read_lo = max(0, (lo - halo) // align * align)
        read_hi = min(length, read_lo + ceil_to(hi + halo - read_lo, align))
        centres = np.arange(lo, hi) + 0.5
        weights = np.ones(hi - lo)
        if feather and start > 0:
            weights = np.minimum(weights, (centres - (start - feather)) / (2 * feather))
        if feather and end < length:
            weights = np.minimum(weights, (end + feather - centres) / (2 * feather))
        spans.append(Span(read_lo, read_hi, lo, hi, weights.astype(np.float32)))
    return spans


def _normalised(spans: list[Span], length: int, upscale: int) -> list[np.ndarray]:
    """Each span's weights divided by their sum over all spans, repeated ``upscale`` times: (s*(hi - lo),).

    The ramps sum to 1 up to float rounding; dividing by the actual sum makes
    every output pixel a convex blend, so tiles can be added straight into
    the output (no second pass to normalise)."""
    total = np.zeros(length, dtype=np.float32)
    for span in spans:
        total[span.lo : span.hi] += span.weights
    return [np.repeat(span.weights / total[span.lo : span.hi], upscale) for span in spans]


Outputs = Sequence[torch.Tensor | None]
# Receives finished output rows: ``sink(first_row, band)``, band (C_i, n, s*W) float32.
Sink = Callable[[int, np.ndarray], Any]


@dataclass(frozen=True)
class Rows:
    """A (1, C, H, W) input made band by band: ``read(lo, hi)`` -> (1, C, hi - lo, W) float32.

    Lets a caller convert a large image to model input (colour, scaling) only
    for the rows one band of tiles reads."""

    shape: tuple[int, ...]
    read: Callable[[int, int], torch.Tensor]

    @classmethod
    def of(cls, x: torch.Tensor) -> Rows:
        """The rows of a whole (1, C, H, W) tensor."""
        return cls(tuple(x.shape), lambda lo, hi: x[..., lo:hi, :])


def _band(dest: np.ndarray | Sink, old: np.ndarray | None, span: Span, old_lo: int, s: int) -> np.ndarray:
    """Where the tiles of the row ``span`` add their output: (C_i, s*(hi-lo), s*W).

    An array destination is added into in place (its rows of the span). For
    a sink, a new zeroed band: the rows it shares with the previous band
    ``old`` (which began at row ``old_lo``) are carried over, in the order
    they were summed; the others are finished and go to the sink."""
    if isinstance(dest, np.ndarray):
        return dest[:, s * span.lo : s * span.hi]
    assert old is not None
    band = np.zeros((old.shape[0], s * (span.hi - span.lo), old.shape[2]), np.float32)
    done = s * (span.lo - old_lo)
    if done:
        dest(s * old_lo, old[:, :done])
    band[:, : old.shape[1] - done] = old[:, done:]
    return band


def tiled(
    fn: Callable[[torch.Tensor], Outputs],
    x: torch.Tensor | Rows,
    *,
    tile: int | None,
    halo: int,
    align: int,
    upscale: int = 1,
    out: Sequence[np.ndarray | Sink | None] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> list[np.ndarray | None]:
    """``fn`` over overlapping tiles of ``x``, feather-blended, one result per output of ``fn``.

    fn: ``(1, C, h, w) -> [(1, C_i, s*h, s*w) float or None, ...]`` (``s`` = ``upscale``).
    x: ``(1, C, H, W)`` on the CPU, or :class:`Rows` that make it one band of
    tile rows at a time (tiles move to the model's device inside ``fn``).
    tile: tile size in input pixels (a multiple of ``align``), or None for one tile.
    out: optional, one per output of ``fn``: a zero-filled ``(C_i, s*H, s*W)``
    float32 array (e.g. a ``numpy.memmap`` on disk) that the tiles are added
    into, or a sink ``sink(lo, band)`` that receives the finished output rows
    ``[lo, lo + n)`` as a (C_i, n, s*W) float32 band, in order, each row once.
    Outputs with neither are allocated. One band of tile rows is held at a
    time: its input rows, and the output rows of the sinks it adds to.
    Returns the ``(C_i, s*H, s*W)`` arrays (None where ``fn`` gave None or
    the output went to a sink). ``progress(n)`` is called after every tile.
    """
    source = x if isinstance(x, Rows) else Rows.of(x)
    h, w = source.shape[-2:]
    tile = tile or ceil_to(max(h, w), align)
    rows, cols = axis_spans(h, tile, halo, align), axis_spans(w, tile, halo, align)
    row_weights, col_weights = _normalised(rows, h, upscale), _normalised(cols, w, upscale)
    s = upscale
    dests: list[np.ndarray | Sink | None] = []
    bands: list[np.ndarray | None] = []  # per output, where the current row of tiles adds
    for r, rw in zip(rows, row_weights):
        band_in = source.read(r.read_lo, r.read_hi)  # (1, C, read_hi - read_lo, W)
        for c, cw in zip(cols, col_weights):
            pieces = fn(band_in[..., c.read_lo : c.read_hi])
            if not dests:  # the first tile: every output's destination, and its first band
                given = out if out is not None else [None] * len(pieces)
                dests = [None if p is None else d if d is not None else np.zeros((p.shape[1], s * h, s * w), np.float32)
                         for p, d in zip(pieces, given)]  # fmt: skip
                bands = [d if d is None or isinstance(d, np.ndarray) else np.zeros((p.shape[1], 0, s * w), np.float32)
                         for p, d in zip(pieces, dests)]  # fmt: skip
                previous_lo = r.lo
            if c is cols[0]:
                bands = [None if d is None else _band(d, b, r, previous_lo, s) for d, b in zip(dests, bands)]
            weight = np.outer(rw, cw)  # (s*(hi-lo), s*(hi-lo)) of this tile
            for piece, band in zip(pieces, bands):
                if piece is None or band is None:
                    continue
                crop = piece[0, :, s * (r.lo - r.read_lo) : s * (r.hi - r.read_lo),
                             s * (c.lo - c.read_lo) : s * (c.hi - c.read_lo)]  # fmt: skip
                crop = crop.float().cpu().numpy()  # (C_i, s*(hi-lo), s*(hi-lo))
                if crop.shape[1:] != weight.shape:
                    raise PffError(
                        f"the model's output is not {s}x its input: a {r.read_hi - r.read_lo}x"
                        f"{c.read_hi - c.read_lo} tile gave {tuple(piece.shape[-2:])}"
                    )
                band[:, :, s * c.lo : s * c.hi] += crop * weight
            if progress:
                progress(1)
        previous_lo = r.lo
    for dest, band in zip(dests, bands):
        if callable(dest) and band is not None:
            dest(s * previous_lo, band)
    return [d if isinstance(d, np.ndarray) else None for d in dests]
