from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from pff import ops
from pff.errors import PffError
from pff.models import (
    ARCHS,
    ModelCard,
    ModelConfig,
    arch_config,
    count_parameters,
    create,
    hermite_basis,
    load,
    save,
)
from pff.models.blocks import BasicBlock
from pff.models.pff import softmax_prior

# Small inputs keep the big networks quick; every size is odd on purpose.
_SHAPES = {"paper": (1, 3, 21, 19)}
_EXPECTED_PARAMS = {"paper": 12.8e6}  # the authors' released network


def _perturb_last_layer(model: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> None:
    """Move the zero-initialised output layer away from zero (a trained model's regime)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.predictor.out.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("name", list(ARCHS))
def test_every_arch_trains_and_every_parameter_gets_gradient(name):
    torch.manual_seed(0)
    model = create(name)
    x = torch.rand(_SHAPES.get(name, (1, 3, 37, 45)))
    s = ARCHS[name].upscale  # models that compute in low resolution return an s times larger image
    target = torch.rand(*x.shape[:2], s * x.shape[2], s * x.shape[3])
    # The output layer starts at zero, so at step 0 nothing upstream of it gets
    # a gradient, and a stage's blocks after the first start as the identity
    # (last batch norm scale 0), so their convolutions get one only a step later:
    # take two optimiser steps first, then check the third backward.
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        optimizer.zero_grad()
        restored, filters = model(x)
        assert restored.shape == target.shape and restored.dtype == torch.float32
        assert (filters is None) == (ARCHS[name].kind == "direct")
        if filters is not None:
            assert filters.shape == (1, ARCHS[name].kernel ** 2, *target.shape[-2:])
        F.l1_loss(restored, target).backward()
        optimizer.step()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.abs().sum() > 0, f"no gradient reaches {pname}"


@pytest.mark.parametrize("name", list(ARCHS))
def test_parameter_counts(name):
    count = count_parameters(create(name))
    print(f"{name}: {count:,} parameters")
    if name in _EXPECTED_PARAMS:
        assert abs(count - _EXPECTED_PARAMS[name]) < 0.02 * _EXPECTED_PARAMS[name]
    if name == "pff-small":
        assert count < 0.05 * count_parameters(create("paper"))


@pytest.mark.parametrize("constraint", ["none", "normalized"])
@pytest.mark.parametrize(("head", "color"), [("basis", "shared"), ("full", "shared"), ("basis", "ycbcr")])
def test_linear_filters_start_as_the_identity(constraint, head, color):
    model = create("pff-tiny", kernel=5, constraint=constraint, head=head, color=color)
    x = torch.rand(2, 3, 23, 30)
    restored, filters = model(x)
    delta = torch.zeros(25)
    delta[12] = 1
    torch.testing.assert_close(filters, delta.view(1, 25, 1, 1).expand_as(filters), rtol=0, atol=0)
    torch.testing.assert_close(restored, x, rtol=0, atol=1e-6)


def test_direct_cnn_starts_as_the_identity():
    x = torch.rand(2, 1, 19, 26)
    restored, filters = create("cnn-small", channels="y")(x)
    assert filters is None
    torch.testing.assert_close(restored, x, rtol=0, atol=0)


def test_softmax_start_puts_centre_mass_on_the_centre_tap():
    model = create("pff-tiny", kernel=7, constraint="softmax", centre_mass=0.6)
    x = torch.rand(1, 3, 17, 21)
    restored, filters = model(x)
    torch.testing.assert_close(filters[:, 24], torch.full((1, 17, 21), 0.6), rtol=0, atol=1e-6)
    # The rest is a small blur around the centre: the output stays close to the input.
    assert (restored - x).abs().mean() < 0.5 * (x - x.mean()).abs().mean()


@pytest.mark.parametrize("head", ["basis", "full"])
def test_softmax_filters_are_non_negative_and_sum_to_one(head):
    model = create("pff-tiny", kernel=5, constraint="softmax", head=head)
    _perturb_last_layer(model, scale=0.5)
    _, filters = model(torch.rand(2, 3, 21, 26))
    assert filters.min() >= 0
    torch.testing.assert_close(filters.sum(1), torch.ones(2, 21, 26), rtol=0, atol=1e-5)
    assert filters.std(dim=(2, 3)).max() > 1e-3  # not the constant prior any more


@pytest.mark.parametrize("head", ["basis", "full"])
def test_normalized_filters_sum_to_one_with_free_signs(head):
    model = create("pff-tiny", kernel=5, constraint="normalized", head=head)
    _perturb_last_layer(model, scale=0.5)
    _, filters = model(torch.rand(2, 3, 21, 26))
    torch.testing.assert_close(filters.sum(1), torch.ones(2, 21, 26), rtol=0, atol=1e-5)
    assert filters.min() < 0


@pytest.mark.parametrize("padding", ["zeros", "replicate", "reflect"])
@pytest.mark.parametrize("dilation", [1, 2])
def test_basis_fast_path_equals_filter_flow_of_its_filters(padding, dilation):
    model = create("pff-tiny", kernel=5, constraint="none", padding=padding, dilation=dilation).double()
    _perturb_last_layer(model)
    x = torch.rand(2, 3, 19, 24, dtype=torch.float64)
    restored, filters = model(x)
    expected = ops.filter_flow_reference(x, filters.double(), padding=padding, dilation=dilation)
    torch.testing.assert_close(restored.double(), expected, rtol=0, atol=1e-5)  # float32 inside


def test_hermite_basis_is_orthonormal_and_starts_with_a_blob():
    basis = hermite_basis(17, 16).double()  # (16, 289)
    torch.testing.assert_close(basis @ basis.T, torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-5)
    blob = basis[0].view(17, 17)
    assert blob.argmax() == 8 * 17 + 8 and blob.min() >= 0


def test_softmax_prior_values():
    logits = softmax_prior(17, 0.5, 1.0)
    probs = torch.softmax(logits, 0).view(17, 17)
    assert probs[8, 8] == pytest.approx(0.5, abs=1e-6)
    assert probs[8, 9] == pytest.approx(probs[9, 8].item()) and probs[8, 9] > probs[7, 7] > probs[8, 12]
    uniform = torch.softmax(softmax_prior(17, 0.5, 1e9), 0)
    torch.testing.assert_close(uniform[:144], torch.full((144,), 0.5 / 288), rtol=1e-5, atol=0)


def _blurred_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    clean = F.avg_pool2d(torch.rand(4, 3, 80, 80, generator=gen), 3, 1, 1)
    line = torch.zeros(1, 1, 9, 9)
    line[0, 0, 4, :] = 1 / 9  # horizontal motion blur of 9 pixels
    blurry = F.conv2d(clean.reshape(-1, 1, 80, 80), line, padding=4).view(4, 3, 80, 80)
    return blurry[..., 8:-8, 8:-8], clean[..., 8:-8, 8:-8]


def _logit_gradient(centre_mass: float, spread: float) -> tuple[float, float]:
    """(L1 loss, norm of dLoss/dlogits of the off-centre taps) at the softmax start."""
    blurry, clean = _blurred_batch()
    b, _, h, w = blurry.shape
    logits = softmax_prior(17, centre_mass, spread).view(1, -1, 1, 1).expand(b, -1, h, w).clone()
    logits.requires_grad_(True)
    loss = F.l1_loss(ops.filter_flow(blurry, torch.softmax(logits, 1)), clean)
    loss.backward()
    grad = torch.cat([logits.grad[:, :144], logits.grad[:, 145:]], 1)
    return loss.item(), grad.norm().item()


def test_softmax_start_leaves_off_centre_taps_a_usable_gradient():
    # The issue's +8 centre logit (centre mass 0.912 with 288 uniform others)
    # left the filters at the identity for a whole training run; the default
    # start must give the other taps a gradient an order of magnitude larger,
    # without starting much further from the input than +8 does.
    default = ModelConfig()
    assert softmax_prior(17, 0.912, 1e9)[144].item() == pytest.approx(8.0, abs=0.01)
    loss_saturated, grad_saturated = _logit_gradient(0.912, 1e9)
    loss_default, grad_default = _logit_gradient(default.centre_mass, default.prior_spread)
    print(f"+8 start: loss {loss_saturated:.4f}, off-centre grad {grad_saturated:.2e}; "
          f"default: loss {loss_default:.4f}, off-centre grad {grad_default:.2e}")
    assert grad_default > 5 * grad_saturated
    assert loss_default < 1.1 * loss_saturated


def test_bf16_autocast_and_channels_last_match_float32():
    torch.manual_seed(0)
    model = create("pff-tiny", kernel=5).eval()
    _perturb_last_layer(model)
    x = torch.rand(2, 3, 24, 31)
    ref, ref_filters = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, filters = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert out.dtype == torch.float32 and filters.dtype == torch.float32
    assert (out - ref).abs().max() < 2e-2  # bfloat16 predictor, float32 filter op


def test_model_checks_its_input():
    model = create("pff-tiny", kernel=3)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_fuse_kernel_sets_the_convolution_that_joins_the_streams():
    for size in (1, 3):
        model = create("pff-sr", channels="y", upscale=2, fuse_kernel=size)
        assert model.predictor.fuse[0].kernel_size == (size, size)
        estimate, actual = model.config.weight_estimate(), count_parameters(model)
        assert 0.9 < estimate / actual < 1.1


def test_low_resolution_fuse_is_the_fuse_whose_deep_taps_are_one_by_one():
    from pff.models.blocks import LowResFuse
    from pff.models.zoo import transplant

    torch.manual_seed(0)
    source = create("pff-sr", channels="y", upscale=2, kernel=5)
    _perturb_last_layer(source)
    taps = source.config.taps
    with torch.no_grad():  # deep taps only at the centre of the 3x3 fuse: a 1x1 over the deep maps
        weight = source.predictor.fuse[0].weight
        centre = weight[:, :taps, 1, 1].clone()
        weight[:, :taps] = 0
        weight[:, :taps, 1, 1] = centre
        source.predictor.fuse[1].running_mean.uniform_(-0.5, 0.5)
        source.predictor.fuse[1].running_var.uniform_(0.5, 2.0)
    low = create("pff-sr", channels="y", upscale=2, kernel=5, fuse_deep="low")
    assert isinstance(low.predictor.fuse, LowResFuse)
    assert low.predictor.fuse.conv.in_channels == low.config.shallow_width  # full resolution: the shallow stream only
    assert 0.9 < low.config.weight_estimate() / count_parameters(low) < 1.1
    transplant(low, source)
    x = torch.rand(2, 1, 29, 35)  # not a multiple of the deep stream's stride: padded, then cropped
    for mode in (True, False):  # batch statistics, then running statistics
        source.train(mode), low.train(mode)
        torch.testing.assert_close(low(x)[0], source(x)[0], rtol=0, atol=1e-5)
    low.train()
    low(x)[0].square().mean().backward()
    assert low.predictor.fuse.proj.weight.grad.abs().sum() > 0


def _added_shallow_blocks(model):
    return [m for m in model.predictor.shallow if isinstance(m, BasicBlock)]


def _added_stage_blocks(model):  # every block after the first of its stage
    return [b for stage in model.predictor.stages for b in [m for m in stage if isinstance(m, BasicBlock)][1:]]


@pytest.mark.parametrize(
    ("deepen", "added", "count"),
    [({"shallow_blocks": 2}, _added_shallow_blocks, 2), ({"depths": (1, 2, 3)}, _added_stage_blocks, 3)],
    ids=["shallow_blocks", "depths"],
)
def test_added_blocks_deepen_a_trained_model_as_the_same_function(deepen, added, count):
    from pff.models.zoo import transplant

    torch.manual_seed(0)
    source = create("pff-sr", channels="y", upscale=3, kernel=5, fuse_deep="low")
    _perturb_last_layer(source)
    deep = create("pff-sr", channels="y", upscale=3, kernel=5, fuse_deep="low", **deepen)
    assert 0.9 < deep.config.weight_estimate() / count_parameters(deep) < 1.1
    transplant(deep, source)
    x = torch.rand(2, 1, 19, 23)
    for mode in (True, False):  # batch statistics, then running statistics
        source.train(mode), deep.train(mode)
        torch.testing.assert_close(deep(x)[0], source(x)[0], rtol=0, atol=1e-6)
    deep.train()
    deep(x)[0].square().mean().backward()
    blocks = added(deep)
    assert len(blocks) == count and all(isinstance(b, BasicBlock) for b in blocks)
    assert all(b.bn2.weight.grad.abs().sum() > 0 for b in blocks)  # the blocks' scales learn first


def test_image_wide_context_starts_as_the_trained_model_and_then_reads_the_whole_image():
    from pff.models.zoo import transplant

    torch.manual_seed(0)
    source = create("pff-small", kernel=5, head="full", constraint="normalized")
    _perturb_last_layer(source)
    model = create("pff-small", kernel=5, head="full", constraint="normalized", context=8)
    assert 0.9 < model.config.weight_estimate() / count_parameters(model) < 1.1
    transplant(model, source)
    x = torch.rand(2, 3, 40, 150)
    for mode in (True, False):  # batch statistics, then running statistics
        source.train(mode), model.train(mode)
        torch.testing.assert_close(model(x)[0], source(x)[0], rtol=0, atol=1e-6)
    model.train()
    model(x)[0].square().mean().backward()
    assert model.predictor.context[2].weight.grad.abs().sum() > 0  # its last layer learns first
    # Trained, a pixel's filter depends on the whole image: a change far beyond the
    # receptive field of the left edge (pff.tiling) moves the filters there.
    from pff.tiling import predictor_receptive_field

    with torch.no_grad():
        model.predictor.context[2].weight.normal_(0, 0.5)
    model.eval()
    far = x.clone()
    far[..., -20:] = 1 - far[..., -20:]
    assert 150 - 20 > 8 + predictor_receptive_field(model)
    with torch.no_grad():
        base, moved = model(x)[1][..., :8], model(far)[1][..., :8]
        assert (base - moved).abs().max() > 1e-5  # float32 noise is far below; without a context exactly 0
        with_none = create("pff-small", kernel=5, head="full", constraint="normalized").eval()
        assert with_none(x)[1][..., :8].sub(with_none(far)[1][..., :8]).abs().max() == 0


def test_config_validation_names_the_key():
    with pytest.raises(PffError, match="kernel: must be an odd"):
        ModelConfig(kernel=4)
    with pytest.raises(PffError, match="fuse_kernel: must be odd"):
        ModelConfig(fuse_kernel=2)
    with pytest.raises(PffError, match="fuse_deep: must be 'upsampled' or 'low'"):
        ModelConfig(fuse_deep="full")
    with pytest.raises(PffError, match="shallow_blocks: needs shallow_depth >= 1"):
        ModelConfig(shallow_depth=0, shallow_blocks=1)
    with pytest.raises(PffError, match="context: value must be in"):
        ModelConfig(context=-1)
    with pytest.raises(PffError, match="depths: must have 3 entries"):
        ModelConfig(depths=(1, 1))
    with pytest.raises(PffError, match="unknown architecture 'nope'"):
        arch_config("nope")


def test_save_then_load_round_trip(tmp_path):
    model = create("pff-tiny", channels="y", kernel=5, constraint="none")
    _perturb_last_layer(model)
    card = ModelCard(task="jpeg", channels="y", model=arch_config("pff-tiny", kernel=5, constraint="none"))
    save(model, card, tmp_path)
    loaded, loaded_card = load(tmp_path)
    assert loaded_card == card and loaded_card.task == "jpeg" and loaded_card.channels == "y"
    assert not loaded.training
    x = torch.rand(1, 1, 15, 22)
    torch.testing.assert_close(loaded(x)[0], model.eval()(x)[0], rtol=0, atol=0)


def test_load_errors(tmp_path):
    with pytest.raises(PffError, match=r"no model 'no-such-model'.*available"):
        load("no-such-model")
    model = create("pff-tiny", kernel=3)
    card = ModelCard(task="deblur", channels="rgb", model=arch_config("pff-tiny", kernel=3))
    save(model, card, tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data["model"]["widht"] = 3
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(PffError, match="unknown config key 'model.widht'"):
        load(tmp_path)
    data["model"].pop("widht")
    data["model"]["kernel"] = 5  # weights no longer fit the architecture
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(PffError, match="shape"):
        load(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04 not safetensors")
    with pytest.raises(PffError, match="not a safetensors file"):
        load(tmp_path)


def test_receptive_field_grows_with_the_deep_stream():
    # The deep stream must see well beyond the 17x17 filter: a change far from
    # a pixel moves its filter (context, paper section 3.2).
    # Measured by the gradient, which is non-zero wherever a path reaches: comparing the
    # filters of two inputs hung on differences of ~1e-8 that vanished for some weights.
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create("pff-small").eval()
    _perturb_last_layer(model)
    x = torch.rand(1, 3, 64, 64, generator=gen).requires_grad_()
    filters = model(x)[1][0, :, 10, 10]  # (K*K,) of the pixel at (10, 10)
    filters.std().backward()
    assert x.grad[..., 40:, 40:].abs().max() > 0  # 30 px away: beyond the 8-px filter radius
    assert math.isfinite(filters.sum().item())


def test_fold_batchnorm_is_the_same_function_without_batch_norms():
    from pff.models.blocks import fold_batchnorm

    torch.manual_seed(0)
    model = create("pff-small", channels="rgb", kernel=7, constraint="none")
    for module in model.modules():  # non-trivial statistics and affine parameters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    torch.nn.init.normal_(model.predictor.out.weight, std=0.05)  # filters away from the delta
    model.eval()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.rand(2, 3, 37, 45, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want, got = model(x)[0], folded(x)[0]
    assert (want - x).abs().max() > 1e-3  # the check is not on an identity model
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with torch.inference_mode():  # folding twice changes nothing
        torch.testing.assert_close(fold_batchnorm(folded)(x)[0], got, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("arch", "options"),
    [
        ("pff-small", {"kernel": 5, "head": "full", "constraint": "normalized"}),
        ("pff-small", {"kernel": 5, "head": "full", "constraint": "none"}),
        ("pff-sr", {"upscale": 2, "kernel": 5, "constraint": "normalized"}),
        ("pff-sr", {"upscale": 3, "kernel": 5}),
    ],
)
def test_a_full_head_outputs_its_filters_with_the_gradients_of_the_definition(arch, options):
    # Definition: filters = start + correction (minus its mean over the taps of each phase), applied to the
    # predictor's raw output maps; the model applies start and centring to the output convolution instead.
    torch.manual_seed(0)
    model = create(arch, channels="y", **options).train()
    torch.nn.init.normal_(model.predictor.out.weight, std=0.05)
    torch.nn.init.normal_(model.predictor.out.bias, std=0.05)
    x = torch.rand(2, 1, 13, 15, generator=torch.Generator().manual_seed(1))
    params = [p for p in model.parameters() if p.requires_grad]

    def loss_and_grads(restored):
        loss = (restored - 0.5).abs().mean()
        return loss, torch.autograd.grad(loss, params)

    s, taps = model.upscale, 25
    raw = model.predictor(x).view(2, taps, s * s, *x.shape[-2:])  # (B, K*K, s*s, h, w)
    if model.config.constraint == "normalized":
        raw = raw - raw.mean(dim=1, keepdim=True)
    phases = raw + model.delta.view(1, taps, s * s, 1, 1)
    want = ops.filter_flow_up(x, phases, s) if s > 1 else ops.filter_flow(x, phases[:, :, 0])
    got, filters = model(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    want_filters = F.pixel_shuffle(phases.flatten(1, 2), s) if s > 1 else phases[:, :, 0]
    torch.testing.assert_close(filters, want_filters, rtol=1e-5, atol=1e-6)
    (want_loss, want_grads), (got_loss, got_grads) = loss_and_grads(want), loss_and_grads(model(x)[0])
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-5, atol=1e-7)
    for p, a, b in zip(params, want_grads, got_grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-7, msg=lambda m, p=p: f"{tuple(p.shape)}: {m}")


@pytest.mark.parametrize(
    ("arch", "options", "folds"),
    [
        ("pff-sr", {"upscale": 2, "kernel": 5}, True),  # bicubic phase start in the bias
        ("pff-sr", {"upscale": 3, "kernel": 5}, True),
        ("pff-small", {"kernel": 5, "head": "full", "constraint": "none"}, True),  # delta start in the bias
        ("pff-small", {"kernel": 5, "head": "full", "constraint": "normalized"}, True),  # centred weights too
        ("pff-sr", {"upscale": 2, "kernel": 5, "constraint": "normalized"}, True),  # centred per phase
        ("pff-small", {"kernel": 5, "head": "full", "constraint": "softmax"}, False),  # not linear
        ("pff-small", {"kernel": 5, "constraint": "none"}, False),  # basis head: the start is not a bias
    ],
)
def test_inference_copy_folds_the_start_filters_into_the_head_and_keeps_the_function(arch, options, folds):
    from pff.models.blocks import inference_copy

    torch.manual_seed(0)
    model = create(arch, channels="y", **options)
    torch.nn.init.normal_(model.predictor.out.weight, std=0.05)  # filters away from the start
    torch.nn.init.normal_(model.predictor.out.bias, std=0.05)
    model.eval()
    bias = model.predictor.out.bias.detach().clone()
    copy = inference_copy(model)
    assert copy.start_folded is folds and model.start_folded is False
    torch.testing.assert_close(model.predictor.out.bias, bias, rtol=0, atol=0)  # the original is untouched
    if folds:  # the copy's head outputs the filters themselves
        assert (copy.predictor.out.bias - bias).abs().max() > 0.1
        if model.config.constraint == "normalized":  # every filter sums to one whatever the features
            sums = copy.predictor.out.weight.detach().view(25, model.upscale**2, -1).sum(dim=0)
            torch.testing.assert_close(sums, torch.zeros_like(sums), rtol=0, atol=1e-6)
    x = torch.rand(1, 1, 29, 35, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        (want, want_filters), (got, got_filters) = model(x), copy(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_filters, want_filters, rtol=1e-5, atol=1e-5)
    bias_once = copy.predictor.out.bias.detach().clone()
    copy.fold_start()  # folding twice changes nothing
    torch.testing.assert_close(copy.predictor.out.bias, bias_once, rtol=0, atol=0)


@pytest.mark.parametrize("layout", ["standard", "channels_last", "strided"])
@pytest.mark.parametrize("standard_out", [False, True])
def test_pointwise_conv_is_the_1x1_convolution_in_every_layout_with_its_gradients(layout, standard_out):
    from pff.models.blocks import PointwiseConv

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 5, 1).double()
    x = torch.randn(3, 6, 9, 11, dtype=torch.float64)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.randn(3, 6, 9, 22, dtype=torch.float64)[..., ::2]  # neither layout
    point = PointwiseConv.from_conv(conv, standard=standard_out)
    assert isinstance(point, torch.nn.Conv2d) and point.weight.shape == conv.weight.shape
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    want, got = conv(x1), point(x2)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    if standard_out or layout != "channels_last":
        assert got.is_contiguous()
    else:
        assert got.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(want)
    want.backward(g)
    got.backward(g)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(point.weight.grad, conv.weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(point.bias.grad, conv.bias.grad, rtol=1e-12, atol=1e-12)
    small = PointwiseConv(2, 3, standard=standard_out).double()
    inputs = torch.randn(2, 2, 3, 4, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(small, (inputs.requires_grad_(),))
    with pytest.raises(ValueError, match="1x1"):
        PointwiseConv.from_conv(torch.nn.Conv2d(6, 5, 3))
    with pytest.raises(ValueError, match="stride 1"):
        PointwiseConv.from_conv(torch.nn.Conv2d(6, 5, 1, stride=2))


@pytest.mark.parametrize(
    ("arch", "channels", "options"),
    [
        ("pff-small", "rgb", {"kernel": 7, "constraint": "normalized"}),  # the deblur layout
        ("pff-small", "rgb", {"kernel": 5, "constraint": "none", "color": "ycbcr"}),  # the colour jpeg layout
        ("pff-small", "rgb", {"kernel": 5, "constraint": "none", "color": "ycbcr", "fuse_deep": "low", "shallow_blocks": 1}),
        ("pff-sr", "y", {"upscale": 3, "kernel": 5}),
        ("pff-sr", "y", {"upscale": 2, "kernel": 5, "fuse_deep": "low"}),
        ("pff-small", "rgb", {"kernel": 7, "constraint": "normalized", "head": "full", "context": 8}),
        ("cnn-small", "rgb", {}),
    ],
)
def test_inference_copy_is_the_same_function_with_matrix_products_and_channels_last_maps(arch, channels, options):
    from pff.models.blocks import PointwiseConv, inference_copy
    from pff.tiling import receptive_field

    torch.manual_seed(0)
    model = create(arch, channels=channels, **options)
    for module in model.modules():  # away from the identity start and the default statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    torch.nn.init.normal_(model.predictor.out.weight, std=0.05)
    model.eval()
    fast = inference_copy(model)
    one_by_one = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    assert one_by_one and all(isinstance(m, PointwiseConv) for m in one_by_one)
    assert fast.predictor.channels_last and not model.predictor.channels_last
    c = 3 if channels == "rgb" else 1
    x = torch.rand(2, c, 45, 37, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        (want, want_filters), (got, got_filters) = model(x), fast(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if want_filters is not None:
        torch.testing.assert_close(got_filters, want_filters, rtol=1e-5, atol=1e-5)
    assert receptive_field(fast) == receptive_field(model)


@pytest.mark.parametrize(
    ("options", "folded"),
    [
        ({"kernel": 7, "head": "full", "constraint": "normalized"}, False),  # deblur-shake's head
        ({"kernel": 7, "head": "full", "constraint": "normalized"}, True),  # as the Restorer runs it
        ({"kernel": 5, "head": "full", "constraint": "none", "fuse_deep": "low"}, True),
        ({"kernel": 5, "head": "full", "constraint": "softmax"}, False),  # the paper network's head
    ],
)
def test_a_full_head_restores_by_strips_without_its_filters_as_with_them(monkeypatch, options, folded):
    from pff.models.blocks import inference_copy

    monkeypatch.setattr(ops, "_STRIP_PIXELS", 64)  # strips of 2 rows: 11 of them, the last one short
    calls = []
    real = ops.filter_flow_linear
    monkeypatch.setattr(ops, "filter_flow_linear", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    torch.manual_seed(0)
    model = create("pff-small", **options)
    _perturb_last_layer(model)
    model.eval()
    if folded:
        model = inference_copy(model)
    x = torch.rand(1, 3, 21, 33, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want, filters = model(x)
        assert not calls and filters is not None
        got, none = model(x, return_filters=False)
    assert none is None and len(calls) == 1
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (want - x).abs().max() > 0.01  # the filters are not the identity
    if not folded:  # training: the filters exist and carry the gradient
        got, _ = model(x, return_filters=False)
        assert got.requires_grad and len(calls) == 1
