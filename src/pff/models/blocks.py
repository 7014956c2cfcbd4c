"""Small convolutional building blocks shared by the predictor streams.

Every block maps ``(B, C_in, H, W)`` float tensors to ``(B, C_out, H', W')``;
convolutions are followed by batch norm and ReLU (paper section 3.2).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval


def conv_bn_relu(c_in: int, c_out: int, *, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """``kernel x kernel`` convolution (no bias: batch norm follows), batch norm, ReLU; 'same' padding."""
    pad = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv + BN, identity (or 1x1 projection) shortcut, ReLU.

    ``(B, c_in, H, W) -> (B, c_out, H, W)``; the resolution never changes here,
    the deep stream downsamples with pooling between stages.
    """

    def __init__(self, c_in: int, c_out: int, *, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x), inplace=True)


class Stage(nn.Sequential):
    """Max-pool by ``stride`` (if > 1), then ``depth`` basic blocks at ``dilation``.

    Blocks after the first start as the identity (their last batch norm's
    scale is 0 and their input is a ReLU's, >= 0), so a stage deepened from a
    trained model (``init``) keeps its function until the new blocks learn.
    """

    def __init__(self, c_in: int, c_out: int, *, depth: int, stride: int, dilation: int) -> None:
        layers: list[nn.Module] = []
        if stride > 1:
            layers.append(nn.MaxPool2d(stride, stride))
        for i in range(depth):
            block = BasicBlock(c_in if i == 0 else c_out, c_out, dilation=dilation)
            if i > 0:
                nn.init.zeros_(block.bn2.weight)
            layers.append(block)
        super().__init__(*layers)


