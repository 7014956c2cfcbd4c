"""Colour models that filter in YCbCr (``ModelConfig.color = 'ycbcr'``) and ``zoo.transplant``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pff import ops
from pff.color import rgb_to_ycbcr, ycbcr_transform
from pff.errors import PffError
from pff.models import create
from pff.models.zoo import transplant


def _ycbcr(**overrides):
    return create("pff-tiny", kernel=5, constraint="none", color="ycbcr", **overrides)


def _perturb(model: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.predictor.out.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen))


def _to_ycc(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> YCbCr with pff.color (numpy), float64."""
    out = [rgb_to_ycbcr(img.detach().permute(1, 2, 0).numpy()).astype(np.float64) for img in x]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


def test_luma_and_chroma_are_filtered_by_their_own_filters():
    model = _ycbcr(padding="zeros").double().eval()
    _perturb(model)
    x = torch.rand(2, 3, 19, 24, dtype=torch.float64)
    restored, luma_filters = model(x)
    ycc_in, ycc_out = _to_ycc(x.float()), _to_ycc(restored.float())
    out = model.predictor(ycc_in.float().double())
    part = {name: model.filters_from(out, part=name).double() for name in model.PARTS}
    torch.testing.assert_close(part["luma"], luma_filters.double(), rtol=0, atol=1e-6)  # float32 colour conversions
    assert not torch.allclose(part["luma"], part["chroma"])
    torch.testing.assert_close(part["cb_from_luma"].sum(1), torch.zeros(2, 19, 24, dtype=torch.float64), rtol=0, atol=1e-6)
    y = ycc_in[:, :1]
    torch.testing.assert_close(ycc_out[:, :1], ops.filter_flow_reference(y, part["luma"]), rtol=0, atol=2e-5)
    # Chroma is filtered around 128/255 (zero padding is neutral grey), plus zero-sum luma detail
    # (replicate padding: the border is no edge).
    c = ops.filter_flow_reference(ycc_in[:, 1:] - 128 / 255, part["chroma"]) + 128 / 255
    for i, name in enumerate(("cb_from_luma", "cr_from_luma")):
        expected = c[:, i : i + 1] + ops.filter_flow_reference(y, part[name], padding="replicate")
        torch.testing.assert_close(ycc_out[:, 1 + i : 2 + i], expected, rtol=0, atol=2e-5)  # float32 inside
    with pytest.raises(ValueError, match="part must be one of"):
        model.filters_from(out, part="alpha")


def test_a_flat_gray_image_stays_gray_and_the_luma_ignores_chroma_parts():
    model = _ycbcr().eval()
    _perturb(model, scale=0.5)
    flat = torch.full((1, 3, 21, 26), 0.4)
    restored, _ = model(flat)
    assert (restored - flat).abs().max() > 1e-3  # it did filter (zero padding at the border)
    torch.testing.assert_close(restored[:, 0], restored[:, 1], rtol=0, atol=2e-6)
    torch.testing.assert_close(restored[:, 1], restored[:, 2], rtol=0, atol=2e-6)


def test_every_parameter_of_a_ycbcr_model_gets_gradient():
    torch.manual_seed(0)
    model = _ycbcr()
    x, target = torch.rand(2, 3, 21, 26), torch.rand(2, 3, 21, 26)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        F.l1_loss(model(x)[0], target).backward()
        optimizer.step()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_ycbcr_config_errors():
    with pytest.raises(PffError, match="color: 'ycbcr' needs head = 'basis'"):
        _ycbcr(head="full")
    with pytest.raises(PffError, match="color: 'ycbcr' needs head = 'basis'"):
        create("pff-tiny", kernel=5, constraint="softmax", color="ycbcr")
    with pytest.raises(PffError, match="color: 'ycbcr' needs kind 'pff'"):
        create("cnn-small", color="ycbcr")
    with pytest.raises(PffError, match="needs RGB images"):
        create("pff-tiny", kernel=5, constraint="none", color="ycbcr", channels="y")
    with pytest.raises(PffError, match="color: must be 'shared' or 'ycbcr'"):
        create("pff-tiny", color="lab")


def test_ycbcr_transform_is_the_matlab_one():
    matrix, offset = ycbcr_transform()
    np.testing.assert_allclose(matrix[0] * 255, [65.481, 128.553, 24.966])
    np.testing.assert_allclose(offset * 255, [16, 128, 128])
    matrix[0, 0] = 0  # a copy: the module's table is untouched
    assert ycbcr_transform()[0][0, 0] > 0


