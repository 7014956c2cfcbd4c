from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from pff import ops
from pff.ops import (
    PADDINGS,
    apply_basis,
    expected_flow,
    filter_flow,
    filter_flow_linear,
    filter_flow_reference,
    identity_filters,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _inputs(
    shape: tuple[int, int, int, int],
    k: int,
    *,
    per_channel: bool = False,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    b, c, h, w = shape
    gen = _gen(seed)
    image = torch.randn(shape, generator=gen, dtype=dtype)
    fshape = (b, c, k * k, h, w) if per_channel else (b, k * k, h, w)
    filters = torch.randn(fshape, generator=gen, dtype=dtype) / k
    return image, filters


def _delta(b: int, k: int, h: int, w: int, dy: int, dx: int) -> torch.Tensor:
    """(B, K*K, H, W) filters whose only 1 is at row offset dy, column offset dx."""
    r = k // 2
    filters = torch.zeros(b, k * k, h, w)
    filters[:, (dy + r) * k + (dx + r)] = 1
    return filters


# ----------------------------------------------------------------------------
# Smoke and exact values
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("per_channel", [False, True])
def test_smoke_shape_and_dtype(per_channel):
    image, filters = _inputs((2, 3, 5, 7), 3, per_channel=per_channel)
    out = filter_flow(image, filters)
    assert out.shape == image.shape
    assert out.dtype == image.dtype


def test_hand_computed_values():
    # 1x1x2x3 image, K = 3: every pixel averages its row neighbours (zeros
    # outside), except pixel (1, 2), which copies the pixel above it.
    image = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]])
    filters = torch.zeros(1, 9, 2, 3)
    filters[0, 3] = 0.5  # (i, j) = (1, 0): left neighbour
    filters[0, 5] = 0.5  # (i, j) = (1, 2): right neighbour
    filters[0, :, 1, 2] = 0
    filters[0, 1, 1, 2] = 1  # (i, j) = (0, 1): the pixel above
    expected = torch.tensor([[[[1.0, 2.0, 1.0], [2.5, 5.0, 3.0]]]])
    torch.testing.assert_close(filter_flow(image, filters), expected)
    torch.testing.assert_close(filter_flow_reference(image, filters), expected)


# ----------------------------------------------------------------------------
# Identities
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dilation", [1, 2])
def test_delta_filter_returns_input(padding, dilation):
    image, _ = _inputs((2, 3, 7, 6), 1)
    filters = identity_filters(2, 5, 7, 6)
    assert torch.equal(filter_flow(image, filters, padding=padding, dilation=dilation), image)


@pytest.mark.parametrize("dy, dx", [(1, 0), (0, 1), (-2, 1), (2, -2)])
def test_shifted_delta_reads_that_offset(dy, dx):
    # Sign convention: a 1 at offset (dy, dx) makes out[y, x] = image[y + dy, x + dx].
    image, _ = _inputs((1, 2, 9, 8), 1)
    out = filter_flow(image, _delta(1, 5, 9, 8, dy, dx))
    h, w = image.shape[-2:]
    ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    ys_src, xs_src = slice(ys.start + dy, ys.stop + dy), slice(xs.start + dx, xs.stop + dx)
    assert torch.equal(out[..., ys, xs], image[..., ys_src, xs_src])
    outside = torch.ones_like(out, dtype=torch.bool)
    outside[..., ys, xs] = False
    assert torch.all(out[outside] == 0)  # zeros padding reads zeros


@pytest.mark.parametrize("dy, dx", [(0, 0), (1, 0), (0, 1), (-2, 1), (2, -2)])
@pytest.mark.parametrize("dilation", [1, 3])
def test_expected_flow_of_shifted_delta_is_that_shift(dy, dx, dilation):
    flow = expected_flow(_delta(2, 5, 4, 3, dy, dx), dilation=dilation)
    assert flow.shape == (2, 2, 4, 3)
    assert torch.all(flow[:, 0] == dx * dilation)
    assert torch.all(flow[:, 1] == dy * dilation)


