"""Whole-image and tiled inference, and the :class:`Restorer` API.

``Restorer.from_pretrained("jpeg").restore(image)`` restores a numpy array or
PIL image. Large images are cut into overlapping tiles whose offsets are
multiples of the network's total stride (so pooling grids line up with the
whole image's) and of the 8-pixel JPEG grid; every tile reads a halo of at
least the network's receptive field plus the filter radius around the part it
contributes, and neighbouring tiles are feather-blended across a thin band.
The result equals whole-image inference up to float rounding, for any tile
size, with memory bounded by the tile size.

Strength ``S`` blends every predicted filter with the identity filter.
Because the filter-flow operator is linear in the filters,
``filter_flow(x, S*w + (1-S)*delta) = x + S*(filter_flow(x, w) - x)`` for every
filter constraint (softmax, normalized, none) and head, so the blend is done
on the output; :meth:`Restorer.filters` returns the blended filters. For the
direct CNN (``kind="direct"``, no filters) the same formula blends its output
with its input.
"""
from __future__ import annotations

import copy
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pff.color import gray_to_y, rgb_to_ycbcr, y_to_gray, ycbcr_to_rgb
from pff.errors import PffError
from pff.models.blocks import fold_batchnorm

if TYPE_CHECKING:
    from pff.models import ModelCard

# Images up to this many pixels run whole when no tile size is given; larger
# ones are tiled with AUTO_TILE (pff-small at 1 MP peaks near 1 GB of RSS).
AUTO_WHOLE_PIXELS = 1_500_000
AUTO_TILE = 768
# Width of the band over which neighbouring tiles are blended.
FEATHER = 8
# Tile offsets are multiples of this, besides the network stride: the JPEG block grid.
JPEG_GRID = 8

# ----------------------------------------------------------------------------
# Receptive field and tiles
# ----------------------------------------------------------------------------


def network_stride(model: nn.Module) -> int:
    """Total downsampling of the model's predictor (1 if it has none)."""
    return int(getattr(getattr(model, "predictor", model), "stride", 1))


def filter_radius(model: nn.Module) -> int:
    """Pixels the filter op reaches beyond the predictor: ``dilation * (K // 2)``; 0 for the direct CNN."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "kind", "pff") != "pff":
        return 0
    return config.dilation * (config.kernel // 2)


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
    """
    net = copy.deepcopy(getattr(model, "predictor", model)).double().cpu().eval()
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.Conv2d) or isinstance(module, nn.modules.batchnorm._BatchNorm):
            parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
            replacement = _ReachConv(module) if isinstance(module, nn.Conv2d) else nn.Identity()
            parent._modules[name.rpartition(".")[2]] = replacement
    return net


# Receptive fields measured so far, by architecture (the reach depends only on the shapes).
_RF_CACHE: dict[tuple[Any, int], int] = {}


def predictor_receptive_field(model: nn.Module, *, max_size: int = 2048) -> int:
    """Measured radius (pixels) of the predictor's receptive field.

    For every phase of the network stride, one pixel is set to 1 in a zero
    image and the furthest output that changes is found (see
    ``_probe_copy``); the image grows until the reach stays clear of its
    border. An output further than this from every changed input pixel does
    not change at all.
    """
    channels = int(getattr(model, "in_channels", 3))
    key = (getattr(model, "config", None) or id(model), channels)
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
                hit = net(x)[0].abs().sum(0) > 0  # (size, size)
            rows = torch.nonzero(hit.any(1)).flatten()
            cols = torch.nonzero(hit.any(0)).flatten()
            c = centre + p
            reach = max(reach, c - int(rows[0]), int(rows[-1]) - c, c - int(cols[0]), int(cols[-1]) - c)
        if reach < centre - stride:
            _RF_CACHE[key] = reach
            return reach
        size *= 2
    raise PffError(f"the model's receptive field is wider than {max_size // 2} pixels; use --tile 0")


def receptive_field(model: nn.Module) -> int:
    """Radius of the whole model's receptive field: predictor plus filter radius."""
    return predictor_receptive_field(model) + filter_radius(model)


@dataclass(frozen=True)
class Span:
    """One tile along one axis: it reads ``[read_lo, read_hi)`` and contributes ``weights`` to ``[lo, hi)``."""

    read_lo: int
    read_hi: int
    lo: int
    hi: int
    weights: np.ndarray  # (hi - lo,) float32 in (0, 1]


