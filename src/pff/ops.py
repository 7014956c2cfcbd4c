"""The filter-flow operator: a different KxK filter applied at every pixel.

``filter_flow`` is the paper's "im2col then inner product" step (section 3.1)
without the im2col: the unfold-based version materialises a
(B, C*K*K, H, W) tensor (0.9 GB for one 512x512 RGB image at K = 17), keeps
it for backward and makes another as large for the product.  The fast
version here loops over the K*K offsets instead, multiply-adding one shifted
view of the padded image per offset into the output, and saves at most its
inputs for backward.  ``benchmarks/README.md`` has the numbers and the
alternatives that were measured.  ``apply_basis`` applies low-rank filters
without building them, ``filter_flow_linear`` (inference) filters made by a
1x1 convolution of feature maps, a strip of rows at a time.

Conventions, shared by every function in this module:

- ``image`` is (B, C, H, W); ``filters`` is (B, K*K, H, W) (one filter per
  pixel, shared by the channels) or (B, C, K*K, H, W) (one per pixel and
  channel), K odd, filter index row-major: ``k = i*K + j``.
- ``out[b, c, y, x] = sum_{i,j} w[b, i*K + j, y, x]
  * image[b, c, y + d*(i - r), x + d*(j - r)]`` with ``r = K // 2`` and
  ``d`` the dilation: a correlation, so a filter whose only 1 sits at
  offset (dy, dx) moves content by (-dy, -dx): ``out[y, x] = image[y + dy, x + dx]``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "PADDINGS",
    "apply_basis",
    "expected_flow",
    "filter_flow",
    "filter_flow_linear",
    "filter_flow_reference",
    "filter_flow_up",
    "identity_filters",
]

#: Padding modes understood by :func:`filter_flow`.
PADDINGS: tuple[str, ...] = ("zeros", "reflect", "replicate")
_TORCH_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate"}
# Accumulating K*K products in 8 mantissa bits (bfloat16) loses the sum, so
# low-precision inputs are accumulated in float32 and rounded once at the end.
_LOW_PRECISION = (torch.float16, torch.bfloat16)


# ----------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------


def _kernel_size(filters: torch.Tensor, fn: str) -> int:
    """K from the K*K filter dimension; raises unless K*K is an odd square."""
    kk = filters.shape[-3]
    k = math.isqrt(kk)
    if k * k != kk or k % 2 == 0:
        raise ValueError(
            f"{fn}: the filter dimension must be K*K for an odd K (1, 9, 25, 49, ...), "
            f"got {kk} in filters of shape {tuple(filters.shape)}"
        )
    return k


def _check_filters(filters: object, fn: str) -> tuple[int, bool]:
    """Checks a filter tensor on its own; returns (K, per_channel)."""
    if not isinstance(filters, torch.Tensor):
        raise TypeError(f"{fn}: filters must be a torch.Tensor, got {type(filters).__name__}")
    if filters.ndim not in (4, 5):
        raise ValueError(
            f"{fn}: filters must be (B, K*K, H, W) or (B, C, K*K, H, W), "
            f"got {filters.ndim} dimensions of shape {tuple(filters.shape)}"
        )
    if not filters.is_floating_point():
        raise TypeError(f"{fn}: filters must have a floating-point dtype, got {filters.dtype}")
    return _kernel_size(filters, fn), filters.ndim == 5


def _check_dilation(dilation: object, fn: str) -> int:
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 1:
        raise ValueError(f"{fn}: dilation must be an integer >= 1, got {dilation!r}")
    return dilation


def _check_image(image: object, fn: str) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{fn}: image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4:
        raise ValueError(
            f"{fn}: image must be (B, C, H, W), got {image.ndim} dimensions "
            f"of shape {tuple(image.shape)}"
        )
    if not image.is_floating_point():
        raise TypeError(f"{fn}: image must have a floating-point dtype, got {image.dtype}")


def _check_padding(padding: object, fn: str) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"{fn}: padding must be one of {PADDINGS}, got {padding!r}")


def _check_partner(image: torch.Tensor, other: torch.Tensor, name: str, fn: str) -> None:
    """``other`` (the filters, coefficients or basis) on the image's device and dtype."""
    if image.device != other.device:
        raise ValueError(
            f"{fn}: image and {name} must be on the same device, "
            f"got image on {image.device} and {name} on {other.device}"
        )
    if image.dtype != other.dtype and not _autocast_enabled(image.device.type):
        raise TypeError(
            f"{fn}: image and {name} must have the same dtype, "
            f"got image {image.dtype} and {name} {other.dtype}"
        )