def test_transplant_a_luma_model_keeps_its_luma_and_leaves_chroma_alone():
    luma = create("pff-tiny", kernel=5, constraint="none", channels="y").eval()
    _perturb(luma)
    with torch.no_grad():  # non-trivial batch-norm statistics and a learned basis
        for module in luma.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        luma.basis.add_(0.01 * torch.randn(luma.basis.shape))
    colour = _ycbcr()
    copied = transplant(colour, luma)
    assert "basis" in copied and "chroma_basis" not in copied
    colour.eval()
    x = torch.rand(2, 3, 22, 27)
    ycc_in = _to_ycc(x).float()
    restored, filters = colour(x)
    expected_y, expected_filters = luma(ycc_in[:, :1].contiguous())
    ycc_out = _to_ycc(restored)
    torch.testing.assert_close(filters, expected_filters, rtol=0, atol=1e-5)
    torch.testing.assert_close(ycc_out[:, :1].float(), expected_y, rtol=0, atol=1e-5)
    torch.testing.assert_close(ycc_out[:, 1:], ycc_in[:, 1:].double(), rtol=0, atol=1e-5)


def test_transplant_errors():
    small = create("pff-tiny", kernel=5, constraint="none", channels="y")
    with pytest.raises(PffError, match="does not fit into"):
        transplant(small, create("pff-tiny", kernel=7, constraint="none", channels="y"))
    with pytest.raises(PffError, match="this architecture does not"):
        transplant(small, _ycbcr())


@pytest.mark.parametrize("constraint", ["none", "normalized"])
def test_transplant_a_basis_model_into_a_full_head_is_the_same_function(constraint):
    basis = create("pff-tiny", kernel=5, constraint=constraint, basis=6).eval()
    _perturb(basis, seed=1)
    with torch.no_grad():
        basis.basis.add_(0.1 * torch.randn(basis.basis.shape, generator=torch.Generator().manual_seed(2)))
    full = create("pff-tiny", kernel=5, constraint=constraint, head="full").eval()
    copied = transplant(full, basis)
    assert "predictor.out.weight" in copied and "basis" not in copied
    x = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(3))
    (a, filters_a), (b, filters_b) = basis(x), full(x)
    assert (filters_a - filters_a[:, 12:13]).abs().max() > 1e-3  # the filters are not the start
    torch.testing.assert_close(filters_b, filters_a, rtol=0, atol=1e-6)
    torch.testing.assert_close(b, a, rtol=0, atol=1e-5)


def test_transplant_into_a_larger_basis_is_the_same_function_and_can_learn():
    small = create("pff-tiny", kernel=5, constraint="normalized", basis=4).eval()
    _perturb(small, seed=4)
    large = create("pff-tiny", kernel=5, constraint="normalized", basis=9).eval()
    transplant(large, small)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(large(x)[0], small(x)[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(large.basis[:4], small.basis, rtol=0, atol=0)
    assert large.basis[4:].abs().amax(dim=1).min() > 0  # new filters keep their start: not dead zeros
    assert large.predictor.out.weight[4:].abs().max() == 0  # and their coefficients start at zero


@pytest.mark.parametrize(("arch", "upscale"), [("pff-tiny", 1), ("pff-sr", 3)])
def test_transplant_between_kernel_sizes_maps_taps_centre_on_centre(arch, upscale):
    kw = {"constraint": "none", "head": "full", "channels": "y", "upscale": upscale}
    large = create(arch, kernel=7, **kw).eval()
    _perturb(large, seed=5)
    small = create(arch, kernel=5, **kw).eval()
    assert "predictor.out.weight" in transplant(small, large)
    x = torch.rand(1, 1, 17, 21, generator=torch.Generator().manual_seed(6))
    (_, filters_large), (out_small, filters_small) = large(x), small(x)
    h, w = filters_small.shape[-2:]
    centre = filters_large.view(1, 7, 7, h, w)[:, 1:6, 1:6].reshape(1, 25, h, w)
    assert (filters_large.view(1, 7, 7, h, w)[:, 0]).abs().max() > 1e-3  # the dropped ring was not zero
    torch.testing.assert_close(filters_small, centre, rtol=0, atol=1e-6)
    # Back to 7x7: the same function, the outer ring zero.
    grown = create(arch, kernel=7, **kw).eval()
    transplant(grown, small)
    out_grown, filters_grown = grown(x)
    torch.testing.assert_close(out_grown, out_small, rtol=0, atol=1e-5)
    ring = filters_grown.view(1, 7, 7, h, w).clone()
    ring[:, 1:6, 1:6] = 0
    assert ring.abs().max() == 0