def _ceil_to(n: int, step: int) -> int:
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
        read_hi = min(length, read_lo + _ceil_to(hi + halo - read_lo, align))
        centres = np.arange(lo, hi) + 0.5
        weights = np.ones(hi - lo)
        if feather and start > 0:
            weights = np.minimum(weights, (centres - (start - feather)) / (2 * feather))
        if feather and end < length:
            weights = np.minimum(weights, (end + feather - centres) / (2 * feather))
        spans.append(Span(read_lo, read_hi, lo, hi, weights.astype(np.float32)))
    return spans


def tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    halo: int,
    align: int,
    progress: Callable[[int], Any] | None = None,
) -> torch.Tensor:
    """``fn`` over overlapping tiles of ``x``, feather-blended.

    fn: ``(1, C, h, w) -> (1, C_out, h, w)`` float, same spatial size.
    x: ``(1, C, H, W)`` on the CPU (tiles move to the model's device inside ``fn``).
    Returns ``(1, C_out, H, W)`` float32 on the CPU. ``progress(n)`` is called
    after every tile. With a single tile, ``fn(x)`` itself is returned.
    """
    h, w = x.shape[-2:]
    rows, cols = axis_spans(h, tile, halo, align), axis_spans(w, tile, halo, align)
    if len(rows) == 1 and len(cols) == 1:
        out = fn(x).float().cpu()
        if progress:
            progress(1)
        return out
    acc: torch.Tensor | None = None
    weight_sum = torch.zeros(h, w)
    for r in rows:
        for c in cols:
            piece = fn(x[..., r.read_lo : r.read_hi, c.read_lo : c.read_hi])[0].float().cpu()  # (C_out, h', w')
            piece = piece[:, r.lo - r.read_lo : r.hi - r.read_lo, c.lo - c.read_lo : c.hi - c.read_lo]
            weight = torch.from_numpy(np.outer(r.weights, c.weights))  # (h'', w'')
            if acc is None:
                acc = torch.zeros(piece.shape[0], h, w)
            acc[:, r.lo : r.hi, c.lo : c.hi] += piece * weight
            weight_sum[r.lo : r.hi, c.lo : c.hi] += weight
            if progress:
                progress(1)
    assert acc is not None
    return (acc / weight_sum)[None]


# ----------------------------------------------------------------------------
# The Restorer
# ----------------------------------------------------------------------------