def _check_size(image: torch.Tensor, k: int, padding: str, dilation: int, fn: str) -> None:
    """H, W >= 1, and wider than the pad for reflect padding."""
    h, w = image.shape[-2:]
    if h < 1 or w < 1:
        raise ValueError(f"{fn}: image must have H, W >= 1, got shape {tuple(image.shape)}")
    pad = dilation * (k // 2)
    if padding == "reflect" and (h <= pad or w <= pad):
        raise ValueError(
            f"{fn}: reflect padding of {pad} pixels (dilation*(K//2) = {dilation}*{k // 2}) needs "
            f"H and W > {pad}, got H={h}, W={w}; use padding='replicate' or 'zeros'"
        )


def _check_inputs(
    image: object, filters: object, padding: object, dilation: object, fn: str
) -> tuple[int, bool]:
    """Checks everything ``filter_flow`` is given; returns (K, per_channel)."""
    _check_image(image, fn)
    k, per_channel = _check_filters(filters, fn)
    assert isinstance(image, torch.Tensor) and isinstance(filters, torch.Tensor)  # narrowed above
    _check_padding(padding, fn)
    d = _check_dilation(dilation, fn)
    b, c, h, w = image.shape
    expected = (b, c, k * k, h, w) if per_channel else (b, k * k, h, w)
    if tuple(filters.shape) != expected:
        layout = "(B, C, K*K, H, W)" if per_channel else "(B, K*K, H, W)"
        raise ValueError(
            f"{fn}: filters of layout {layout} for an image of shape {tuple(image.shape)} "
            f"and K={k} must have shape {expected}, got {tuple(filters.shape)}"
        )
    _check_partner(image, filters, "filters", fn)
    _check_size(image, k, str(padding), d, fn)
    return k, per_channel


def _check_basis_inputs(
    image: object, coeffs: object, basis: object, padding: object, dilation: object
) -> int:
    """Checks everything ``apply_basis`` is given; returns K."""
    fn = "apply_basis"
    _check_image(image, fn)
    for name, value, layout in (("coeffs", coeffs, "(B, N, H, W)"), ("basis", basis, "(N, K*K)")):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(value).__name__}")
        per_channel = name == "coeffs" and value.ndim == 5
        if value.ndim != layout.count(",") + 1 and not per_channel:
            also = "; per-channel coefficients are (B, C, N, H, W)" if name == "coeffs" else ""
            raise ValueError(
                f"{fn}: {name} must be {layout}, got {value.ndim} dimensions of shape {tuple(value.shape)}{also}"
            )
        if not value.is_floating_point():
            raise TypeError(f"{fn}: {name} must have a floating-point dtype, got {value.dtype}")
    assert isinstance(image, torch.Tensor) and isinstance(coeffs, torch.Tensor)  # narrowed above
    assert isinstance(basis, torch.Tensor)
    kk = basis.shape[1]
    k = math.isqrt(kk)
    if k * k != kk or k % 2 == 0:
        raise ValueError(
            f"{fn}: the basis's filter dimension must be K*K for an odd K (1, 9, 25, 49, ...), "
            f"got {kk} in a basis of shape {tuple(basis.shape)}"
        )
    _check_padding(padding, fn)
    d = _check_dilation(dilation, fn)
    b, c, h, w = image.shape
    expected: tuple[int, ...] = (b, basis.shape[0], h, w)
    if coeffs.ndim == 5:  # per channel: C sets, or C' sets for a one-channel image
        expected = (b, coeffs.shape[1] if c == 1 else c, basis.shape[0], h, w)
    if tuple(coeffs.shape) != expected:
        raise ValueError(
            f"{fn}: coeffs for an image of shape {tuple(image.shape)} and a basis of "
            f"{basis.shape[0]} filters must have shape {expected}, got {tuple(coeffs.shape)}"
        )
    _check_partner(image, coeffs, "coeffs", fn)
    _check_partner(image, basis, "basis", fn)
    _check_size(image, k, str(padding), d, fn)
    return k


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has one flag per device type
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return device_type == "cuda" and torch.is_autocast_enabled()


