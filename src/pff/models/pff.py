"""Predictive Filter Flow: a two-stream predictor plus the per-pixel filter op.

``PFF`` predicts a ``K x K`` filter for every pixel and applies it to the
pixel's neighbourhood of the input (``pff.ops.filter_flow``, or
``pff.ops.apply_basis`` for a linear low-rank head); ``DirectCNN`` is
the same network predicting the pixels themselves (the paper's "CNN"
baseline). Both start as the identity map: the head predicts a *correction*
to the delta filter and its last layer is zero-initialised.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pff import color, ops
from pff.errors import PffError
from pff.models.predictor import TwoStreamPredictor

Constraint = Literal["softmax", "none", "normalized"]

# Upper bounds of ModelConfig (ARCHS' largest: kernel 17, width 512, 4 stages,
# 13M weights), generous for new models and checked before anything is built.
MAX_KERNEL = 63
MAX_DILATION = 32
MAX_STAGES = 8
MAX_WIDTH = 4096
MAX_DEPTH = 64
MAX_STRIDE = 8
MAX_HEAD_KERNEL = 15
MAX_WEIGHTS = 500_000_000  # 2 GB of float32


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a restoration network; rows of ``pff.models.ARCHS`` are instances.

    Filter: ``kernel`` x ``kernel`` taps spaced ``dilation`` pixels apart;
    ``constraint`` is ``softmax`` (non-negative, sum 1), ``none`` (free-form)
    or ``normalized`` (sum 1, signs free); ``centre_mass`` is the weight a
    softmax filter gives its centre tap at initialisation, the rest falls off
    as a Gaussian of std ``prior_spread`` taps (see ``softmax_prior``).
    Head: ``basis`` predicts ``basis`` coefficients per pixel that multiply a
    learned ``(basis, K*K)`` filter basis (low rank, cheap at full
    resolution); ``full`` predicts all ``K*K`` weights directly.
    Colour: ``shared`` applies each pixel's filter to every channel;
    ``ycbcr`` (RGB models, basis head) converts the image to YCbCr (MATLAB
    BT.601) and predicts four filters per pixel from it (``PFF.PARTS``): one
    for luma, one shared by the two chroma channels, and for Cb and for Cr a
    zero-sum filter over the luma that adds luma detail to the chroma (a
    JPEG stores chroma at half resolution; its edges follow the luma's);
    each kind has its own basis. The result is converted back to RGB.
    Deep stream: a ``stem_width`` convolution of stride ``stem_stride`` then
    one residual stage per entry of ``widths``/``depths``/``strides``/
    ``dilations``; shallow stream: ``shallow_depth`` full-resolution layers,
    then ``shallow_blocks`` residual blocks that start as the identity (a
    model deepened from a trained one starts as that model, ``init``);
    the two are fused by a ``fuse_kernel`` x ``fuse_kernel`` convolution into
    ``embed`` channels, which reads the deep stream upsampled to full
    resolution (``fuse_deep = "upsampled"``) or, ``"low"``, projects it by a
    1x1 convolution at its own resolution before upsampling (the same
    function as a fuse whose deep taps are 1x1, far cheaper).
    ``context`` > 0 adds an image-wide context: the deepest stage averaged
    over the image, mapped by an MLP of that many hidden units to a scale and
    a shift of every embedding channel (starting as no change; see
    :class:`pff.models.predictor.TwoStreamPredictor`).
    """

    # Softmax start, measured for kernel 17 (gradients: tests/test_models.py;
    # PSNR: pff-small, configs/deblur.toml, 300 steps at lr 5e-4, validation
    # input 22.79 dB). The issue's +8 centre logit (centre mass 0.91,
    # the rest uniform) gives the off-centre logits a gradient of 4.5e-6 and
    # stayed at the input (22.79 dB validation) for 300 steps; mass 0.5 spread
    # uniformly starts 2.1 dB below the input (a 17x17 box blur of half the
    # image). Mass 0.5 with the rest a Gaussian of std 1 tap costs 0.6 dB at
    # start, gives a 13x larger off-centre gradient (6.0e-5) and ended highest
    # of the softmax starts tried (22.80 dB; std 3 or mass 0.75: 22.79).
    arch: str = "custom"
    kind: Literal["pff", "direct"] = "pff"
    kernel: int = 17
    dilation: int = 1
    constraint: Constraint = "softmax"
    centre_mass: float = 0.5
    prior_spread: float = 1.0
    padding: Literal["zeros", "replicate", "reflect"] = "zeros"
    head: Literal["basis", "full"] = "basis"
    basis: int = 16
    stem_width: int = 32
    stem_stride: int = 2
    widths: tuple[int, ...] = (32, 64, 96)
    depths: tuple[int, ...] = (1, 1, 1)
    strides: tuple[int, ...] = (1, 2, 2)
    dilations: tuple[int, ...] = (1, 1, 1)
    taps: int = 32
    shallow_width: int = 16
    shallow_depth: int = 2
    shallow_blocks: int = 0
    embed: int = 32
    fuse_kernel: int = 3
    fuse_deep: Literal["upsampled", "low"] = "upsampled"
    head_width: int = 32
    head_depth: int = 0
    head_kernel: int = 1
    upscale: int = 1
    color: Literal["shared", "ycbcr"] = "shared"
    context: int = 0

    def __post_init__(self) -> None:
        # Sizes are checked before lengths and values are echoed, so a hostile
        # config.json gets a short message and nothing is allocated.
        n = len(self.widths)
        _require(1 <= n <= MAX_STAGES, "widths", f"must have 1 to {MAX_STAGES} entries (stages), got {n}")
        for key in ("depths", "strides", "dilations"):
            count = len(getattr(self, key))
            _require(count == n, key, f"must have {n} entries like 'widths', got {count}")
        _check_range(self, "kernel", 1, MAX_KERNEL)
        _require(self.kernel % 2 == 1, "kernel", f"must be an odd number >= 1, got {self.kernel}")
        _check_range(self, "dilation", 1, MAX_DILATION)
        _require(math.isfinite(self.centre_mass) and 0.0 < self.centre_mass < 1.0, "centre_mass", f"must be in (0, 1), got {self.centre_mass}")
        _require(math.isfinite(self.prior_spread) and self.prior_spread > 0.0, "prior_spread", f"must be a finite number > 0, got {self.prior_spread}")
        _check_range(self, "basis", 1, self.kernel**2)
        for key, high in (("widths", MAX_WIDTH), ("depths", MAX_DEPTH), ("strides", MAX_STRIDE), ("dilations", MAX_DILATION)):
            _check_range(self, key, 1, high)
        for key in ("stem_width", "taps", "shallow_width", "embed", "head_width"):
            _check_range(self, key, 1, MAX_WIDTH)
        _check_range(self, "stem_stride", 1, MAX_STRIDE)
        for key in ("fuse_kernel", "head_kernel"):
            _check_range(self, key, 1, MAX_HEAD_KERNEL)
            _require(getattr(self, key) % 2 == 1, key, f"must be odd, got {getattr(self, key)}")
        for key in ("shallow_depth", "shallow_blocks", "head_depth"):
            _check_range(self, key, 0, MAX_DEPTH)
        _check_range(self, "context", 0, MAX_WIDTH)
        _require(self.shallow_depth > 0 or self.shallow_blocks == 0, "shallow_blocks",
                 "needs shallow_depth >= 1 (a block starts as the identity of the layers before it)")  # fmt: skip
        _check_range(self, "upscale", 1, MAX_STRIDE)
        if self.upscale > 1:
            _require(self.kind == "pff", "upscale", f"needs kind 'pff' (filters), got kind {self.kind!r}")
            _require(self.head == "full", "upscale", "needs head = 'full' (one filter per output sub-pixel)")
            _require(self.constraint != "softmax", "upscale", "needs constraint 'none' or 'normalized'")
            # pff.ops.filter_flow_up reads adjacent low-resolution pixels: no dilated taps.
            _require(self.dilation == 1, "upscale", f"needs dilation 1, got dilation {self.dilation}")
        _require(self.fuse_deep in ("upsampled", "low"), "fuse_deep",
                 f"must be 'upsampled' or 'low', got {self.fuse_deep!r}")  # fmt: skip
        _require(self.color in ("shared", "ycbcr"), "color", f"must be 'shared' or 'ycbcr', got {self.color!r}")
        if self.color == "ycbcr":
            _require(self.kind == "pff", "color", f"'ycbcr' needs kind 'pff' (filters), got kind {self.kind!r}")
            _require(self.head == "basis" and self.constraint != "softmax" and self.upscale == 1, "color",
                     "'ycbcr' needs head = 'basis', constraint 'none' or 'normalized' and upscale 1")  # fmt: skip
        weights = self.weight_estimate()
        _require(
            weights <= MAX_WEIGHTS, "widths",
            f"the network would hold about {weights / 1e6:,.0f}M weights (widths, depths, shallow_*, head_*);"
            f" pff builds at most {MAX_WEIGHTS / 1e6:,.0f}M",
        )  # fmt: skip

    def weight_estimate(self) -> int:
        """The number of weights in the network's convolutions, within 10% (RGB input)."""
        deep = 9 * 3 * self.stem_width
        previous = self.stem_width
        for width, depth in zip(self.widths, self.depths):
            deep += 9 * (previous * width + (2 * depth - 1) * width * width) + previous * width
            previous = width
        shallow = 9 * (3 * self.shallow_width + (self.shallow_depth + 2 * self.shallow_blocks) * self.shallow_width**2)
        deep_taps = 1 if self.fuse_deep == "low" else self.fuse_kernel**2
        fuse = self.embed * (deep_taps * self.taps + self.fuse_kernel**2 * self.shallow_width)
        head = self.head_kernel**2 * self.head_width * (self.head_width * self.head_depth + self.embed)
        context = self.context * (self.widths[-1] + 2 * self.embed)
        return deep + shallow + fuse + head + context + self.head_width * self.kernel**2 * self.upscale**2

    @staticmethod
    def config_base(values: dict) -> ModelConfig:
        """Defaults for a config section: the ``ARCHS`` row named by ``arch`` (see ``pff.config``)."""
        from pff.models.zoo import ARCHS

        name = values.get("arch", "custom")
        if name == "custom":
            return ModelConfig()
        if name not in ARCHS:
            raise PffError(f"arch: unknown architecture {name!r} (known: {', '.join(ARCHS)}, custom)")
        return ARCHS[name]

    def stream_kwargs(self) -> dict:
        """Keyword arguments of ``TwoStreamPredictor`` taken from this config."""
        skip = {
            "arch", "kind", "kernel", "dilation", "constraint", "centre_mass", "prior_spread", "padding", "head",
            "basis", "upscale", "color",
        }
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise PffError(f"{key}: {message}")


