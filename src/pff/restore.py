"""The :class:`Restorer`: the one path from an image to a model and back.

``Restorer.from_pretrained("jpeg").restore(image)`` restores a numpy array or
PIL image; ``pff restore``, ``pff eval``, ``pff explain`` and ``pff demo`` all
go through it. It turns the image into the model's channels (RGB, or the
MATLAB luma for a y model),
upsamples an SR input when the model sharpens a bicubic upsampling, runs the
model whole or tiled (:mod:`pff.tiling`), and puts the result back in the
image's layout, dtype and colour; ``restore_protocol`` is the same path with
the benchmark protocols' luma (rounded; a 2-D input is a luma plane).

Strength ``S`` blends every predicted filter with the identity filter.
Because the filter-flow operator is linear in the filters,
``filter_flow(x, S*w + (1-S)*delta) = x + S*(filter_flow(x, w) - x)`` for every
filter constraint (softmax, normalized, none) and head, so the blend is done
on the output; the filters returned are the blended ones. For the direct CNN
(``kind="direct"``, no filters) the same formula blends its output with its
input.
"""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from pff.color import luma_gray, rgb_to_y_float, rgb_to_ycbcr, y_to_gray, ycbcr_to_rgb
from pff.degrade.resize import imresize, upsample
from pff.errors import PffError
from pff.models.blocks import inference_copy
from pff.tiling import Rows, Sink, ceil_to, model_upscale, network_stride, receptive_field, tiled

if TYPE_CHECKING:
    from pff.models import ModelCard

# Images up to this many pixels run whole when no tile size is given; larger
# ones are tiled with AUTO_TILE (pff-small at 1 MP peaks near 1 GB of RSS).
AUTO_WHOLE_PIXELS = 1_500_000
AUTO_TILE = 768
# Tile offsets are multiples of this, besides the network stride: the JPEG block grid.
JPEG_GRID = 8


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


def _luma(colour: np.ndarray, dtype: np.dtype, *, rounded: bool) -> np.ndarray:
    """MATLAB Y (H, W, 1) float32 in [0, 1] of (H, W, 1|3) pixels (gray: R = G = B).

    ``rounded``: round to the image's levels (uint8/uint16), as the benchmark
    protocols (``pff.color.rgb_to_y``) and the training pairs make it. Unrounded,
    the YCbCr round trip of a restored image is exact (strength 0 returns the input)."""
    top = _MAX_VALUE.get(dtype, 1.0)
    y255 = rgb_to_y_float(colour.astype(np.float64) * (255.0 / top))  # (H, W) in [16, 235]
    if rounded and dtype in _MAX_VALUE:
        y = np.round(y255 * (top / 255.0)).astype(np.float32) / np.float32(top)
    else:
        y = (y255 / 255.0).astype(np.float32)
    return y[..., None]