def test_expected_flow_per_channel_and_mixture():
    filters = torch.zeros(1, 2, 9, 3, 4)
    filters[:, 0, 5] = 1  # channel 0: (i, j) = (1, 2) -> (dx, dy) = (1, 0)
    filters[:, 1, 0] = 0.25  # channel 1: a quarter at (-1, -1) ...
    filters[:, 1, 7] = 0.75  # ... and three quarters at (dy, dx) = (1, 0)
    flow = expected_flow(filters)
    assert flow.shape == (1, 2, 2, 3, 4)
    torch.testing.assert_close(flow[0, 0, :, 0, 0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(flow[0, 1, :, 0, 0], torch.tensor([-0.25, 0.5]))


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("dilation", [1, 2])
def test_constant_filters_equal_conv2d(k, dilation):
    image, _ = _inputs((2, 3, 9, 7), 1)
    kernel = torch.randn(k, k, generator=_gen(1))
    filters = kernel.reshape(1, k * k, 1, 1).expand(2, k * k, 9, 7)
    b, c, h, w = image.shape
    conv = F.conv2d(
        image.reshape(b * c, 1, h, w),
        kernel[None, None],
        padding=dilation * (k // 2),
        dilation=dilation,
    ).reshape(b, c, h, w)
    torch.testing.assert_close(filter_flow(image, filters, dilation=dilation), conv)


@pytest.mark.parametrize("k", [3, 5])
def test_constant_per_channel_filters_equal_grouped_conv2d(k):
    image, _ = _inputs((2, 3, 8, 9), 1)
    kernels = torch.randn(3, 1, k, k, generator=_gen(2))  # (C, 1, K, K)
    filters = kernels.reshape(1, 3, k * k, 1, 1).expand(2, 3, k * k, 8, 9)
    conv = F.conv2d(image, kernels, padding=k // 2, groups=3)
    torch.testing.assert_close(filter_flow(image, filters), conv)


@pytest.mark.parametrize("padding", PADDINGS)
def test_linear_in_the_image(padding):
    x, filters = _inputs((2, 3, 7, 9), 5, seed=3)
    y, _ = _inputs((2, 3, 7, 9), 5, seed=4)
    a, b = 1.5, -0.75
    lhs = filter_flow(a * x + b * y, filters, padding=padding)
    fx, fy = (filter_flow(t, filters, padding=padding) for t in (x, y))
    torch.testing.assert_close(lhs, a * fx + b * fy)


# ----------------------------------------------------------------------------
# Fast op against the reference
# ----------------------------------------------------------------------------


CASES = [
    case
    for case in itertools.product(
        [(2, 3, 9, 7), (1, 1, 5, 11), (3, 2, 6, 13)],  # odd and mixed sizes
        [1, 3, 5, 7],
        PADDINGS,
        [1, 2],
        [False, True],
    )
    # reflect padding wider than the image is an error, tested below
    if not (case[2] == "reflect" and min(case[0][-2:]) <= case[3] * (case[1] // 2))
]


@pytest.mark.parametrize("shape, k, padding, dilation, per_channel", CASES)
def test_fast_equals_float64_reference(shape, k, padding, dilation, per_channel):
    image, filters = _inputs(shape, k, per_channel=per_channel, seed=k + dilation)
    grad_out = torch.randn(shape, generator=_gen(5))

    image.requires_grad_()
    filters.requires_grad_()
    out = filter_flow(image, filters, padding=padding, dilation=dilation)
    grads = torch.autograd.grad(out, (image, filters), grad_out)

    image64 = image.detach().double().requires_grad_()
    filters64 = filters.detach().double().requires_grad_()
    ref = filter_flow_reference(image64, filters64, padding=padding, dilation=dilation)
    ref_grads = torch.autograd.grad(ref, (image64, filters64), grad_out.double())

    tol = {"atol": 1e-5, "rtol": 1e-5}
    torch.testing.assert_close(out, ref.float(), **tol)
    torch.testing.assert_close(grads[0], ref_grads[0].float(), **tol)
    torch.testing.assert_close(grads[1], ref_grads[1].float(), **tol)


@pytest.mark.parametrize("which", ["image", "filters"])
def test_gradient_of_one_input_only(which):
    image, filters = _inputs((2, 3, 7, 5), 3)
    leaf = image if which == "image" else filters
    leaf.requires_grad_()
    fast, ref = (
        torch.autograd.grad(op(image, filters, padding="reflect").sum(), leaf)[0]
        for op in (filter_flow, filter_flow_reference)
    )
    torch.testing.assert_close(fast, ref)


def test_non_contiguous_inputs():
    image, filters = _inputs((2, 3, 7, 9), 3)
    image_cl = image.contiguous(memory_format=torch.channels_last)
    filters_t = filters.transpose(2, 3).contiguous().transpose(2, 3)  # same values, other strides
    image_cl.requires_grad_()
    filters_t.requires_grad_()
    out = filter_flow(image_cl, filters_t, padding="replicate")
    torch.testing.assert_close(out, filter_flow_reference(image, filters, padding="replicate"))
    out.sum().backward()
    assert image_cl.grad.shape == image.shape and filters_t.grad.shape == filters.shape


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dilation", [1, 2])
def test_gradcheck(per_channel, padding, dilation):
    image, filters = _inputs((1, 2, 5, 6), 3, per_channel=per_channel, dtype=torch.float64)
    image.requires_grad_()
    filters.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, w: filter_flow(x, w, padding=padding, dilation=dilation), (image, filters)
    )


def test_gradcheck_expected_flow():
    _, filters = _inputs((1, 1, 3, 4), 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(expected_flow, (filters.requires_grad_(),))


# ----------------------------------------------------------------------------
# Memory: nothing of the im2col size, nothing but the inputs kept
# ----------------------------------------------------------------------------


class _LargestAllocation(TorchDispatchMode):
    """Records the largest storage any op returns (views share their base's)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.untyped_storage().nbytes())
        return out


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("padding", PADDINGS)
def test_never_builds_a_patch_tensor(per_channel, padding):
    image, filters = _inputs((2, 3, 10, 12), 5, per_channel=per_channel)
    image.requires_grad_()
    filters.requires_grad_()
    grad_out = torch.randn(image.shape)
    with _LargestAllocation() as mode:
        out = filter_flow(image, filters, padding=padding)
        torch.autograd.grad(out, (image, filters), grad_out)
    # The filter gradient itself is the largest thing the op has to make.
    assert mode.largest <= filters.numel() * filters.element_size()


@pytest.mark.parametrize("image_grad", [False, True])
def test_keeps_only_inputs_for_backward(image_grad):
    image, filters = _inputs((2, 3, 8, 8), 5)
    image.requires_grad_(image_grad)
    filters.requires_grad_()
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        filter_flow(image, filters)
    ptrs = {t.untyped_storage().data_ptr() for t in saved}
    # Training (image without grad) needs only the image for the filter gradient.
    expected = {image.untyped_storage().data_ptr()}
    if image_grad:
        expected.add(filters.untyped_storage().data_ptr())
    assert ptrs == expected


# ----------------------------------------------------------------------------
# Low precision and autocast
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, tol", [(torch.bfloat16, 2e-2), (torch.float16, 2e-3)])
def test_low_precision_accumulates_in_float32(dtype, tol):
    image, filters = _inputs((2, 3, 9, 7), 7)
    image, filters = image.to(dtype), filters.to(dtype)
    image.requires_grad_()
    filters.requires_grad_()
    out = filter_flow(image, filters)
    assert out.dtype == dtype
    ref = filter_flow_reference(image.detach().double(), filters.detach().double())
    # One rounding of the result, not one per K*K term.
    torch.testing.assert_close(out.double(), ref, atol=tol, rtol=tol)
    out.sum().backward()
    assert image.grad.dtype == dtype and filters.grad.dtype == dtype


def test_autocast_runs_in_float32():
    image, filters = _inputs((1, 3, 6, 5), 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = filter_flow(image, filters.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, filter_flow(image, filters.bfloat16().float()))


# ----------------------------------------------------------------------------
# identity_filters
# ----------------------------------------------------------------------------


def test_identity_filters_shape_and_centre():
    filters = identity_filters(2, 3, 4, 5, dtype=torch.float64)
    assert filters.shape == (2, 9, 4, 5) and filters.dtype == torch.float64
    assert torch.all(filters[:, 4] == 1) and filters.sum() == 2 * 4 * 5
    assert torch.all(expected_flow(filters) == 0)


@pytest.mark.parametrize("k", [0, 2, -1, 3.0, True])
def test_identity_filters_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be an odd integer"):
        identity_filters(1, k, 4, 4)


def test_identity_filters_rejects_bad_size():
    with pytest.raises(ValueError, match="height must be an integer >= 0, got -1"):
        identity_filters(1, 3, -1, 4)


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------


BAD_ARGUMENTS = [
    # (image shape, filters shape, keyword arguments, expected message)
    ((3, 5, 5), (1, 9, 5, 5), {}, r"image must be \(B, C, H, W\), got 3 dim"),
    ((1, 3, 5, 5), (9, 5, 5), {}, r"filters must be \(B, K\*K, H, W\) or"),
    ((1, 3, 5, 5), (1, 3, 1, 9, 5, 5), {}, "got 6 dimensions"),
    ((1, 3, 5, 5), (1, 4, 5, 5), {}, r"K\*K for an odd K .* got 4"),
    ((1, 3, 5, 5), (1, 8, 5, 5), {}, r"K\*K for an odd K .* got 8"),
    ((1, 3, 5, 5), (1, 0, 5, 5), {}, r"K\*K for an odd K .* got 0"),
    ((1, 3, 5, 5), (1, 9, 5, 4), {}, r"must have shape \(1, 9, 5, 5\), got \(1, 9, 5, 4\)"),
    ((2, 3, 5, 5), (1, 9, 5, 5), {}, r"must have shape \(2, 9, 5, 5\)"),
    ((1, 3, 5, 5), (1, 2, 9, 5, 5), {}, r"must have shape \(1, 3, 9, 5, 5\)"),
    ((1, 3, 0, 5), (1, 9, 0, 5), {}, "H, W >= 1"),
    ((1, 3, 5, 5), (1, 9, 5, 5), {"padding": "circular"},
     r"padding must be one of \('zeros', 'reflect', 'replicate'\), got 'circular'"),
    ((1, 3, 5, 5), (1, 9, 5, 5), {"dilation": 0}, "dilation must be an integer >= 1, got 0"),
    ((1, 3, 5, 5), (1, 9, 5, 5), {"dilation": 1.0}, "dilation must be an integer"),
    ((1, 3, 4, 9), (1, 25, 4, 9), {"padding": "reflect", "dilation": 2},
     r"reflect padding of 4 pixels .* needs H and W > 4, got H=4, W=9"),
    ((1, 3, 3, 8), (1, 9, 3, 8), {"padding": "reflect", "dilation": 3},
     "needs H and W > 3, got H=3, W=8"),
]


@pytest.mark.parametrize("fn", [filter_flow, filter_flow_reference])
@pytest.mark.parametrize("image_shape, filters_shape, kwargs, match", BAD_ARGUMENTS)
def test_shape_and_argument_errors(fn, image_shape, filters_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(torch.zeros(image_shape), torch.zeros(filters_shape), **kwargs)


def test_dtype_and_type_errors():
    image, filters = torch.zeros(1, 3, 5, 5), torch.zeros(1, 9, 5, 5)
    with pytest.raises(TypeError, match="same dtype, got image torch.float32 and filters torch.fl"):
        filter_flow(image, filters.double())
    with pytest.raises(TypeError, match="image must have a floating-point dtype, got torch.int64"):
        filter_flow(image.long(), filters)
    with pytest.raises(TypeError, match="filters must have a floating-point dtype"):
        filter_flow(image, filters.int())
    with pytest.raises(TypeError, match="image must be a torch.Tensor, got ndarray"):
        filter_flow(image.numpy(), filters)
    with pytest.raises(TypeError, match="filters must be a torch.Tensor, got list"):
        filter_flow(image, [1.0])


def test_device_mismatch_error():
    image, filters = torch.zeros(1, 3, 5, 5), torch.zeros(1, 9, 5, 5, device="meta")
    with pytest.raises(ValueError, match="same device, got image on cpu and filters on meta"):
        filter_flow(image, filters)


def test_expected_flow_errors():
    with pytest.raises(ValueError, match="expected_flow: the filter dimension must be K\\*K"):
        expected_flow(torch.zeros(1, 6, 3, 3))
    with pytest.raises(ValueError, match="expected_flow: filters must be"):
        expected_flow(torch.zeros(9, 3, 3))
    with pytest.raises(ValueError, match="expected_flow: dilation must be an integer >= 1"):
        expected_flow(torch.zeros(1, 9, 3, 3), dilation=0)


@pytest.mark.parametrize("per_channel", [False, True])
def test_gradgradcheck(per_channel):
    image, filters = _inputs((1, 2, 4, 5), 3, per_channel=per_channel, dtype=torch.float64)
    image.requires_grad_()
    filters.requires_grad_()
    assert torch.autograd.gradgradcheck(
        lambda x, w: filter_flow(x, w, padding="reflect", dilation=2), (image, filters)
    )



# ----------------------------------------------------------------------------
# apply_basis: filter flow with low-rank filters coeffs @ basis
# ----------------------------------------------------------------------------


def _basis_inputs(
    shape: tuple[int, int, int, int], k: int, n: int, *, dtype: torch.dtype = torch.float32, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b, c, h, w = shape
    gen = _gen(seed)
    image = torch.randn(shape, generator=gen, dtype=dtype)
    coeffs = torch.randn(b, n, h, w, generator=gen, dtype=dtype)
    basis = torch.randn(n, k * k, generator=gen, dtype=dtype) / k
    return image, coeffs, basis


def _low_rank_filters(coeffs: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bnhw,nk->bkhw", coeffs, basis)  # (B, K*K, H, W)


def test_apply_basis_smoke_shape_and_dtype():
    image, coeffs, basis = _basis_inputs((2, 3, 5, 7), 3, 4)
    out = apply_basis(image, coeffs, basis)
    assert out.shape == image.shape
    assert out.dtype == image.dtype


def test_apply_basis_hand_computed_values():
    # 1x1x2x3 image, K = 3, two basis filters: 0 reads the left neighbour
    # (tap (1, 0)), 1 the pixel above (tap (0, 1)); zeros outside.  Every
    # pixel takes half its left neighbour; pixel (1, 2) adds twice the pixel above.
    image = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]])
    basis = torch.zeros(2, 9)
    basis[0, 3] = 1
    basis[1, 1] = 1
    coeffs = torch.zeros(1, 2, 2, 3)
    coeffs[0, 0] = 0.5
    coeffs[0, 1, 1, 2] = 2
    expected = torch.tensor([[[[0.0, 0.5, 1.0], [0.0, 2.0, 8.5]]]])
    torch.testing.assert_close(apply_basis(image, coeffs, basis), expected, rtol=0, atol=0)


def test_apply_basis_is_correlation_with_row_major_taps():
    # One basis filter with a single 1 at row 0, column 2 of a 3x3 window:
    # the output pixel (y, x) reads input (y - 1, x + 1).
    basis = torch.zeros(1, 9, dtype=torch.float64)
    basis[0, 2] = 1
    image = torch.arange(20, dtype=torch.float64).view(1, 1, 4, 5)
    out = apply_basis(image, torch.ones(1, 1, 4, 5, dtype=torch.float64), basis)
    torch.testing.assert_close(out[0, 0, 1:, :-1], image[0, 0, :-1, 1:], rtol=0, atol=0)
    assert out[0, 0, 0].eq(0).all() and out[0, 0, :, -1].eq(0).all()  # zero padding


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("k, n", [(1, 1), (3, 4), (5, 3)])
def test_apply_basis_equals_filter_flow_of_its_filters(padding, dilation, k, n):
    image, coeffs, basis = _basis_inputs((2, 3, 7, 9), k, n, dtype=torch.float64)
    out = apply_basis(image, coeffs, basis, padding=padding, dilation=dilation)
    expected = filter_flow(image, _low_rank_filters(coeffs, basis), padding=padding, dilation=dilation)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dilation", [1, 2])
def test_apply_basis_gradcheck(padding, dilation):
    image, coeffs, basis = _basis_inputs((1, 2, 5, 6), 3, 2, dtype=torch.float64)
    inputs = (image.requires_grad_(), coeffs.requires_grad_(), basis.requires_grad_())
    assert torch.autograd.gradcheck(
        lambda x, c, b: apply_basis(x, c, b, padding=padding, dilation=dilation), inputs
    )


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("image_channels, sets", [(3, 3), (1, 2)])
def test_apply_basis_per_channel_coefficients_equal_filter_flow(padding, image_channels, sets):
    # One coefficient set per channel, or several sets of a one-channel image from one set of correlations.
    image, _, basis = _basis_inputs((2, image_channels, 7, 9), 3, 4, dtype=torch.float64)
    coeffs = torch.randn(2, sets, 4, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    out = apply_basis(image, coeffs, basis, padding=padding, dilation=2)
    assert out.shape == (2, sets, 7, 9)
    for c in range(sets):
        expected = filter_flow(image[:, c % image_channels : c % image_channels + 1],
                               _low_rank_filters(coeffs[:, c], basis), padding=padding, dilation=2)  # fmt: skip
        torch.testing.assert_close(out[:, c : c + 1], expected)
    inputs = (image[:1, :, :5, :6].clone().requires_grad_(), coeffs[:1, :, :, :5, :6].clone().requires_grad_(),
              basis.clone().requires_grad_())  # fmt: skip
    assert torch.autograd.gradcheck(lambda x, k, b: apply_basis(x, k, b, padding=padding), inputs)
    with pytest.raises(ValueError, match=r"must have shape \(2, 3, 4, 7, 9\), got \(2, 2, 4, 7, 9\)"):
        apply_basis(torch.zeros(2, 3, 7, 9), torch.zeros(2, 2, 4, 7, 9), torch.zeros(4, 9))


@pytest.mark.parametrize("image_channels, coeffs_shape", [(3, (2, 4, 7, 9)), (3, (2, 3, 4, 7, 9)), (1, (2, 2, 4, 7, 9))])
@pytest.mark.parametrize("strip", [10**6, 20])  # one strip; strips of 2 rows, the last one short
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_apply_basis_inference_and_training_paths_agree(monkeypatch, image_channels, coeffs_shape, strip, padding):
    # Without gradients the image is correlated a strip of rows at a time and the contraction over the basis runs
    # as in-place multiply-adds; with them, in one piece as a product and a sum.
    monkeypatch.setattr(ops, "_STRIP_PIXELS", strip)
    image, _, basis = _basis_inputs((2, image_channels, 7, 9), 3, 4, dtype=torch.float64)
    coeffs = torch.randn(coeffs_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        fast = apply_basis(image, coeffs, basis, padding=padding, dilation=2)
    tracked = apply_basis(image, coeffs.clone().requires_grad_(), basis, padding=padding, dilation=2)
    assert tracked.requires_grad and not fast.requires_grad
    torch.testing.assert_close(fast, tracked.detach(), rtol=0, atol=1e-12)


def test_apply_basis_autocast_runs_in_float32():
    image, coeffs, basis = _basis_inputs((1, 3, 6, 7), 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = apply_basis(image, coeffs.bfloat16(), basis)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, apply_basis(image, coeffs.bfloat16().float(), basis), rtol=0, atol=0)


BAD_BASIS_ARGUMENTS = [
    # (image shape, coeffs shape, basis shape, keyword arguments, expected message)
    ((3, 5, 5), (1, 2, 5, 5), (2, 9), {}, r"image must be \(B, C, H, W\), got 3 dim"),
    ((1, 3, 5, 5), (2, 5, 5), (2, 9), {}, r"coeffs must be \(B, N, H, W\), got 3 dimensions"),
    ((1, 3, 5, 5), (1, 2, 5, 5), (2, 3, 3), {}, r"basis must be \(N, K\*K\), got 3 dimensions"),
    ((1, 3, 5, 5), (1, 2, 5, 5), (2, 8), {}, r"K\*K for an odd K .* got 8 in a basis of shape \(2, 8\)"),
    ((1, 3, 5, 5), (1, 2, 5, 5), (2, 4), {}, r"K\*K for an odd K .* got 4"),
    ((1, 3, 5, 5), (1, 3, 5, 5), (2, 9), {},
     r"coeffs for an image of shape \(1, 3, 5, 5\) and a basis of 2 filters must have shape "
     r"\(1, 2, 5, 5\), got \(1, 3, 5, 5\)"),
    ((2, 3, 5, 5), (1, 2, 5, 5), (2, 9), {}, r"must have shape \(2, 2, 5, 5\)"),
    ((1, 3, 5, 5), (1, 2, 5, 4), (2, 9), {}, r"must have shape \(1, 2, 5, 5\), got \(1, 2, 5, 4\)"),
    ((1, 3, 0, 5), (1, 2, 0, 5), (2, 9), {}, "H, W >= 1"),
    ((1, 3, 5, 5), (1, 2, 5, 5), (2, 9), {"padding": "circular"},
     r"padding must be one of \('zeros', 'reflect', 'replicate'\), got 'circular'"),
    ((1, 3, 5, 5), (1, 2, 5, 5), (2, 9), {"dilation": 0}, "dilation must be an integer >= 1, got 0"),
    ((1, 3, 4, 9), (1, 2, 4, 9), (2, 25), {"padding": "reflect", "dilation": 2},
     r"reflect padding of 4 pixels .* needs H and W > 4, got H=4, W=9"),
]


@pytest.mark.parametrize("image_shape, coeffs_shape, basis_shape, kwargs, match", BAD_BASIS_ARGUMENTS)
def test_apply_basis_shape_and_argument_errors(image_shape, coeffs_shape, basis_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        apply_basis(torch.zeros(image_shape), torch.zeros(coeffs_shape), torch.zeros(basis_shape), **kwargs)


def test_apply_basis_dtype_type_and_device_errors():
    image, coeffs, basis = torch.zeros(1, 3, 5, 5), torch.zeros(1, 2, 5, 5), torch.zeros(2, 9)
    with pytest.raises(TypeError, match="apply_basis: image must be a torch.Tensor, got ndarray"):
        apply_basis(image.numpy(), coeffs, basis)
    with pytest.raises(TypeError, match="apply_basis: coeffs must be a torch.Tensor, got list"):
        apply_basis(image, [1.0], basis)
    with pytest.raises(TypeError, match="apply_basis: image must have a floating-point dtype, got torch.int64"):
        apply_basis(image.long(), coeffs, basis)
    with pytest.raises(TypeError, match="apply_basis: basis must have a floating-point dtype, got torch.int32"):
        apply_basis(image, coeffs, basis.int())
    with pytest.raises(TypeError, match="same dtype, got image torch.float32 and coeffs torch.float64"):
        apply_basis(image, coeffs.double(), basis)
    with pytest.raises(TypeError, match="same dtype, got image torch.float32 and basis torch.float64"):
        apply_basis(image, coeffs, basis.double())
    with pytest.raises(ValueError, match="same device, got image on cpu and basis on meta"):
        apply_basis(image, coeffs, basis.to("meta"))


# ----------------------------------------------------------------------------
# filter_flow_linear: filters from a 1x1 convolution, a strip at a time
# ----------------------------------------------------------------------------


def _linear_inputs(
    shape: tuple[int, int, int, int], k: int, e: int, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    b, c, h, w = shape
    gen = _gen(seed)
    image = torch.randn(shape, generator=gen)
    features = torch.randn(b, e, h, w, generator=gen)
    weight = torch.randn(k * k, e, generator=gen) / (k * e**0.5)
    bias = torch.randn(k * k, generator=gen) / k
    return image, features, weight, bias


@pytest.mark.parametrize("softmax", [False, True])
@pytest.mark.parametrize(("k", "padding", "dilation"), [(3, "zeros", 1), (5, "reflect", 2), (7, "replicate", 1)])
@pytest.mark.parametrize("strip", [7, 33, 10**6])  # one row per strip; 3 rows and a short last strip; one strip
def test_filter_flow_linear_equals_filter_flow_of_its_filters(monkeypatch, softmax, k, padding, dilation, strip):
    monkeypatch.setattr(ops, "_STRIP_PIXELS", strip)
    image, features, weight, bias = _linear_inputs((2, 3, 13, 11), k, 6)
    filters = torch.einsum("ke,behw->bkhw", weight, features) + bias[None, :, None, None]  # (B, K*K, H, W)
    if softmax:
        filters = torch.softmax(filters, dim=1)
    want = filter_flow_reference(image.double(), filters.double(), padding=padding, dilation=dilation)
    for maps in (features, features.contiguous(memory_format=torch.channels_last)):
        got = filter_flow_linear(image, maps, weight, bias, softmax=softmax, padding=padding, dilation=dilation)
        assert got.shape == image.shape and got.dtype == image.dtype
        torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-5)


def test_filter_flow_linear_takes_a_convolution_weight_and_accumulates_low_precision_in_float32():
    image, features, weight, bias = _linear_inputs((1, 2, 9, 10), 5, 4)
    want = filter_flow_linear(image, features, weight, bias)
    torch.testing.assert_close(filter_flow_linear(image, features, weight[:, :, None, None], bias), want, rtol=0, atol=0)
    low = filter_flow_linear(image.bfloat16(), features.bfloat16(), weight, bias)
    assert low.dtype == torch.bfloat16
    exact = filter_flow_linear(image.bfloat16().float(), features.bfloat16().float(), weight, bias)
    torch.testing.assert_close(low.float(), exact, rtol=0, atol=float(exact.abs().max()) * 2**-8)  # one rounding


@pytest.mark.parametrize(
    ("features_shape", "weight_shape", "bias_shape", "kwargs", "match"),
    [
        ((1, 4, 6, 7), (9, 4), (9,), {}, r"features must be \(B, E, H, W\) = \(1, E, 5, 7\) like the image"),
        ((1, 4, 5, 7), (9, 3), (9,), {}, r"weight must be \(K\*K, 4\) or \(K\*K, 4, 1, 1\) and bias"),
        ((1, 4, 5, 7), (9, 4), (8,), {}, r"and bias \(K\*K,\), got \(9, 4\) and \(8,\)"),
        ((1, 4, 5, 7), (8, 4), (8,), {}, "the filter dimension must be K\\*K for an odd K"),
        ((1, 4, 5, 7), (9, 4), (9,), {"padding": "circular"}, "padding must be one of"),
        ((1, 4, 5, 7), (9, 4), (9,), {"dilation": 0}, "dilation must be an integer >= 1, got 0"),
    ],
)
def test_filter_flow_linear_shape_and_argument_errors(features_shape, weight_shape, bias_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        filter_flow_linear(torch.zeros(1, 3, 5, 7), torch.zeros(features_shape), torch.zeros(weight_shape),
                           torch.zeros(bias_shape), **kwargs)  # fmt: skip


def test_filter_flow_linear_refuses_gradients_and_other_devices_and_types():
    image, features, weight, bias = _linear_inputs((1, 3, 5, 7), 3, 4)
    with pytest.raises(ValueError, match="filter_flow_linear: computes no gradient; use filter_flow for training"):
        filter_flow_linear(image, features, weight.requires_grad_(), bias)
    with torch.no_grad():  # no graph to build: fine
        filter_flow_linear(image, features, weight, bias)
    weight = weight.detach()
    with pytest.raises(ValueError, match="must be on the same device"):
        filter_flow_linear(image, features.to("meta"), weight, bias)
    with pytest.raises(TypeError, match="filter_flow_linear: bias must be a floating-point torch.Tensor, got list"):
        filter_flow_linear(image, features, weight, [0.0] * 9)