def _pad(image: torch.Tensor, pad: int, padding: str) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H + 2*pad, W + 2*pad); differentiable."""
    if pad == 0:
        return image
    return F.pad(image, (pad, pad, pad, pad), mode=_TORCH_PAD_MODE[padding])


# ----------------------------------------------------------------------------
# The fast operator
# ----------------------------------------------------------------------------


def _windows(padded: torch.Tensor, k: int, dilation: int, h: int, w: int) -> list[torch.Tensor]:
    """The K*K shifted (B, C, H, W) views of ``padded``, row-major; no copy."""
    # unfold twice gives a (B, C, K, K, H, W) view whose (i, j) entry is the
    # window at offset (d*i, d*j); unbinding it in C++ costs far less than
    # K*K Python slices, which matters at ~3 us per torch call.
    grid = padded.unfold(2, h, dilation).unfold(3, w, dilation)
    return [view for row in grid.unbind(2) for view in row.unbind(2)]


def _filter_views(filters: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """K*K views broadcastable against (B, C, H, W): (B, 1, H, W) or (B, C, H, W)."""
    if filters.ndim == 4:
        return filters.unsqueeze(1).unbind(2)  # K*K x (B, 1, H, W)
    return filters.unbind(2)  # K*K x (B, C, H, W)


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _LOW_PRECISION else dtype


class _FilterFlowFunction(torch.autograd.Function):
    """forward(image (B, C, H, W), filters, k, dilation, padding) -> (B, C, H, W).

    Saves at most its two inputs: backward pads the image again (cheap)
    rather than keeping the padded copy alive between the passes.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        image: torch.Tensor,
        filters: torch.Tensor,
        k: int,
        dilation: int,
        padding: str,
    ) -> torch.Tensor:
        h, w = image.shape[-2:]
        acc_dtype = _accumulation_dtype(image.dtype)
        padded = _pad(image.to(acc_dtype), dilation * (k // 2), padding)
        xs = _windows(padded, k, dilation, h, w)
        ws = _filter_views(filters)
        out = torch.mul(xs[0], ws[0])  # (B, C, H, W), in acc_dtype by promotion
        for x_k, w_k in zip(xs[1:], ws[1:]):
            out.addcmul_(x_k, w_k)
        # Like torch's own mul: each input is kept only if the other's
        # gradient needs it, so training (image without grad) keeps just
        # the image, not the K*K-times larger filters.
        need_image, need_filters = ctx.needs_input_grad[:2]
        ctx.save_for_backward(image if need_filters else None, filters if need_image else None)
        ctx.k, ctx.dilation, ctx.padding = k, dilation, padding
        ctx.filters_meta = (filters.shape, filters.dtype)
        return out.to(image.dtype)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None, None]:
        image, filters = ctx.saved_tensors
        k, dilation, padding = ctx.k, ctx.dilation, ctx.padding
        need_image, need_filters = ctx.needs_input_grad[:2]
        if torch.is_grad_enabled():
            # create_graph=True: the caller wants to differentiate the
            # gradient itself, which the in-place loops below cannot record.
            return _differentiable_backward(ctx, grad_out, image, filters) + (None, None, None)
        b, c, h, w = grad_out.shape
        pad = dilation * (k // 2)
        acc_dtype = _accumulation_dtype(grad_out.dtype)
        g = grad_out.to(acc_dtype).contiguous()  # (B, C, H, W)

        grad_filters = None
        if need_filters:
            padded = _pad(image.to(acc_dtype), pad, padding)
            shape, dtype = ctx.filters_meta
            grad_filters = _grad_filters(g, _windows(padded, k, dilation, h, w), shape, dtype)

        grad_image = None
        if need_image:
            grad_padded = g.new_zeros(b, c, h + 2 * pad, w + 2 * pad)
            gxs = _windows(grad_padded, k, dilation, h, w)
            for gx_k, w_k in zip(gxs, _filter_views(filters)):
                gx_k.addcmul_(g, w_k)  # each product goes back to the pixel it read
            grad_image = _unpad(grad_padded, pad, padding).to(grad_out.dtype)
        return grad_image, grad_filters, None, None, None


def _differentiable_backward(
    ctx: torch.autograd.function.FunctionCtx,
    grad_out: torch.Tensor,
    image: torch.Tensor | None,
    filters: torch.Tensor | None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Both gradients as a recorded graph, for second derivatives only.

    Each gradient is the vector-Jacobian product of a map that is linear in
    the other input, so it is the gradient of the reference op at a zero
    stand-in for that input.  This builds the im2col tensor the fast path
    avoids; second derivatives of this op are rare enough to pay for it.
    """
    need_image, need_filters = ctx.needs_input_grad[:2]
    kwargs = {"padding": ctx.padding, "dilation": ctx.dilation}
    grad_image = grad_filters = None
    if need_filters:
        shape, dtype = ctx.filters_meta
        stand_in = grad_out.new_zeros(shape, dtype=dtype).requires_grad_()
        out = filter_flow_reference(image, stand_in, **kwargs)
        (grad_filters,) = torch.autograd.grad(out, stand_in, grad_out, create_graph=True)
    if need_image:
        stand_in = grad_out.new_zeros(grad_out.shape).requires_grad_()
        out = filter_flow_reference(stand_in, filters, **kwargs)
        (grad_image,) = torch.autograd.grad(out, stand_in, grad_out, create_graph=True)
    return grad_image, grad_filters


def _unpad(grad_padded: torch.Tensor, pad: int, padding: str) -> torch.Tensor:
    """(B, C, H + 2*pad, W + 2*pad) -> (B, C, H, W): the gradient of the unpadded image.

    Border pixels were read from image pixels (mirrored or repeated), so
    their gradient must be folded back; autograd through the pad itself does
    that exactly for every mode.
    """
    if pad == 0:
        return grad_padded
    b, c, hp, wp = grad_padded.shape
    with torch.enable_grad():
        # The pad is linear: its backward never reads the values it padded.
        leaf = grad_padded.new_empty(b, c, hp - 2 * pad, wp - 2 * pad).requires_grad_()
        (grad,) = torch.autograd.grad(_pad(leaf, pad, padding), leaf, grad_padded)
    return grad


def _grad_filters(
    g: torch.Tensor, xs: list[torch.Tensor], shape: torch.Size, dtype: torch.dtype
) -> torch.Tensor:
    """d(loss)/d(filters), a new tensor of the filters' ``shape`` and ``dtype``.

    g (B, C, H, W) is the output gradient; ``xs`` are the K*K shifted views
    of the padded image.  Entry k is ``g * xs[k]``, summed over channels when
    the filters are shared.
    """
    grad = torch.empty(shape, dtype=dtype, device=g.device)
    if grad.ndim == 5:
        for gw_k, x_k in zip(grad.unbind(2), xs):  # (B, C, H, W) each
            torch.mul(g, x_k, out=gw_k)
        return grad
    # Shared filters: a channel sum per offset, written straight into the
    # gradient with mul + addcmul_ (no (B, C, H, W) temporary per offset);
    # low-precision gradients get the sum in a float32 scratch first.
    scratch = None if grad.dtype == g.dtype else torch.empty_like(g[:, 0])
    g_channels = g.unbind(1)  # C x (B, H, W)
    for gw_k, x_k in zip(grad.unbind(1), xs):  # (B, H, W) each
        acc = gw_k if scratch is None else scratch
        x_channels = x_k.unbind(1)
        torch.mul(g_channels[0], x_channels[0], out=acc)
        for g_c, x_c in zip(g_channels[1:], x_channels[1:]):
            acc.addcmul_(g_c, x_c)
        if scratch is not None:
            gw_k.copy_(scratch)
    return grad


def filter_flow(
    image: torch.Tensor,
    filters: torch.Tensor,
    *,
    padding: str = "zeros",
    dilation: int = 1,
) -> torch.Tensor:
    """Applies a different KxK filter at every pixel of ``image``.

    Args:
        image: (B, C, H, W), floating point.
        filters: (B, K*K, H, W), one filter per pixel shared by the channels,
            or (B, C, K*K, H, W), one per pixel and channel; K odd, filter
            index ``i*K + j`` with i the row (y) and j the column (x) offset.
        padding: how pixels outside the image read: "zeros", "reflect"
            (mirror without repeating the edge; needs H, W > dilation*(K//2))
            or "replicate" (repeat the edge).
        dilation: spacing between filter taps, an integer >= 1.

    Returns:
        (B, C, H, W) with ``out[b, c, y, x] = sum_{i,j} w[b, i*K+j, y, x] *
        image[b, c, y + dilation*(i - K//2), x + dilation*(j - K//2)]``.
        Differentiable in both inputs, to any order (second derivatives go
        through the unfold reference and cost its memory).  Under autocast
        the op runs in float32 and returns float32; float16/bfloat16 inputs
        are accumulated in float32 and returned in their own dtype.

    Raises:
        TypeError: a non-tensor, a non-floating dtype, or dtypes that differ.
        ValueError: a wrong rank or shape, K*K not an odd square, an unknown
            padding, a bad dilation, different devices, or reflect padding
            wider than the image.

    The loop over K*K offsets never builds the (B, C*K*K, H, W) tensor of
    :func:`filter_flow_reference`; it keeps at most its inputs for backward
    (only the image when the image needs no gradient).  Contiguous filters
    are read plane by plane; channels-last filters are about 7x slower.
    """
    k, _ = _check_inputs(image, filters, padding, dilation, "filter_flow")
    if _autocast_enabled(image.device.type):
        with torch.autocast(image.device.type, enabled=False):
            return filter_flow(
                image.float(), filters.float(), padding=padding, dilation=dilation
            )
    return _FilterFlowFunction.apply(image, filters, k, dilation, padding)


# Image pixels per strip of rows in the inference paths of filter_flow_linear and apply_basis.
# filter_flow_linear's (K*K, strip) filters are 74 MB at K = 17; strips of 8k-128k pixels ran within
# noise of each other (deblur-shake's head and op at 1 MP, one thread: 1.1-1.6 s against 3.4 s for
# whole-image filters); fewer pixels mean more torch calls per image.
_STRIP_PIXELS = 1 << 16


def filter_flow_linear(
    image: torch.Tensor,
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    softmax: bool = False,
    padding: str = "zeros",
    dilation: int = 1,
) -> torch.Tensor:
    """:func:`filter_flow` with filters made by a 1x1 convolution of per-pixel features, a strip at a time.

    Args:
        image: (B, C, H, W), floating point.
        features: (B, E, H, W), any memory layout (a predictor's maps are channels-last).
        weight: (K*K, E) or a 1x1 convolution's (K*K, E, 1, 1); K odd, taps row-major.
        bias: (K*K,).
        softmax: the filters are the softmax over the taps of ``weight @ features + bias`` (the paper's
            head); otherwise that product itself.
        padding, dilation: as in :func:`filter_flow`.

    Returns:
        (B, C, H, W) ``= filter_flow(image, filters)`` with ``filters[b, :, y, x] = weight @
        features[b, :, y, x] + bias`` (softmax over taps if asked), the same sums in the same order.
        For inference only: no gradient. The (B, K*K, H, W) filters never exist: each strip of about
        ``_STRIP_PIXELS`` pixels gets its filters from one matrix product into a reused buffer and is
        filtered at once, so a full head's restore neither writes nor reads back 4*K*K bytes per pixel
        (1.2 GB per megapixel at K = 17), nor holds them.

    Raises:
        TypeError: a non-tensor or a non-floating dtype.
        ValueError: shapes that do not fit, K*K not an odd square, an unknown padding, a bad dilation,
            reflect padding wider than the image, or an input that requires a gradient.
    """
    fn = "filter_flow_linear"
    _check_image(image, fn)
    _check_image(features, fn)
    for name, value in (("weight", weight), ("bias", bias)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{fn}: {name} must be a floating-point torch.Tensor, got {type(value).__name__}")
    b, c, h, w = image.shape
    e = features.shape[1]
    if tuple(features.shape) != (b, e, h, w):
        raise ValueError(f"{fn}: features must be (B, E, H, W) = ({b}, E, {h}, {w}) like the image, "
                         f"got {tuple(features.shape)}")  # fmt: skip
    kk = weight.shape[0]
    if weight.shape not in ((kk, e), (kk, e, 1, 1)) or tuple(bias.shape) != (kk,):
        raise ValueError(f"{fn}: weight must be (K*K, {e}) or (K*K, {e}, 1, 1) and bias (K*K,), "
                         f"got {tuple(weight.shape)} and {tuple(bias.shape)}")  # fmt: skip
    k = _kernel_size(weight.new_empty(kk, 0, 0), fn)
    _check_padding(padding, fn)
    d = _check_dilation(dilation, fn)
    _check_size(image, k, padding, d, fn)
    if any(t.device != image.device for t in (features, weight, bias)):
        raise ValueError(f"{fn}: image, features, weight and bias must be on the same device")
    if torch.is_grad_enabled() and any(t.requires_grad for t in (image, features, weight, bias)):
        raise ValueError(f"{fn}: computes no gradient; use filter_flow for training")
    acc = _accumulation_dtype(image.dtype)
    pad = d * (k // 2)
    padded = _pad(image.to(acc), pad, padding)  # (B, C, H + 2*pad, W + 2*pad)
    maps = features.to(acc).permute(0, 2, 3, 1)  # (B, H, W, E): a view; rows contiguous if channels-last
    weight, bias = weight.reshape(kk, e).to(acc), bias.to(acc)[:, None]
    rows = max(1, _STRIP_PIXELS // w)
    buffer = torch.empty(kk * min(rows, h) * w, dtype=acc, device=image.device)
    out = torch.empty(b, c, h, w, dtype=acc, device=image.device)
    for i in range(b):
        for y0 in range(0, h, rows):
            hs = min(rows, h - y0)
            filters = buffer[: kk * hs * w].view(kk, hs * w)  # (K*K, P), contiguous for the product's out=
            torch.addmm(bias, weight, maps[i, y0 : y0 + hs].reshape(hs * w, e).T, out=filters)
            if softmax:
                filters = torch.softmax(filters, dim=0)
            ws = filters.view(kk, 1, hs, w).unbind(0)  # K*K x (1, hs, W)
            xs = [x[0] for x in _windows(padded[i : i + 1, :, y0 : y0 + hs + 2 * pad], k, d, hs, w)]  # K*K x (C, hs, W)
            strip = out[i, :, y0 : y0 + hs]  # (C, hs, W)
            torch.mul(xs[0], ws[0], out=strip)
            for x_k, w_k in zip(xs[1:], ws[1:]):
                strip.addcmul_(x_k, w_k)
    return out.to(image.dtype)


def filter_flow_up(
    image: torch.Tensor,
    filters: torch.Tensor,
    scale: int,
    *,
    padding: str = "replicate",
) -> torch.Tensor:
    """Filter flow from a low-resolution image to one ``scale`` times larger.

    Args:
        image: (B, C, h, w) low-resolution, floating point.
        filters: (B, K*K, scale*h, scale*w): one KxK filter per *output*
            pixel, read over the low-resolution neighbourhood of the pixel it
            lies in; or the same filters grouped by low-resolution pixel,
            (B, K*K, scale*scale, h, w), entry ``[b, k, p*scale + q, y, x]``
            for output pixel ``(scale*y + p, scale*x + q)`` (the order of
            ``F.pixel_unshuffle``; an upscaling model predicts this layout).
        scale: integer >= 1.
        padding: as :func:`filter_flow` (default "replicate").

    Returns:
        (B, C, scale*h, scale*w) with ``out[b, c, Y, X] = sum_{i,j}
        w[b, i*K+j, Y, X] * image[b, c, Y//scale + i - K//2, X//scale + j - K//2]``.

    This is :func:`filter_flow` with dilation ``scale`` on the nearest-neighbour
    upsampling of the image (``U[Y, X] = image[Y//s, X//s]``), so the filters
    a model returns apply with ``filter_flow`` too. It is computed in low
    resolution: for each channel, :func:`filter_flow` with per-channel
    filters maps the image, repeated once per phase, to the ``scale*scale``
    phase images, which ``F.pixel_shuffle`` interleaves. Only the output is
    rearranged, never the ``scale*scale`` times larger filters, and the fast
    op's gradients carry over.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"filter_flow_up: scale must be an integer >= 1, got {scale!r}")
    _check_image(image, "filter_flow_up")
    b, c, h, w = image.shape
    if not isinstance(filters, torch.Tensor) or filters.ndim not in (4, 5):
        shape = tuple(filters.shape) if isinstance(filters, torch.Tensor) else type(filters).__name__
        raise ValueError(f"filter_flow_up: filters must be (B, K*K, s*h, s*w) or (B, K*K, s*s, h, w), got {shape}")
    kk = filters.shape[1]
    _kernel_size(filters[:, :, 0] if filters.ndim == 5 else filters, "filter_flow_up")  # K*K: an odd square
    if filters.ndim == 4:
        if tuple(filters.shape) != (b, kk, scale * h, scale * w):
            raise ValueError(
                f"filter_flow_up: filters for an image of shape {tuple(image.shape)} and scale {scale} must have "
                f"shape {(b, kk, scale * h, scale * w)}, got {tuple(filters.shape)}"
            )
        filters = F.pixel_unshuffle(filters, scale).view(b, kk, scale * scale, h, w)  # (B, K*K, s*s, h, w)
    elif tuple(filters.shape) != (b, kk, scale * scale, h, w):
        raise ValueError(
            f"filter_flow_up: phase filters for an image of shape {tuple(image.shape)} and scale {scale} must "
            f"have shape {(b, kk, scale * scale, h, w)}, got {tuple(filters.shape)}"
        )
    per_phase = filters.transpose(1, 2)  # (B, s*s, K*K, h, w): one filter per phase "channel"
    phases = [
        filter_flow(image[:, i : i + 1].expand(b, scale * scale, h, w), per_phase, padding=padding)
        for i in range(c)
    ]  # C x (B, s*s, h, w)
    return F.pixel_shuffle(torch.cat(phases, dim=1), scale)  # (B, C, s*h, s*w)


def filter_flow_reference(
    image: torch.Tensor,
    filters: torch.Tensor,
    *,
    padding: str = "zeros",
    dilation: int = 1,
) -> torch.Tensor:
    """The plain unfold ("im2col") version of :func:`filter_flow`, same contract.

    Materialises the (B, C, K*K, H, W) patch tensor, as the paper's code
    does; kept as the ground truth for tests and the baseline of the
    benchmark, not for use.
    """
    k, per_channel = _check_inputs(image, filters, padding, dilation, "filter_flow_reference")
    if image.dtype != filters.dtype:  # only reachable under autocast
        image, filters = image.float(), filters.float()
    b, c, h, w = image.shape
    padded = _pad(image, dilation * (k // 2), padding)
    patches = F.unfold(padded, k, dilation=dilation).view(b, c, k * k, h, w)
    weights = filters if per_channel else filters.unsqueeze(1)  # (B, C or 1, K*K, H, W)
    return (patches * weights).sum(dim=2)


def apply_basis(
    image: torch.Tensor,
    coeffs: torch.Tensor,
    basis: torch.Tensor,
    *,
    padding: str = "zeros",
    dilation: int = 1,
) -> torch.Tensor:
    """:func:`filter_flow` with low-rank filters ``coeffs @ basis``, never building them.

    Args:
        image: (B, C, H, W), floating point.
        coeffs: (B, N, H, W), the weight of each basis filter at every pixel,
            shared by the channels; or (B, C, N, H, W), one set per channel;
            or, for a one-channel image, (B, C', N, H, W): C' filters of that
            channel from one set of correlations (the output has C' channels).
        basis: (N, K*K), N filters of K x K taps (K odd), tap index ``i*K + j``
            as in :func:`filter_flow`.
        padding, dilation: as in :func:`filter_flow`.

    Returns:
        (B, C, H, W) ``= filter_flow(image, filters)`` with ``filters[b, k, y, x]
        = sum_n coeffs[b, n, y, x] * basis[n, k]`` (per channel: ``filters[b, c,
        k, y, x]``; (B, C', H, W) for a one-channel image with C' sets).  Because the filters are
        linear in the coefficients, N ordinary correlations of the image
        (one ``conv2d``) replace gathering K*K neighbours per pixel, and the
        (B, K*K, H, W) filters never exist.  Differentiable in all three
        inputs; without a gradient to compute it works a strip of rows at a
        time.  Under autocast it runs in float32 and returns float32.

    Raises:
        TypeError: a non-tensor, a non-floating dtype, or dtypes that differ.
        ValueError: a wrong rank or shape, K*K not an odd square, an unknown
            padding, a bad dilation, different devices, or reflect padding
            wider than the image.
    """
    k = _check_basis_inputs(image, coeffs, basis, padding, dilation)
    if _autocast_enabled(image.device.type):
        with torch.autocast(image.device.type, enabled=False):
            return apply_basis(
                image.float(), coeffs.float(), basis.float(), padding=padding, dilation=dilation
            )
    b, c, h, w = image.shape
    n = basis.shape[0]
    pad = dilation * (k // 2)
    flat = image.reshape(b * c, 1, h, w)  # (B*C, 1, H, W)
    weight = basis.reshape(n, 1, k, k)  # (N, 1, K, K)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (image, coeffs, basis)):
        if padding == "zeros":
            resp = F.conv2d(flat, weight, padding=pad, dilation=dilation)  # (B*C, N, H, W)
        else:
            resp = F.conv2d(_pad(flat, pad, padding), weight, dilation=dilation)  # (B*C, N, H, W)
        return _contract(resp.view(b, c, n, h, w), coeffs)  # (B, C or C', H, W)
    # Inference: strips of rows. oneDNN's correlation of a large one-channel image with K x K filters
    # can fall off a cliff on some CPUs (an AVX2 AMD EPYC: 3 x 600 x 600 at K = 17 in 1.4 s,
    # 3 x 700 x 700 in 60 s); strips of _STRIP_PIXELS stay on the fast side and never hold the
    # (B, C, N, H, W) responses.
    padded = _pad(flat, pad, padding)  # (B*C, 1, H + 2*pad, W + 2*pad)
    rows = max(1, _STRIP_PIXELS // w)
    out = None
    for y0 in range(0, h, rows):
        hs = min(rows, h - y0)
        resp = F.conv2d(padded[:, :, y0 : y0 + hs + 2 * pad], weight, dilation=dilation)  # (B*C, N, hs, W)
        strip = _contract(resp.view(b, c, n, hs, w), coeffs[..., y0 : y0 + hs, :])  # (B, C or C', hs, W)
        if hs == h:
            return strip
        if out is None:
            out = strip.new_empty(*strip.shape[:2], h, w)
        out[..., y0 : y0 + hs, :] = strip
    assert out is not None  # h >= 1
    return out


def _contract(resp: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """``sum_n resp[:, c, n] * coeffs[..., n]``: resp (B, C, N, H, W), coeffs as :func:`apply_basis` takes them."""
    n = resp.shape[2]
    sets = coeffs if coeffs.ndim == 5 else coeffs.unsqueeze(1)  # (B, C or C' or 1, N, H, W)
    if torch.is_grad_enabled() and (resp.requires_grad or coeffs.requires_grad):
        # With autograd: one product and a sum (broadcast over C or C'). einsum ran this as H*W tiny
        # matrix products with transposed copies, 4-5x slower forward and backward on a CPU; a loop of
        # in-place multiply-adds would keep N graph nodes.
        return (resp * sets).sum(dim=2)  # (B, C or C', H, W)
    # Inference: N in-place multiply-adds of whole planes, no (B, C, N, H, W) temporary.
    out = resp[:, :, 0] * sets[:, :, 0]  # (B, C or C', H, W)
    for i in range(1, n):
        out.addcmul_(resp[:, :, i], sets[:, :, i])
    return out


# ----------------------------------------------------------------------------
# Filters in, numbers out
# ----------------------------------------------------------------------------


def _offsets(k: int, dilation: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(2, K*K): row 0 the x (column) offset d*(j - r), row 1 the y offset d*(i - r)."""
    r = k // 2
    steps = torch.arange(-r, r + 1, dtype=dtype, device=device) * dilation
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")  # (K, K) each, [i, j]
    return torch.stack([dx.reshape(-1), dy.reshape(-1)])


def expected_flow(filters: torch.Tensor, *, dilation: int = 1) -> torch.Tensor:
    """Mean displacement of every pixel's filter (paper section 4.2).

    Args:
        filters: (B, K*K, H, W) or per-channel (B, C, K*K, H, W), K odd.
        dilation: the dilation the filters are applied with; scales offsets.

    Returns:
        (B, 2, H, W), or (B, C, 2, H, W) for per-channel filters:
        ``sum_k w_k * (dx_k, dy_k)`` with channel 0 the x (column)
        displacement ``dilation*(j - K//2)`` and channel 1 the y (row)
        displacement ``dilation*(i - K//2)``.  A delta at offset (dy, dx)
        gives exactly (dx, dy): the output pixel reads the input that far
        away.  For filters that are not normalised this is a weighted sum,
        not a mean.  Differentiable.
    """
    k, _ = _check_filters(filters, "expected_flow")
    d = _check_dilation(dilation, "expected_flow")
    kk, h, w = filters.shape[-3:]
    offsets = _offsets(k, d, filters.dtype, filters.device)  # (2, K*K)
    flat = filters.reshape(-1, kk, h * w)  # (B or B*C, K*K, H*W)
    flow = torch.matmul(offsets, flat)  # (B or B*C, 2, H*W)
    return flow.view(*filters.shape[:-3], 2, h, w)


def identity_filters(
    batch: int,
    k: int,
    height: int,
    width: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(B, K*K, H, W) delta filters: :func:`filter_flow` with them returns the image.

    ``k`` must be odd; ``dtype`` and ``device`` default to torch's defaults.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise ValueError(f"identity_filters: k must be an odd integer >= 1, got {k!r}")
    for name, value in (("batch", batch), ("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"identity_filters: {name} must be an integer >= 0, got {value!r}")
    filters = torch.zeros(batch, k * k, height, width, dtype=dtype, device=device)
    filters[:, (k * k) // 2] = 1
    return filters
