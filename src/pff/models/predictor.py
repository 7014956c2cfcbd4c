"""The two-stream per-pixel predictor of paper section 3.2.

A deep stream (stem, pooled residual stages, top-down upsampling with skip
connections) sees a large context; a shallow stream keeps full resolution.
Their features are fused into an embedding and a head of convolutions maps it
to ``out_channels`` numbers per pixel (filter logits, basis coefficients or a
pixel residual, depending on the model built on top).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from pff.models.blocks import BasicBlock, LowResFuse, PointwiseConv, Stage, conv_bn_relu, upsample_to


class TwoStreamPredictor(nn.Module):
    """``(B, in_channels, H, W) -> (B, out_channels, H, W)`` for any ``H, W >= 1``.

    The input is padded (replicate) to a multiple of the deep stream's total
    stride and the output cropped back, so odd sizes work. The last
    convolution is zero-initialised: at start the output is zero everywhere,
    which the models built on it turn into the identity filter (or pixel).

    Args:
        in_channels: image channels (3 for RGB, 1 for luma).
        out_channels: numbers predicted per pixel.
        stem_width, stem_stride: first convolution of the deep stream.
        widths, depths, strides, dilations: one entry per residual stage.
        taps: width of the top-down (side-tap) path.
        shallow_width, shallow_depth: the full-resolution stream.
        shallow_blocks: residual blocks after the shallow stream's layers;
            each starts as the identity (its last batch norm's scale is 0
            and its input is a ReLU's, >= 0), so adding blocks to a trained
            model keeps its function until they learn.
        embed, fuse_kernel: width of the fused embedding and size of the
            convolution that makes it from both streams.
        fuse_deep: ``"upsampled"``: that convolution reads the deep
            stream upsampled to full resolution; ``"low"``: its taps on the
            deep stream are one 1x1 projection, run before the upsampling
            (:class:`pff.models.blocks.LowResFuse`; much less work at full
            resolution).
        head_width, head_depth, head_kernel: ``head_depth`` 3x3 conv-BN-ReLU
            layers of ``head_width`` channels, then the output convolution of
            size ``head_kernel``.
        context: width of the image-wide context (0: none). The deepest
            stage's features are averaged over the whole input and a small
            MLP (``context`` hidden units) maps them to a scale and a shift
            per embedding channel, applied everywhere (FiLM): every pixel's
            filter can then depend on evidence from the whole image, such as
            the one blur kernel of a shaken photo. Its last layer starts at
            zero, so adding it to a trained model keeps that model's function
            until it learns. Each tile of a tiled run averages its own input.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stem_width: int,
        stem_stride: int,
        widths: Sequence[int],
        depths: Sequence[int],
        strides: Sequence[int],
        dilations: Sequence[int],
        taps: int,
        shallow_width: int,
        shallow_depth: int,
        shallow_blocks: int,
        embed: int,
        fuse_kernel: int,
        fuse_deep: str,
        head_width: int,
        head_depth: int,
        head_kernel: int,
        context: int = 0,
    ) -> None:
        super().__init__()
        self.stride = stem_stride * math.prod(strides)
        self.stem = conv_bn_relu(in_channels, stem_width, stride=stem_stride)
        stages, c = [], stem_width
        for width, depth, stride, dilation in zip(widths, depths, strides, dilations, strict=True):
            stages.append(Stage(c, width, depth=depth, stride=stride, dilation=dilation))
            c = width
        self.stages = nn.ModuleList(stages)
        # Side taps: a 1x1 projection of every stage, summed top-down (FPN style).
        self.side = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w, taps, 1, bias=False), nn.BatchNorm2d(taps)) for w in widths
        )
        blocks = [BasicBlock(shallow_width, shallow_width) for _ in range(shallow_blocks)]
        for block in blocks:
            nn.init.zeros_(block.bn2.weight)
        self.shallow = nn.Sequential(
            *(conv_bn_relu(in_channels if i == 0 else shallow_width, shallow_width) for i in range(shallow_depth)),
            *blocks,
        )
        self.fuse: nn.Module = (
            LowResFuse(taps, shallow_width, embed, kernel=fuse_kernel) if fuse_deep == "low"
            else conv_bn_relu(taps + shallow_width, embed, kernel=fuse_kernel)
        )  # fmt: skip
        self.head = nn.Sequential(
            *(conv_bn_relu(embed if i == 0 else head_width, head_width) for i in range(head_depth))
        )
        self.context: nn.Module | None = None
        if context:
            self.context = nn.Sequential(nn.Linear(widths[-1], context), nn.ReLU(inplace=True), nn.Linear(context, 2 * embed))
            nn.init.zeros_(self.context[2].weight)
            nn.init.zeros_(self.context[2].bias)
        c_head = head_width if head_depth else embed
        # A 1x1 output convolution is a matrix product that writes the standard layout the filter op
        # reads, whatever the layout of the maps (training and inference run them channels-last).
        self.out: nn.Conv2d = (
            PointwiseConv(c_head, out_channels, standard=True) if head_kernel == 1
            else nn.Conv2d(c_head, out_channels, head_kernel, padding=head_kernel // 2)
        )  # fmt: skip
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # Feature maps channels-last (pff.models.blocks.inference_copy sets it; training makes its
        # inputs channels-last itself): oneDNN's convolutions then need no layout reorders.
        self.channels_last = False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The fused embedding ``(B, embed, H, W)`` of ``x`` ``(B, in_channels, H, W)``."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        # Padded even by 0 (a copy of the few input channels): a branch on the
        # size would be frozen by torch.jit.trace at the example's size, and
        # exported graphs would skip the pad on sizes that need it.
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate")
        if self.channels_last:
            x, xp = x.contiguous(memory_format=torch.channels_last), xp.contiguous(memory_format=torch.channels_last)
        y, skips = self.stem(xp), []
        for stage in self.stages:
            y = stage(y)
            skips.append(y)
        top = None
        for side, skip in zip(reversed(self.side), reversed(skips)):
            tap = side(skip)
            top = tap if top is None else tap + upsample_to(top, tap.shape[-2:])
        if isinstance(self.fuse, LowResFuse):
            fused = self.fuse(F.relu(top), self.shallow(x), xp.shape[-2:])  # (B, embed, H, W)
        else:
            deep = upsample_to(F.relu(top), xp.shape[-2:])[..., :h, :w]  # (B, taps, H, W)
            fused = self.fuse(torch.cat([deep, self.shallow(x)], dim=1))  # (B, embed, H, W)
        if self.context is None:
            return fused
        scale, shift = self.context(skips[-1].mean(dim=(2, 3))).chunk(2, dim=1)  # (B, embed) each
        return fused * (1 + scale[:, :, None, None]) + shift[:, :, None, None]

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """What the output convolution reads: ``(B, head_width or embed, H, W)``."""
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor, out_params: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``(B, out_channels, H, W)``; ``out_params`` (weight, bias) stand in for the output convolution's."""
        y = self.embedding(x)
        if out_params is None:
            return self.out(y)
        if isinstance(self.out, PointwiseConv):
            return self.out(y, *out_params)
        return F.conv2d(y, *out_params, padding=self.out.padding)