def check_device(device: str) -> str:
    """``device`` if torch can use it; PffError naming the problem otherwise."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise PffError(f"unknown device {device!r} (use cpu or cuda)") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PffError(f"device {device!r} is not available: this PyTorch build sees no CUDA GPU (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise PffError(f"unsupported device {device!r} (use cpu or cuda)")
    return device


_MAX_VALUE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _split_alpha(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W[, C]) -> (colour (H, W, 1 or 3), alpha (H, W) or None)."""
    if array.ndim == 2:
        return array[..., None], None
    channels = array.shape[2]
    if channels in (1, 3):
        return array, None
    if channels in (2, 4):
        return array[..., :-1], array[..., -1]
    raise PffError(f"expected an image with 1 to 4 channels, got shape {array.shape}")


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float in [0, 1] -> ``dtype`` (uint8/uint16 rounded half up; float kept)."""
    if dtype in _MAX_VALUE:
        scaled = np.clip(values, 0.0, 1.0) * _MAX_VALUE[dtype] + 0.5
        return np.floor(scaled).astype(dtype)
    return np.clip(values, 0.0, 1.0).astype(dtype)


class Restorer:
    """A trained model plus the inference settings; restores images of any size.

    Args:
        model: a ``PFF`` or ``DirectCNN`` (``pff.models``), put in eval mode.
        card: its :class:`~pff.models.ModelCard` (task and channels).
        device: ``"cpu"`` or ``"cuda"``.
        tile: tile size in pixels (rounded up to the alignment); ``0`` runs the
            whole image at once; ``None`` runs images up to
            ``AUTO_WHOLE_PIXELS`` whole and tiles larger ones with ``AUTO_TILE``.
        iterations: passes of the model, each on the previous output (2 is the
            paper's "PFF+1").
        strength: in [0, 1]; 0 returns the input (for SR: the bicubic
            upsampling), 1 the model's output (see the module docstring).
        scale: the SR factor (task ``sr`` only): inputs are low-resolution
            images, upsampled here with MATLAB bicubic and rounded.
        precision: ``"fp32"`` (default) or ``"bf16"`` (autocast of the network;
            the filter op stays in float32).
        progress: show a tqdm bar over tiles (stderr).
    """

    def __init__(
        self,
        model: nn.Module,
        card: ModelCard,
        *,
        device: str = "cpu",
        tile: int | None = None,
        iterations: int = 1,
        strength: float = 1.0,
        scale: int = 4,
        precision: Literal["fp32", "bf16"] = "fp32",
        progress: bool = False,
    ) -> None:
        if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 0):
            raise PffError(f"tile must be an integer >= 0 (0: whole image), got {tile!r}")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise PffError(f"iterations must be an integer >= 1, got {iterations!r}")
        if not (isinstance(strength, (int, float)) and 0.0 <= strength <= 1.0):
            raise PffError(f"strength must be a number in [0, 1], got {strength!r}")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise PffError(f"scale must be an integer >= 1, got {scale!r}")
        if precision not in ("fp32", "bf16"):
            raise PffError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        self.device = check_device(device)
        # Batch norms folded into their convolutions: ~10% faster, same function (float rounding).
        self.model = fold_batchnorm(model).to(self.device)
        self.card = card
        self.tile, self.iterations, self.strength = tile, iterations, float(strength)
        self.scale, self.precision, self.progress = scale, precision, progress
        self.align = math.lcm(network_stride(model), JPEG_GRID)
        self._halo: int | None = None

    @classmethod
    def from_pretrained(cls, spec: str | os.PathLike[str], **options: Any) -> Restorer:
        """A Restorer for a shipped model name (``"jpeg"``, ``"deblur"``, ``"sr-x4"``, ...) or a model folder.

        ``options`` are the constructor's keyword arguments. Raises PffError for
        an unknown name, a broken model folder or an unavailable device.
        """
        from pff import models

        device = check_device(options.get("device", "cpu"))
        model, card = models.load(spec, device=device)
        return cls(model, card, **options)

    # -- tensors in the model's channels -------------------------------------

    @property
    def _config(self) -> Any:
        return getattr(self.model, "config", None)

    @property
    def in_channels(self) -> int:
        """3 for an rgb model, 1 for a y (luma) model."""
        return 3 if self.card.channels == "rgb" else 1

    @property
    def has_filters(self) -> bool:
        """Whether the model predicts filters (a PFF) rather than pixels (the direct CNN)."""
        return getattr(self._config, "kind", None) == "pff"

    @property
    def halo(self) -> int:
        """Pixels each tile reads beyond the part it contributes: the receptive field, rounded up to the alignment."""
        if self._halo is None:
            self._halo = _ceil_to(receptive_field(self.model), self.align)
        return self._halo

    def _tile_for(self, h: int, w: int) -> int | None:
        """The tile size for an h x w image, or None for the whole image."""
        tile = self.tile
        if tile is None:
            tile = 0 if h * w <= AUTO_WHOLE_PIXELS else AUTO_TILE
        if tile == 0 or tile >= max(h, w):
            return None
        return _ceil_to(tile, self.align)

    def _net(self, x: torch.Tensor, what: Literal["restored", "filters", "flow", "both"]) -> torch.Tensor:
        """One model call on a (1, C, h, w) CPU tile; the strength blend applied."""
        from pff.ops import expected_flow

        x = x.to(self.device)
        s = self.strength
        with torch.inference_mode(), torch.autocast(
            device_type=x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        ):
            if self._config is None:  # any (restored, filters) module, e.g. a test stub
                restored, filters = self.model(x)
            else:
                restored, filters = self.model(x, return_filters=what != "restored")
        restored = restored.float()
        if s != 1.0:
            restored = x + s * (restored - x)
        if what == "restored":
            return restored
        if filters is None:
            raise PffError("this model predicts pixels directly (kind 'direct'): it has no filters or flow")
        if what == "filters":
            if s != 1.0:
                k2 = filters.shape[1]
                filters = s * filters
                filters[:, k2 // 2] += 1.0 - s  # blend with the identity (delta) filter
            return filters
        flow = s * expected_flow(filters, dilation=self.model.config.dilation)  # (1, 2, h, w): the delta has no flow
        return flow if what == "flow" else torch.cat([restored, flow], dim=1)

    def _map(self, x: torch.Tensor, what: Literal["restored", "filters", "flow", "both"]) -> torch.Tensor:
        from tqdm import tqdm

        h, w = x.shape[-2:]
        tile = self._tile_for(h, w)
        fn = lambda t: self._net(t, what)  # noqa: E731
        if tile is None:
            return fn(x).float().cpu()
        count = math.ceil(h / tile) * math.ceil(w / tile)
        bar = tqdm(total=count, desc="tiles", unit="tile", leave=False, file=sys.stderr, disable=None if self.progress else True)
        with bar:
            return tiled(fn, x, tile=tile, halo=self.halo, align=self.align, progress=bar.update)

    def run(self, x: torch.Tensor, *, with_flow: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Restore ``x`` (1, C, H, W) float in [0, 1] in the model's channels (C = 3 for rgb, 1 for y).

        Returns ``(restored (1, C, H, W) float32 in [0, 1] on the CPU, flow)``,
        flow being the first pass's expected flow (1, 2, H, W) (x, y
        displacement in pixels) when ``with_flow``, else None.
        """
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a (1, {self.in_channels}, H, W) tensor, got {tuple(x.shape)}")
        x = x.float().cpu()
        flow = None
        for i in range(self.iterations):
            if i == 0 and with_flow:
                both = self._map(x, "both")
                c = x.shape[1]
                out, flow = both[:, :c], both[:, c:]
            else:
                out = self._map(x, "restored")
            x = out.clamp(0.0, 1.0)
        return x, flow

    # -- images ----------------------------------------------------------------

    def _prepare(self, image: Any) -> tuple[np.ndarray, np.ndarray | None, np.dtype, str | None, bool]:
        """image -> (colour float32 (H, W, 1|3) in [0, 1], alpha or None, dtype, PIL mode or None, was 2-D).

        For SR the colour and alpha are upsampled here."""
        from PIL import Image

        pil_mode = None
        if isinstance(image, Image.Image):
            image, pil_mode = _pil_to_array(image), image.mode
        array = np.asarray(image)
        if array.ndim not in (2, 3) or array.shape[0] == 0 or array.shape[1] == 0:
            raise PffError(f"expected an (H, W) or (H, W, C) image, got shape {array.shape}")
        dtype = array.dtype
        if dtype not in _MAX_VALUE and not np.issubdtype(dtype, np.floating):
            raise PffError(f"expected a uint8, uint16 or float image, got dtype {dtype}")
        colour, alpha = _split_alpha(array)
        if self.card.task == "sr" and self.scale > 1:
            colour = _upscale(colour, self.scale, dtype)
            alpha = None if alpha is None else _upscale(alpha, self.scale, dtype)
        top = _MAX_VALUE.get(dtype, 1.0)
        colour01 = colour.astype(np.float32) / np.float32(top)
        if np.issubdtype(dtype, np.floating) and not (np.all(np.isfinite(colour01)) and 0 <= colour01.min() and colour01.max() <= 1):
            raise PffError("a float image must have finite values in [0, 1]")
        return colour01, alpha, dtype, pil_mode, array.ndim == 2

    def _model_space(self, colour01: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """(H, W, 1|3) [0, 1] -> (model input (H, W, C), back: model output (H, W, C) -> colour (H, W, 1|3))."""
        gray = colour01.shape[2] == 1
        if self.card.channels == "rgb":
            if gray:
                return np.repeat(colour01, 3, axis=2), lambda out: out.mean(axis=2, keepdims=True)
            return colour01, lambda out: out
        if gray:  # a gray image is R = G = B: Cb = Cr = 128, so only Y changes
            return gray_to_y(colour01).astype(np.float32), y_to_gray
        ycc = rgb_to_ycbcr(colour01)

        def back(out: np.ndarray) -> np.ndarray:
            ycc[..., :1] = out
            return ycbcr_to_rgb(ycc)

        return ycc[..., :1].copy(), back

    def _restore_array(self, image: Any, with_flow: bool) -> tuple[Any, np.ndarray | None]:
        colour01, alpha, dtype, pil_mode, flat = self._prepare(image)
        model_in, back = self._model_space(colour01)
        x = torch.from_numpy(np.ascontiguousarray(model_in)).permute(2, 0, 1)[None]  # (1, C, H, W)
        out, flow = self.run(x, with_flow=with_flow)
        restored = _to_dtype(back(out[0].permute(1, 2, 0).numpy()), dtype)  # (H, W, 1|3)
        if alpha is not None:
            restored = np.concatenate([restored, alpha[..., None]], axis=2)
        elif flat:
            restored = restored[..., 0]
        flow_hw2 = None if flow is None else flow[0].permute(1, 2, 0).numpy()  # (H, W, 2)
        if pil_mode is not None:
            return _array_to_pil(restored, pil_mode), flow_hw2
        return restored, flow_hw2

    def restore(self, image: Any) -> Any:
        """Restore one image.

        image: a numpy array (H, W) gray, (H, W, 2) gray + alpha, (H, W, 3) RGB
        or (H, W, 4) RGBA, uint8 or uint16 (or float in [0, 1]); or a PIL image
        (modes L, LA, RGB, RGBA, P, I;16, I). For SR, the low-resolution image.
        Returns the same kind, dtype and layout (PIL mode P becomes RGB or
        RGBA); for SR, ``scale`` times larger. Alpha passes through unchanged
        (bicubic-resized for SR). A y-channel model restores the MATLAB YCbCr
        luma and keeps the input's chroma.
        """
        return self._restore_array(image, with_flow=False)[0]

    def restore_with_flow(self, image: Any) -> tuple[Any, np.ndarray]:
        """``(restore(image), flow)``: flow (H, W, 2) float32, the first pass's expected displacement (x, y) in pixels."""
        if not self.has_filters:
            raise PffError("this model predicts pixels directly (kind 'direct'): it has no filters or flow")
        restored, flow = self._restore_array(image, with_flow=True)
        assert flow is not None
        return restored, flow

    def filters(self, image: Any) -> np.ndarray:
        """Per-pixel filters of one pass on ``image``, blended with the identity by ``strength``.

        Returns (H, W, K, K) float32: ``out[y, x] = sum_ij f[y, x, i, j] *
        in[y + d*(i - K//2), x + d*(j - K//2)]`` (a correlation; ``d`` the
        dilation), shared by the colour channels (for a y-channel model: the
        filters of the luma). For SR, H and W are the upsampled size. Memory:
        4 K^2 bytes per pixel (1.2 KB at K = 17), so crop large images first.
        """
        if not self.has_filters:
            raise PffError("this model predicts pixels directly (kind 'direct'): it has no filters")
        colour01 = self._prepare(image)[0]
        model_in, _ = self._model_space(colour01)
        x = torch.from_numpy(np.ascontiguousarray(model_in)).permute(2, 0, 1)[None]  # (1, C, H, W)
        filters = self._map(x, "filters")[0]  # (K*K, H, W)
        k = self.model.config.kernel
        return filters.permute(1, 2, 0).reshape(*filters.shape[1:], k, k).numpy()  # (H, W, K, K)


def _upscale(image: np.ndarray, scale: int, dtype: np.dtype) -> np.ndarray:
    """MATLAB bicubic upsampling by ``scale``, rounded to ``dtype`` as the benchmark protocol does."""
    from pff.degrade.resize import imresize

    up = imresize(image, float(scale))
    if dtype in _MAX_VALUE:
        return np.floor(np.clip(up, 0.0, _MAX_VALUE[dtype]) + 0.5).astype(dtype)
    return np.clip(up, 0.0, 1.0).astype(dtype)


def _pil_to_array(image: Any) -> np.ndarray:
    """PIL image -> numpy in the layouts :meth:`Restorer.restore` takes."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image)
        if array.min() < 0 or array.max() > 65535:
            raise PffError(f"PIL mode {mode} image has values outside 0..65535")
        return array.astype(np.uint16)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise PffError(f"unsupported PIL mode {mode} (use L, LA, RGB, RGBA, P, I;16 or I)")
    return np.asarray(image)


def _array_to_pil(array: np.ndarray, mode: str) -> Any:
    from PIL import Image

    if array.dtype == np.uint16:
        return Image.fromarray(array) if mode != "I" else Image.fromarray(array.astype(np.int32))
    return Image.fromarray(array)