# back(lo, out): the model's output rows [lo, lo + n) (n, W', C) -> colour (n, W', 1|3) in [0, 1].
_Back = Callable[[int, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Pixels:
    """An image split for the model: colour (H, W, 1|3) in its own dtype (SR-upsampled when the
    model wants that), alpha (H, W) or None, and how to rebuild the caller's layout."""

    colour: np.ndarray
    alpha: np.ndarray | None
    dtype: np.dtype
    pil_mode: str | None
    flat: bool


@dataclass(frozen=True)
class FilterPass:
    """What :meth:`Restorer.restore_with_filters` returns.

    Attributes:
        restored: the restored image, as :meth:`Restorer.restore` returns it.
        filters: (K*K, H', W') float32, the first pass's per-pixel filters in
            the layout of :mod:`pff.ops` (blended with the identity by the
            strength); H', W' the output size.
        model_input: (h, w, C) float32 in [0, 1], what the model saw (C = 1 for a y model).
        model_output: (H', W', C) float32 in [0, 1], what it returned (clamped).
    """

    restored: Any
    filters: np.ndarray
    model_input: np.ndarray
    model_output: np.ndarray


class Restorer:
    """A trained model plus the inference settings; restores images of any size.

    Args:
        model: a ``PFF`` or ``DirectCNN`` (``pff.models``), or any module
            ``(B, C, h, w) -> (restored (B, C, s*h, s*w), filters (B, K*K, s*h, s*w)
            or None)`` with ``upscale = s`` (1 when absent); put in eval mode.
        card: its :class:`~pff.models.ModelCard`: task, channels and the
            degradation (for sr, the scale the inputs are low-resolution by).
        device: ``"cpu"`` or ``"cuda"``.
        tile: tile size in input pixels (rounded up to the alignment); ``0``
            runs the whole image at once; ``None`` runs images of up to
            ``AUTO_WHOLE_PIXELS`` output pixels whole and tiles larger ones with
            ``AUTO_TILE`` input pixels (``2 * AUTO_TILE // upscale`` for an
            upscaling model).
        iterations: passes of the model, each on the previous output (2 is the
            paper's "PFF+1").
        strength: in [0, 1]; 0 returns the input (for SR: the bicubic
            upsampling), 1 the model's output (see the module docstring).
        precision: ``"fp32"`` (default) or ``"bf16"`` (autocast of the network;
            the filter op stays in float32).
        progress: show a tqdm bar over tiles (stderr).

    An sr model with ``upscale == 1`` sharpens the MATLAB bicubic upsampling
    of its low-resolution input (made here, rounded); one with ``upscale ==
    card.scale`` takes the low-resolution image itself.
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
        precision: Literal["fp32", "bf16"] = "fp32",
        progress: bool = False,
    ) -> None:
        if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 0):
            raise PffError(f"tile must be an integer >= 0 (0: whole image), got {tile!r}")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise PffError(f"iterations must be an integer >= 1, got {iterations!r}")
        if not (isinstance(strength, (int, float)) and 0.0 <= strength <= 1.0):
            raise PffError(f"strength must be a number in [0, 1], got {strength!r}")
        if precision not in ("fp32", "bf16"):
            raise PffError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        if getattr(model, "in_channels", card.in_channels) != card.in_channels:
            raise PffError(f"the model takes {model.in_channels} channels but its card says {card.channels!r}")
        self.upscale = model_upscale(model)
        if self.upscale not in (1, card.scale):
            raise PffError(f"the model upscales by {self.upscale} but its card says {card.task} scale {card.scale}")
        if self.upscale > 1 and (iterations > 1 or strength != 1.0):
            raise PffError("iterations and strength need a model whose output has its input's size")
        self.device = check_device(device)
        # The same function (float rounding), computed faster: see inference_copy.
        self.model = inference_copy(model).to(self.device)
        self.card = card
        self.tile, self.iterations, self.strength = tile, iterations, float(strength)
        self.precision, self.progress = precision, progress
        self.align = math.lcm(network_stride(model), JPEG_GRID)
        self._halo: int | None = None

    @classmethod
    def from_pretrained(
        cls, spec: str | os.PathLike[str], *, task: str | None = None, scale: int | None = None, **options: Any
    ) -> Restorer:
        """A Restorer for a shipped model name (``"jpeg"``, ``"deblur"``, ``"sr-x4"``, ...) or a model folder.

        ``task``/``scale``: what the caller asks for; a model whose card does
        not fit is a PffError. ``options`` are the constructor's keyword
        arguments. Raises PffError for an unknown name, a broken model folder
        or an unavailable device.
        """
        from pff import models

        device = check_device(options.get("device", "cpu"))
        try:
            model, card = models.load(spec, device=device)
        except PffError as err:
            raise PffError(f"cannot load model '{spec}': {err}") from err
        models.check_card(card, str(spec), task=task, scale=scale)
        return cls(model, card, **options)

    # -- tensors in the model's channels -------------------------------------

    @property
    def _config(self) -> Any:
        return getattr(self.model, "config", None)

    @property
    def in_channels(self) -> int:
        """3 for an rgb model, 1 for a y (luma) model."""
        return self.card.in_channels

    @property
    def has_filters(self) -> bool:
        """Whether the model predicts filters rather than pixels (the direct CNN)."""
        return getattr(self._config, "kind", "direct") != "direct"

    @property
    def input_scale(self) -> int:
        """The bicubic upsampling applied to inputs before the model: the SR scale for an sr model
        that sharpens an upsampled image, else 1."""
        return self.card.scale if self.card.task == "sr" and self.upscale == 1 else 1

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """(H', W'): the size of the restored image and its filters for an h x w input."""
        s = self.input_scale * self.upscale
        return s * h, s * w

    @property
    def halo(self) -> int:
        """Input pixels each tile reads beyond the part it contributes: the receptive field, rounded up to the alignment."""
        if self._halo is None:
            self._halo = ceil_to(receptive_field(self.model), self.align)
        return self._halo

    def _tile_for(self, h: int, w: int) -> int | None:
        """The tile size for an h x w input, or None for the whole image."""
        tile = self.tile
        if tile is None:
            s = self.upscale
            # An upscaling model keeps K*K*s*s filter values per input pixel: its tiles are 2/s of
            # AUTO_TILE (x2: 768, x3: 512 input pixels), which at a 4-MP output peaked at 1.1 GB of
            # RSS (0.8 GB at AUTO_TILE // s, whose halos cost 1.15-1.2x more time).
            tile = AUTO_TILE if s == 1 else max(2 * AUTO_TILE // s, self.align)
            tile = 0 if h * w * s * s <= AUTO_WHOLE_PIXELS else tile
        if tile == 0 or tile >= max(h, w):
            return None
        return ceil_to(tile, self.align)

    def _net(self, x: torch.Tensor, extra: Literal["filters", "flow"] | None) -> list[torch.Tensor | None]:
        """One model call on a (1, C, h, w) CPU tile: [restored, filters or flow or None], strength applied."""
        from pff.ops import expected_flow

        x = x.to(self.device)
        s = self.strength
        with torch.inference_mode(), torch.autocast(
            device_type=x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        ):
            if self._config is None:  # any (restored, filters) module, e.g. a test stub
                restored, filters = self.model(x)
            else:
                restored, filters = self.model(x, return_filters=extra is not None)
        restored = restored.float()
        if s != 1.0:
            restored = x + s * (restored - x)
        if extra is None:
            return [restored, None]
        if filters is None:
            raise PffError("this model predicts pixels directly (kind 'direct'): it has no filters or flow")
        filters = filters.float()
        if s != 1.0:
            k2 = filters.shape[1]
            filters = s * filters
            filters[:, k2 // 2] += 1.0 - s  # blend with the identity (delta) filter
        if extra == "filters":
            return [restored, filters]
        # An upscaling model's taps are s output pixels apart (pff.ops.filter_flow_up).
        flow = expected_flow(filters, dilation=self._config.dilation * self.upscale)  # (1, 2, h, w)
        if self.upscale > 1:
            # Measured from the output pixel itself, not from its low-resolution block: tap d of output
            # pixel Y reads the pixel whose centre lies s*d + (s - 1)/2 - Y % s away, so the bicubic
            # start has zero flow. Tiles start at multiples of s, so local phases are the global ones.
            up = self.upscale
            shift = lambda n: (up - 1) / 2 - (torch.arange(n) % up).float()  # noqa: E731
            mass = filters.sum(dim=1)  # (1, h, w)
            flow[:, 0] += mass * shift(flow.shape[-1])
            flow[:, 1] += mass * shift(flow.shape[-2])[:, None]
        return [restored, flow]

    def _map(
        self, x: Rows, extra: Literal["filters", "flow"] | None, out: list[np.ndarray | Sink | None]
    ) -> np.ndarray | None:
        """The model over ``x`` (1, C, h, w), tiled; ``out``: where the restored (C, s*h, s*w) and the extra
        (C', s*h, s*w) output go (:func:`pff.tiling.tiled`). Returns the extra output when it was allocated here."""
        from tqdm import tqdm

        h, w = x.shape[-2:]
        tile = self._tile_for(h, w)
        count = 1 if tile is None else math.ceil(h / tile) * math.ceil(w / tile)
        bar = tqdm(total=count, desc="tiles", unit="tile", leave=False, file=sys.stderr,
                   disable=None if self.progress and count > 1 else True)  # fmt: skip
        with bar:
            _, other = tiled(
                lambda t: self._net(t, extra), x, tile=tile, halo=0 if tile is None else self.halo, align=self.align,
                upscale=self.upscale, out=out, progress=bar.update,
            )  # fmt: skip
        return other

    def _passes(
        self, x: Rows, extra: Literal["filters", "flow"] | None, finish: Sink,
        extra_out: np.ndarray | Sink | None = None,
    ) -> np.ndarray | None:
        """All iterations on ``x`` (1, C, h, w) in [0, 1].

        The last pass's output, clamped to [0, 1], goes to ``finish(lo, band)``
        band by band (rows ``[lo, lo + n)``, (C, n, W') float32). The first
        pass's extra output goes to ``extra_out`` (an array or a sink, see
        :func:`pff.tiling.tiled`); returns it when it is an array or was allocated here."""
        first = None
        for i in range(self.iterations):
            last = i == self.iterations - 1
            # The next pass reads this one's output (the same size: iterations need upscale 1).
            target, following = (finish, None) if last else _gathered(x.shape)

            def sink(lo: int, band: np.ndarray, target: Sink = target) -> None:
                target(lo, np.clip(band, 0.0, 1.0, out=band))

            other = self._map(x, extra if i == 0 else None, [sink, extra_out if i == 0 else None])
            if i == 0:
                first = other
            if following is not None:
                x = Rows.of(torch.from_numpy(following))
        return first

    def run(self, x: torch.Tensor, *, with_flow: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Restore ``x`` (1, C, H, W) float in [0, 1] in the model's channels (C = 3 for rgb, 1 for y).

        Returns ``(restored (1, C, sH, sW) float32 in [0, 1] on the CPU, flow)``,
        flow being the first pass's expected flow (1, 2, sH, sW) (x, y
        displacement in pixels) when ``with_flow``, else None; ``s`` is the
        model's upscale (1 but for an LR-input SR model).
        """
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a (1, {self.in_channels}, H, W) tensor, got {tuple(x.shape)}")
        rows = Rows.of(x.float().cpu())
        sink, out = _gathered(self._sized(rows))
        flow = self._passes(rows, "flow" if with_flow else None, sink)
        return torch.from_numpy(out), None if flow is None else torch.from_numpy(flow)[None]

    # -- images ----------------------------------------------------------------

    def _prepare(self, image: Any) -> _Pixels:
        """Check and split an image; for an sr model that sharpens upsampled images, upsample it."""
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
        if np.issubdtype(dtype, np.floating) and not (np.all(np.isfinite(array)) and 0 <= array.min() and array.max() <= 1):
            raise PffError("a float image must have finite values in [0, 1]")
        colour, alpha = _split_alpha(array)
        if self.input_scale > 1:
            colour = upsample(colour, self.input_scale)
        scale = self.input_scale * self.upscale  # alpha follows the output size, bicubic
        if alpha is not None and scale > 1:
            alpha = upsample(alpha, scale)
        return _Pixels(colour, alpha, dtype, pil_mode, array.ndim == 2)

    def _to_model(self, colour: np.ndarray, dtype: np.dtype, *, protocol: bool = False) -> tuple[Rows, _Back]:
        """(H, W, 1|3) pixels -> (the model input (1, C, H, W) float32 in [0, 1], made band by band;
        back(lo, out): model output rows ``[lo, lo + n)`` (n, W', C) -> colour (n, W', 1|3) in [0, 1]).

        ``protocol``: a benchmark input (PROTOCOL.md): a one-channel image is a
        luma plane already (the jpeg benchmark's), not a gray image, and the
        luma of an RGB image is rounded as the protocols round it."""
        top = np.float32(_MAX_VALUE.get(dtype, 1.0))
        gray = colour.shape[2] == 1
        convert: Callable[[np.ndarray], np.ndarray]
        back: _Back
        if self.card.channels == "rgb":
            convert = (lambda block: np.repeat(block.astype(np.float32) / top, 3, axis=2)) if gray else (
                lambda block: block.astype(np.float32) / top)  # fmt: skip
            # A gray image comes back as the gray of the output's luma: a model with chroma
            # filters of its own may tint a gray image's edges, and its luma is what counts.
            back = (lambda lo, out: luma_gray(out)) if gray else (lambda lo, out: out)
        elif gray and protocol:
            convert, back = (lambda block: block.astype(np.float32) / top), (lambda lo, out: out)
        else:
            convert = lambda block: _luma(block, dtype, rounded=protocol)  # noqa: E731
            if gray:  # a gray image is R = G = B: Cb = Cr = 128, so only Y changes
                back = lambda lo, out: y_to_gray(out)  # noqa: E731
            elif self.upscale == 1:

                def back(lo: int, out: np.ndarray) -> np.ndarray:
                    ycc = rgb_to_ycbcr(colour[lo : lo + out.shape[0]].astype(np.float32) / top)
                    ycc[..., :1] = out
                    return ycbcr_to_rgb(ycc)

            else:
                # An LR-input model restores the luma; the chroma (Cb, Cr) is upsampled bicubically,
                # in low resolution converted once (two planes to resize instead of three RGB ones).
                cbcr = rgb_to_ycbcr(colour.astype(np.float32) / top)[..., 1:]
                chroma = imresize(cbcr, float(self.upscale)).astype(np.float32)

                def back(lo: int, out: np.ndarray) -> np.ndarray:
                    return ycbcr_to_rgb(np.concatenate([out, chroma[lo : lo + out.shape[0]]], axis=2))

        h, w = colour.shape[:2]

        def read(lo: int, hi: int) -> torch.Tensor:
            model_in = np.empty((hi - lo, w, self.in_channels), np.float32)
            _by_rows(lambda a, b: convert(colour[lo + a : lo + b]), model_in)
            return torch.from_numpy(model_in).permute(2, 0, 1)[None]  # (1, C, hi - lo, W)

        return Rows((1, self.in_channels, h, w), read), back

    def _image_sink(self, pixels: _Pixels, back: _Back) -> tuple[Sink, np.ndarray]:
        """(a sink for the model's output bands, the (H', W', 1|3 [+ alpha]) array of the caller's dtype it fills)."""
        h, w = (self.upscale * n for n in pixels.colour.shape[:2])
        colours = pixels.colour.shape[2]
        result = np.empty((h, w, colours + (pixels.alpha is not None)), pixels.dtype)
        if pixels.alpha is not None:
            result[..., -1] = pixels.alpha

        def sink(lo: int, band: np.ndarray) -> None:
            rows = band.transpose(1, 2, 0)  # (n, W', C)
            _by_rows(lambda a, b: _to_dtype(back(lo + a, rows[a:b]), pixels.dtype), result[lo : lo + len(rows), :, :colours])

        return sink, result

    @staticmethod
    def _finish(pixels: _Pixels, result: np.ndarray) -> Any:
        """The restored (H', W', C) array in the caller's layout and type."""
        restored = result[..., 0] if pixels.flat and pixels.alpha is None else result
        return restored if pixels.pil_mode is None else _array_to_pil(restored, pixels.pil_mode)

    def _sized(self, x: Rows) -> tuple[int, int, int, int]:
        """The shape (1, C, s*h, s*w) of the model's output for the input ``x``."""
        _, c, h, w = x.shape
        return 1, c, self.upscale * h, self.upscale * w

    @staticmethod
    def _hwc(t: torch.Tensor | np.ndarray) -> np.ndarray:
        return np.asarray(t[0]).transpose(1, 2, 0)  # (1, C, H, W) -> (H, W, C)

    def restore(self, image: Any) -> Any:
        """Restore one image.

        image: a numpy array (H, W) gray, (H, W, 2) gray + alpha, (H, W, 3) RGB
        or (H, W, 4) RGBA, uint8 or uint16 (or float in [0, 1]); or a PIL image
        (modes L, LA, RGB, RGBA, P, I;16, I). For SR, the low-resolution image.
        Returns the same kind, dtype and layout (PIL mode P becomes RGB or
        RGBA); for SR, ``card.scale`` times larger. Alpha passes through
        unchanged (bicubic-resized for SR). A y-channel model restores the
        MATLAB YCbCr luma and keeps the input's chroma. The pixels go to the
        model and back band by band, into the preallocated result: besides the
        input and the result, memory is bounded by the tile size.
        """
        pixels = self._prepare(image)
        x, back = self._to_model(pixels.colour, pixels.dtype)
        sink, result = self._image_sink(pixels, back)
        self._passes(x, None, sink)
        return self._finish(pixels, result)

    def restore_with_flow(self, image: Any) -> tuple[Any, np.ndarray]:
        """``(restore(image), flow)``: flow (H, W, 2) float32, the first pass's expected displacement (x, y) in pixels."""
        if not self.has_filters:
            raise PffError("this model predicts pixels directly (kind 'direct'): it has no filters or flow")
        pixels = self._prepare(image)
        x, back = self._to_model(pixels.colour, pixels.dtype)
        sink, result = self._image_sink(pixels, back)
        flow = np.empty((*result.shape[:2], 2), np.float32)  # (H', W', 2)

        def flow_sink(lo: int, band: np.ndarray) -> None:
            flow[lo : lo + band.shape[1]] = band.transpose(1, 2, 0)

        self._passes(x, "flow", sink, flow_sink)
        return self._finish(pixels, result), flow

    def restore_with_filters(self, image: Any, *, filters_out: np.ndarray | None = None) -> FilterPass:
        """Restore ``image`` (as :meth:`restore` takes it) and keep the first pass's per-pixel filters, in one pass.

        The filters are written tile by tile into ``filters_out`` when given: a
        zero-filled (K*K, H', W') float32 array, e.g. ``numpy.lib.format.open_memmap``
        on disk, so memory stays bounded by the tile, not the image; otherwise
        they are allocated (4 K^2 bytes per pixel). ``out[y, x] = sum_ij
        f[i*K + j, y, x] * in[y + d*(i - K//2), x + d*(j - K//2)]`` (a
        correlation; ``d`` the dilation), shared by the colour channels (for a
        y model: the filters of the luma). See :class:`FilterPass`.
        """
        if not self.has_filters:
            raise PffError("this model predicts pixels directly (kind 'direct'): it has no filters")
        pixels = self._prepare(image)
        x, back = self._to_model(pixels.colour, pixels.dtype)
        image_sink, result = self._image_sink(pixels, back)
        gather, output = _gathered(self._sized(x))

        def sink(lo: int, band: np.ndarray) -> None:
            gather(lo, band)
            image_sink(lo, band)

        filters = self._passes(x, "filters", sink, filters_out)
        assert filters is not None
        model_input = x.read(0, x.shape[2])  # (1, C, h, w)
        return FilterPass(self._finish(pixels, result), filters, self._hwc(model_input), self._hwc(output))

    def filters(self, image: Any) -> np.ndarray:
        """Per-pixel filters of one pass on ``image`` (:meth:`restore_with_filters`), as (H', W', K, K) float32.

        A view of the (K*K, H', W') filters: ``f[y, x, i, j]`` weighs the
        input pixel ``(y + d*(i - K//2), x + d*(j - K//2))``. For SR, H' and W'
        are the output size.
        """
        filters = self.restore_with_filters(image).filters  # (K*K, H, W)
        k = math.isqrt(filters.shape[0])
        return filters.reshape(k, k, *filters.shape[1:]).transpose(2, 3, 0, 1)  # (H, W, K, K)

    def restore_protocol(self, degraded: np.ndarray) -> np.ndarray:
        """Restore a benchmark input the way the protocols score it (``pff.evaluate``; PROTOCOL.md).

        degraded: uint8 (H, W, 3) RGB, or (H, W) MATLAB luma Y (the jpeg
        benchmark's input); for SR the low-resolution image. Returns float64 in
        [0, 255], not rounded, in the model's space: (H', W') Y for a y model
        (of an RGB input: its luma, rounded as the protocol does); (H', W', 3)
        RGB for an rgb model, or (H', W') for a Y input (the channel mean).
        The whole image runs at once unless ``tile`` says otherwise.
        """
        pixels = self._prepare(degraded)
        x, _ = self._to_model(pixels.colour, pixels.dtype, protocol=True)
        sink, out = _gathered(self._sized(x))
        self._passes(x, None, sink)
        values = out[0].astype(np.float64) * 255.0  # (C, H, W), clamped to [0, 1] before scaling
        if values.shape[0] == 1:
            return values[0]
        values = values.transpose(1, 2, 0)  # (H, W, 3)
        return values.mean(axis=2) if pixels.flat else values


# Rows converted at a time between pixels and the model's float32: bounds the float temporaries.
CHUNK_ROWS = 128


def _by_rows(fn: Callable[[int, int], np.ndarray], out: np.ndarray) -> np.ndarray:
    """``out[a:b] = fn(a, b)`` for consecutive chunks of ``CHUNK_ROWS`` rows; returns ``out``."""
    for a in range(0, len(out), CHUNK_ROWS):
        b = min(a + CHUNK_ROWS, len(out))
        out[a:b] = fn(a, b)
    return out


def _gathered(shape: tuple[int, ...]) -> tuple[Sink, np.ndarray]:
    """(a sink that gathers bands (C, n, W) into a whole array, that (1, C, H, W) float32 array)."""
    whole = np.empty(shape, np.float32)

    def sink(lo: int, band: np.ndarray) -> None:
        whole[0, :, lo : lo + band.shape[1]] = band

    return sink, whole


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