def _check_range(config: ModelConfig, key: str, low: int, high: int) -> None:
    """``config.<key>`` (an int or a tuple of ints) lies in [low, high]."""
    value = getattr(config, key)
    values = value if isinstance(value, tuple) else (value,)
    bad = next((v for v in values if not low <= v <= high), None)
    if bad is not None:
        where = "entries" if isinstance(value, tuple) else "value"
        _require(False, key, f"{where} must be in [{low}, {high}], got {bad}")


def softmax_prior(kernel: int, centre_mass: float, spread: float) -> torch.Tensor:
    """``(kernel**2,)`` logits whose softmax puts ``centre_mass`` on the centre tap.

    The other ``1 - centre_mass`` falls off as a Gaussian of std ``spread``
    taps around the centre (a huge ``spread`` makes it uniform).
    """
    t = torch.arange(kernel, dtype=torch.float64) - kernel // 2
    logits = (-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * spread**2)).reshape(-1)  # (K*K,)
    centre = kernel**2 // 2
    if kernel > 1:
        others = torch.cat([logits[:centre], logits[centre + 1 :]])
        logits[centre] = math.log(centre_mass / (1 - centre_mass)) + torch.logsumexp(others, 0)
    return logits.float()


def bicubic_phase_filters(kernel: int, scale: int) -> torch.Tensor:
    """``(K*K, scale, scale)`` filters over a low-resolution KxK neighbourhood that upsample bicubically.

    Output pixel ``(Y, X)`` with phase ``(p, q) = (Y % s, X % s)`` samples the
    low-resolution image at ``u = (Y + 0.5) / s - 0.5`` (MATLAB's ``imresize``
    alignment, Keys' cubic with a = -0.5, ``pff.degrade.resize.cubic``); its
    taps sit at offsets ``-K//2 .. K//2`` from ``Y // s``. With
    :func:`pff.ops.filter_flow_up` these filters give MATLAB's bicubic
    upsampling away from the border (needs K >= 5).
    """
    from pff.degrade.resize import cubic

    r = kernel // 2
    taps = np.arange(-r, r + 1, dtype=np.float64)  # (K,) offsets from Y // s
    phase = (np.arange(scale) + 0.5) / scale - 0.5  # (s,) position of u relative to Y // s
    w1 = cubic(phase[:, None] - taps[None, :])  # (s, K)
    w1 /= w1.sum(axis=1, keepdims=True)
    w2 = w1[:, None, :, None] * w1[None, :, None, :]  # (s_p, s_q, K_i, K_j)
    return torch.from_numpy(w2.transpose(2, 3, 0, 1).reshape(kernel * kernel, scale, scale).copy()).float()