class LowResFuse(nn.Module):
    """``relu(bn(conv(shallow) + upsample(proj(deep))))``: the two streams fused, the deep part at its own resolution.

    The same as a ``kernel x kernel`` convolution over the concatenated
    streams whose taps on the deep features are a 1x1 projection: a 1x1
    convolution commutes with bilinear upsampling (each acts on another
    axis), so it runs on the deep stream's few pixels before the upsampling
    and the full-resolution convolution reads only the shallow stream.
    ``deep (B, c_deep, h, w)``, ``shallow (B, c_shallow, H, W)`` ->
    ``(B, c_out, H, W)``: the deep maps are upsampled to ``size`` (the padded
    input the deep stream ran on) and their top-left ``H x W`` corner kept.
    """

    def __init__(self, c_deep: int, c_shallow: int, c_out: int, *, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_shallow, c_out, kernel, padding=kernel // 2, bias=False)
        self.proj = nn.Conv2d(c_deep, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = shallow.shape[-2:]
        up = upsample_to(self.proj(deep), size)[..., :h, :w]
        return F.relu(self.bn(self.conv(shallow) + up), inplace=True)

    def fold(self) -> None:
        """Fold the eval-mode batch norm into both convolutions (inference copies only)."""
        if isinstance(self.bn, nn.BatchNorm2d):
            scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)  # (c_out,)
            with torch.no_grad():
                self.proj.weight.mul_(scale[:, None, None, None])
            self.conv = fuse_conv_bn_eval(self.conv, self.bn)
            self.bn = nn.Identity()


def upsample_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, C, h, w)`` to ``(B, C, *size)``; a no-op when already that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with every batch norm folded into the convolution before it.

    Eval-mode batch norm is an affine map per channel, so ``bn(conv(x))`` is
    one convolution with rescaled weights and a bias: the same function (to
    float rounding) without a pass over every feature map. Folds the
    ``Conv2d, BatchNorm2d`` pairs of ``nn.Sequential`` and the
    ``conv1/bn1``, ``conv2/bn2`` pairs of :class:`BasicBlock`; ``model`` is
    left unchanged. Only for inference: the copy has no batch statistics.
    """
    import copy

    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                    module[i + 1] = nn.Identity()
        if isinstance(module, BasicBlock):
            for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
                if isinstance(getattr(module, bn), nn.BatchNorm2d):  # not folded already
                    setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn)))
                    setattr(module, bn, nn.Identity())
        if isinstance(module, LowResFuse):
            module.fold()
    return folded


class PointwiseConv(nn.Conv2d):
    """A 1x1 convolution (stride 1, one group, no padding) computed as one matrix product per image.

    ``(B, C_in, H, W) -> (B, C_out, H, W)``: an ``nn.Conv2d`` (same parameters,
    state and gradients) whose forward is a batched GEMM. oneDNN reorders
    maps between layouts around a 1x1 convolution, which costs more than the
    product on the wide heads here (a predictor's 196-441 filter taps per
    pixel); the GEMM reads the maps where they are. A channels-last input
    gives a channels-last output, unless ``standard``: then the output is in
    the standard layout whatever the input's, read through a transposed
    operand (no copy), for a consumer that wants it (the filter op reads the
    predictor's output plane by plane).
    """

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True, standard: bool = False) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)
        self.standard = standard

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, *, standard: bool = False) -> PointwiseConv:
        """The same convolution (a copy of its parameters) as a PointwiseConv."""
        if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.groups != 1 or conv.padding != (0, 0):
            raise ValueError(f"expected a 1x1 convolution with stride 1, one group and no padding, got {conv}")
        new = cls(conv.in_channels, conv.out_channels, bias=conv.bias is not None, standard=standard)
        new.load_state_dict(conv.state_dict())
        return new.to(conv.weight.device, conv.weight.dtype).train(conv.training)

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``weight`` and ``bias`` (default: the module's) stand in for the parameters, e.g. functions of them."""
        b, c, h, w = x.shape
        weight, bias = (self.weight, self.bias) if weight is None else (weight, bias)
        weight = weight.to(x.dtype).reshape(1, self.out_channels, c).expand(b, -1, -1)  # (B, C_out, C_in)
        bias = None if bias is None else bias.to(x.dtype)
        if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
            cols = x.reshape(b, c, h * w)
        elif self.standard:
            cols = x.permute(0, 2, 3, 1).reshape(b, h * w, c).transpose(1, 2)  # a view of the channels-last maps
        else:
            rows = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
            t = weight.transpose(1, 2)
            out = torch.bmm(rows, t) if bias is None else torch.baddbmm(bias, rows, t)  # (B, H*W, C_out)
            return out.view(b, h, w, -1).permute(0, 3, 1, 2)  # (B, C_out, H, W) channels-last
        out = torch.bmm(weight, cols)  # (B, C_out, H*W)
        if bias is not None:
            # Added after the product: baddbmm first copies the broadcast bias into the whole output, slower.
            out = out.add_(bias[None, :, None])
        return out.view(b, -1, h, w)  # (B, C_out, H, W) standard


def _pointwise(model: nn.Module) -> None:
    """Replace, in place, every other eligible 1x1 ``nn.Conv2d`` by a :class:`PointwiseConv`
    (channels-last in, channels-last out)."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if (type(child) is nn.Conv2d and child.kernel_size == (1, 1) and child.stride == (1, 1)
                    and child.groups == 1 and child.padding == (0, 0)):  # fmt: skip
                setattr(module, name, PointwiseConv.from_conv(child))


def inference_copy(model: nn.Module) -> nn.Module:
    """The copy of ``model`` that inference runs (the Restorer, exports); ``model`` is left unchanged.

    The same function to float rounding, computed faster: batch norms folded
    into their convolutions (:func:`fold_batchnorm`); every module's
    ``fold_start`` (a filter model's constant start moved into its output
    convolution's bias, :meth:`pff.models.PFF.fold_start`); 1x1 convolutions
    as matrix products (:class:`PointwiseConv`); and a predictor that runs its
    feature maps channels-last (``channels_last``; the output convolution
    still gives the standard layout). Never train or save the copy.
    """
    folded = fold_batchnorm(model)
    for module in folded.modules():
        fold_start = getattr(module, "fold_start", None)
        if callable(fold_start):
            fold_start()
    _pointwise(folded)
    for module in folded.modules():
        if hasattr(module, "channels_last"):
            module.channels_last = True
    return folded.to(memory_format=torch.channels_last)