def hermite_basis(kernel: int, count: int) -> torch.Tensor:
    """``(count, kernel**2)`` orthonormal filters: 2-D Gauss-Hermite functions, lowest order first.

    ``H_m(y/s) H_n(x/s) exp(-(x^2+y^2)/(2 s^2))`` ordered by ``m + n``: a blob,
    then first derivatives, then second ... - the smooth, symmetric harmonic
    patterns the paper's PCA of predicted filters shows. ``s`` is chosen so
    the highest order used still fits in the window; rows are orthonormalised
    on the grid (Gram-Schmidt order kept).
    """
    orders = sorted(((m, n) for m in range(kernel) for n in range(kernel)), key=lambda mn: (mn[0] + mn[1], mn[0]))
    orders = orders[:count]
    top = max(m + n for m, n in orders)
    r = max(kernel // 2, 1)
    sigma = r / math.sqrt(2 * top + 1)
    t = torch.arange(kernel, dtype=torch.float64) - kernel // 2
    u = t / sigma
    polys = [torch.ones_like(u), 2 * u]
    for k in range(1, kernel):
        polys.append(2 * u * polys[k] - 2 * k * polys[k - 1])
    env = torch.exp(-0.5 * u**2)
    rows = [(polys[m] * env)[:, None] * (polys[n] * env)[None, :] for m, n in orders]  # each (K, K)
    mat = torch.stack([r_.reshape(-1) for r_ in rows], dim=1)  # (K*K, count)
    q, rr = torch.linalg.qr(mat)
    q = q * torch.where(torch.diagonal(rr) < 0, -1.0, 1.0)  # deterministic signs
    return q.T.contiguous().float()  # (count, K*K)


class PFF(nn.Module):
    """Predictive Filter Flow: ``x (B, C, H, W) in [0, 1] -> (restored (B, C, H, W), filters (B, K*K, H, W))``.

    The same per-pixel filter is applied to every channel, with correlation
    and row-major tap order (``pff.ops.filter_flow``). At initialisation the
    filters are the delta (``none``/``normalized``: output == input) or a
    softmax with ``centre_mass`` on the centre tap and the rest spread as a
    Gaussian of std ``prior_spread`` taps (output close to the input).
    """

    PARTS = ("luma", "chroma", "cb_from_luma", "cr_from_luma")  # the filters of a ``color = 'ycbcr'`` model

    def __init__(self, config: ModelConfig, in_channels: int) -> None:
        super().__init__()
        if config.kind != "pff":
            raise ValueError(f"PFF needs kind='pff', got {config.kind!r}")
        self.config, self.in_channels = config, in_channels
        self.upscale = config.upscale
        taps = config.kernel**2
        n_out = (config.basis if config.head == "basis" else taps) * config.upscale**2
        self.ycbcr = config.color == "ycbcr"
        if self.ycbcr:
            if in_channels != 3:
                raise PffError(f"color: 'ycbcr' needs RGB images (3 channels), got {in_channels}")
            matrix, offset = (torch.tensor(a, dtype=torch.float32) for a in color.ycbcr_transform())
            self.register_buffer("ycc_matrix", matrix, persistent=False)  # (3, 3)
            self.register_buffer("ycc_offset", offset, persistent=False)  # (3,)
            self.register_buffer("rgb_matrix", torch.linalg.inv(matrix.double()).float(), persistent=False)
            n_out *= len(self.PARTS)  # coefficients of each part, in PARTS order
        self.predictor = TwoStreamPredictor(in_channels, n_out, **config.stream_kwargs())
        if config.head == "basis":
            self.basis = nn.Parameter(hermite_basis(config.kernel, config.basis))  # (N, K*K)
        if self.ycbcr:
            self.chroma_basis = nn.Parameter(hermite_basis(config.kernel, config.basis))  # (N, K*K)
            self.cross_basis = nn.Parameter(hermite_basis(config.kernel, config.basis))  # (N, K*K), zero-sum in use
        if config.constraint == "softmax":
            # Not (nearly) the delta: a softmax that close to one-hot gives the
            # other taps almost no gradient (ModelConfig, tests/test_models.py).
            prior = softmax_prior(config.kernel, config.centre_mass, config.prior_spread)
            self.prior = nn.Parameter(prior)  # (K*K,) logits
        elif config.upscale > 1:
            # Identity start of an upscaling model: MATLAB bicubic, one filter per output phase,
            # in the order pixel_shuffle reads the predictor's channels (tap-major, then phase).
            start = bicubic_phase_filters(config.kernel, config.upscale).reshape(-1)  # (K*K*s*s,)
            self.register_buffer("delta", start, persistent=False)
        else:
            delta = torch.zeros(taps)
            delta[taps // 2] = 1.0
            self.register_buffer("delta", delta, persistent=False)  # (K*K,)
        self.start_folded = False  # set by fold_start (inference copies only)

    @property
    def outputs_filters(self) -> bool:
        """Whether the predictor's output convolution gives the filters themselves (see :meth:`head_params`)."""
        return not self.ycbcr and self.config.head == "full" and self.config.constraint in ("none", "normalized")

    def head_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A full head's output convolution (weight, bias) as the filters need it: start and centring included.

        The filters of a full head are ``start + correction`` (minus the
        correction's mean over the taps of each phase for ``normalized``),
        all linear in the output convolution: applying them to its weight
        and bias (K*K*s*s rows, cheap) instead of to its K*K*s*s output maps
        (a pass each over the largest tensor of the step) gives the same
        function and the same gradients.
        """
        weight, bias = self.predictor.out.weight, self.predictor.out.bias
        if self.config.constraint == "normalized":  # output channel t * s*s + p is tap t of phase p
            taps, phases = self.config.kernel**2, self.upscale**2

            def centred(t: torch.Tensor) -> torch.Tensor:
                rows = t.view(taps, phases, -1)
                return (rows - rows.mean(dim=0, keepdim=True)).view_as(t)

            weight, bias = centred(weight), centred(bias)
        return weight, bias + self.delta.to(bias.dtype)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The predictor's output: a full head's filters (``outputs_filters``), else coefficients or logits."""
        if self.outputs_filters and not self.start_folded:
            return self.predictor(x, self.head_params())
        return self.predictor(x)

    def fold_start(self) -> None:
        """Inference only: write :meth:`head_params` into the output convolution.

        The predictor then outputs the filters without computing them from
        its parameters at every call (a full head, e.g. the SR models'
        bicubic phase filters or a free deblurring head). Called by
        :func:`pff.models.blocks.inference_copy`; a no-op for other models.
        A folded model must not be trained or saved.
        """
        if self.start_folded or not self.outputs_filters:
            return
        with torch.no_grad():
            weight, bias = self.head_params()
            self.predictor.out.weight.copy_(weight)
            self.predictor.out.bias.copy_(bias)
        self.start_folded = True

    def _basis(self, part: str = "luma") -> torch.Tensor:
        if part in ("cb_from_luma", "cr_from_luma"):
            basis = self.cross_basis.float()  # (N, K*K)
            return basis - basis.mean(dim=1, keepdim=True)  # zero-sum: flat luma adds no colour
        basis = (self.chroma_basis if part == "chroma" else self.basis).float()  # (N, K*K)
        if self.config.constraint == "normalized":
            basis = basis - basis.mean(dim=1, keepdim=True)  # corrections sum to 0
        return basis

    def filters_from(self, out: torch.Tensor, *, part: str = "luma") -> torch.Tensor:
        """Filters ``(B, K*K, H, W)`` from the output of :meth:`predict` ``(B, N or K*K, H, W)``.

        A ``ycbcr`` model's output holds the coefficients of every ``PARTS``
        entry: ``part`` chooses whose filters (default the luma's, the ones
        ``forward`` returns). The chroma filters apply to Cb - 128 and Cr -
        128; a ``*_from_luma`` filter (zero-sum, no identity offset) gives
        what the luma adds to that chroma channel.
        """
        out = out.float()
        if part not in self.PARTS or (part != "luma" and not self.ycbcr):
            raise ValueError(f"part must be one of {self.PARTS if self.ycbcr else ('luma',)}, got {part!r}")
        if self.ycbcr:
            n, i = self.config.basis, self.PARTS.index(part)
            out = out[:, i * n : (i + 1) * n]
        b, c, h, w = out.shape
        softmax = self.config.constraint == "softmax"
        offset = (self.prior if softmax else self.delta).float()  # (K*K,): centre logit or delta filter
        if part.endswith("_from_luma"):
            offset = torch.zeros_like(offset)  # a pure correction added to the chroma: no delta
        if self.config.head == "basis":
            # offset + basis^T @ coefficients as one batched GEMM per image, (K*K, N) @ (N, H*W),
            # written straight into standard layout (no transposed copies of the K*K maps).
            basis_t = self._basis(part).T.expand(b, -1, -1)  # (B, K*K, N)
            filters = torch.baddbmm(offset[None, :, None], basis_t, out.reshape(b, c, h * w))  # (B, K*K, H*W)
            filters = filters.view(b, -1, h, w)  # (B, K*K, H, W)
        elif self.upscale > 1:
            filters = F.pixel_shuffle(self._phase_filters(out).flatten(1, 2), self.upscale)  # (B, K*K, s*h, s*w)
        elif self.outputs_filters:  # the output convolution holds the start and the centring (head_params)
            filters = out
        else:  # softmax: the prior's logits plus the predicted ones
            filters = out + offset[None, :, None, None]  # (B, K*K, H, W)
        return torch.softmax(filters, dim=1) if softmax else filters

    def _phase_filters(self, out: torch.Tensor) -> torch.Tensor:
        """An upscaling model's filters in low resolution: ``(B, K*K*s*s, h, w) -> (B, K*K, s*s, h, w)``.

        Entry ``[b, k, p*s + q, y, x]`` is tap k of output pixel ``(s*y + p, s*x + q)``
        (the layout :func:`pff.ops.filter_flow_up` takes; ``pixel_shuffle`` of it gives one filter per output pixel).
        """
        b, _, h, w = out.shape
        s = self.upscale
        return out.float().view(b, -1, s * s, h, w)  # (B, K*K, s*s, h, w): head_params holds start and centring

    def forward(self, x: torch.Tensor, *, return_filters: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(restored, filters)``; with ``return_filters=False`` filters is ``None`` and may be skipped."""
        _check_image(x, self.in_channels)
        # The filter op and the basis products run in float32 and standard
        # layout: channels-last filters make the per-offset loop 2x slower.
        if self.ycbcr:
            return self._forward_ycbcr(x, return_filters)
        if not return_filters and self._filters_by_strips():
            return self._forward_strips(x), None
        out = self.predict(x).float().contiguous()  # (B, N or K*K (times s*s), H, W)
        with torch.autocast(device_type=x.device.type, enabled=False):
            linear = self.config.head == "basis" and self.config.constraint != "softmax"
            x32 = x.float().contiguous()
            op_kwargs = {"padding": self.config.padding, "dilation": self.config.dilation}
            if linear:
                restored = x32 + ops.apply_basis(x32, out.float(), self._basis(), **op_kwargs)
                return restored, (self.filters_from(out) if return_filters else None)
            if self.upscale > 1:
                phases = self._phase_filters(out)  # (B, K*K, s*s, h, w)
                restored = ops.filter_flow_up(x32, phases, self.upscale, padding=self.config.padding)
                filters = F.pixel_shuffle(phases.flatten(1, 2), self.upscale) if return_filters else None
                return restored, filters
            filters = self.filters_from(out)
            restored = ops.filter_flow(x32, filters, **op_kwargs)
            return restored, (filters if return_filters else None)

    def _filters_by_strips(self) -> bool:
        """Whether :meth:`forward` may make and apply a full head's filters a strip at a time.

        Inference without the filters (a restore, validation): :func:`pff.ops.filter_flow_linear`
        gives the same output without the (B, K*K, H, W) filters. Not under autograd, nor while
        tracing or exporting (its loop over strips depends on the image size).
        """
        tracing = torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()
        return (self.config.head == "full" and self.upscale == 1 and self.config.head_kernel == 1
                and not torch.is_grad_enabled() and not tracing)  # fmt: skip

    def _forward_strips(self, x: torch.Tensor) -> torch.Tensor:
        """The restored image of a full head (``upscale`` 1, 1x1 output convolution) by filter_flow_linear."""
        features = self.predictor.embedding(x)
        if self.config.constraint == "softmax":
            weight, bias = self.predictor.out.weight, self.predictor.out.bias + self.prior.to(features.dtype)
        elif self.start_folded:
            weight, bias = self.predictor.out.weight, self.predictor.out.bias
        else:
            weight, bias = self.head_params()
        with torch.autocast(device_type=x.device.type, enabled=False):
            return ops.filter_flow_linear(
                x.float(), features, weight.float(), bias.float(), softmax=self.config.constraint == "softmax",
                padding=self.config.padding, dilation=self.config.dilation,
            )  # fmt: skip

    def _forward_ycbcr(self, x: torch.Tensor, return_filters: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """RGB -> YCbCr -> predictor -> the four filters of ``PARTS`` -> RGB (``color = 'ycbcr'``)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            matrix, offset = self.ycc_matrix.to(x.dtype), self.ycc_offset.to(x.dtype)
            ycc = (torch.einsum("ij,bjhw->bihw", matrix, x) + offset[None, :, None, None]).contiguous()  # (B, 3, H, W)
        out = self.predictor(ycc).float().contiguous()  # (B, 4N, H, W): the coefficients of each of PARTS
        with torch.autocast(device_type=x.device.type, enabled=False):
            n, op_kwargs = self.config.basis, {"padding": self.config.padding, "dilation": self.config.dilation}
            offset = self.ycc_offset.float()
            luma = ycc[:, :1].float()  # (B, 1, H, W)
            # Chroma is filtered around neutral grey (128), so zero padding adds no colour at the border.
            chroma = ycc[:, 1:].float() - offset[1:, None, None]  # (B, 2, H, W)
            # The luma's contribution to Cb and to Cr, (B, 2, H, W): one set of correlations of the luma with
            # the zero-sum basis, two sets of coefficients. Replicate padding: the border is no luma edge.
            b, _, h, w = out.shape
            # One split, not three slices: in training, each slice's gradient was a zero-filled copy of `out`.
            luma_c, chroma_c, cross = out.split([n, n, 2 * n], dim=1)
            cross = cross.reshape(b, 2, n, h, w)  # (B, 2, N, H, W)
            detail = ops.apply_basis(luma, cross, self._basis("cb_from_luma"), padding="replicate",
                                     dilation=self.config.dilation)  # fmt: skip
            chroma = chroma + ops.apply_basis(chroma, chroma_c, self._basis("chroma"), **op_kwargs) + detail
            luma = luma + ops.apply_basis(luma, luma_c, self._basis(), **op_kwargs)
            ycc = torch.cat([luma - offset[0], chroma], dim=1)  # (B, 3, H, W), offsets removed
            restored = torch.einsum("ij,bjhw->bihw", self.rgb_matrix.float(), ycc)
            return restored, (self.filters_from(out) if return_filters else None)


class DirectCNN(nn.Module):
    """The same two-stream network predicting pixels: ``x -> (x + residual, None)``, identity at start."""

    def __init__(self, config: ModelConfig, in_channels: int) -> None:
        super().__init__()
        if config.kind != "direct":
            raise ValueError(f"DirectCNN needs kind='direct', got {config.kind!r}")
        self.config, self.in_channels = config, in_channels
        self.predictor = TwoStreamPredictor(in_channels, in_channels, **config.stream_kwargs())

    def forward(self, x: torch.Tensor, *, return_filters: bool = True) -> tuple[torch.Tensor, None]:
        _check_image(x, self.in_channels)
        out = self.predictor(x)
        return x.float() + out.float(), None


def _check_image(x: torch.Tensor, channels: int) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"expected an image batch of shape (B, {channels}, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point image in [0, 1], got dtype {x.dtype}")


def build_model(config: ModelConfig, in_channels: int) -> nn.Module:
    """A fresh ``PFF`` or ``DirectCNN`` (per ``config.kind``) for ``in_channels``-channel images."""
    return PFF(config, in_channels) if config.kind == "pff" else DirectCNN(config, in_channels)
