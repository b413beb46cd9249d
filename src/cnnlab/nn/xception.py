"""Xception's blocks (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017).

Xception takes the Inception hypothesis to its extreme: cross-channel and spatial correlations can be mapped
entirely separately, so every Inception module becomes a depthwise separable convolution, and those are
stacked in residual blocks.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .conv import LayerFactory


class SeparableConv2d(nn.Sequential):
    """A depthwise ``k x k`` convolution (one filter per channel) then a pointwise 1x1 convolution, with nothing
    between them: the paper found that a ReLU between the two hurts (Section 4.7, Figure 10), unlike MobileNet's
    block (:class:`~cnnlab.nn.conv.DepthwiseSeparableConv`), which puts BN and ReLU after each. No biases (a
    batch norm follows)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3) -> None:
        super().__init__(OrderedDict(
            depthwise=nn.Conv2d(in_chs, in_chs, kernel_size, padding=kernel_size // 2, groups=in_chs, bias=False),
            pointwise=nn.Conv2d(in_chs, out_chs, 1, bias=False),
        ))
        self.in_chs, self.out_chs = in_chs, out_chs


class XceptionBlock(nn.Module):
    """``reps`` times ``ReLU -> separable 3x3 -> BN``, then a 3x3 max-pool of stride ``stride``, plus a shortcut:
    the identity, or a strided 1x1 convolution with BN where the shape changes (Figure 5).

    ``grow_first`` widens to ``out_chs`` in the first separable convolution (entry flow), else in the last
    (the exit flow's first block). ``first_relu=False`` drops the first ReLU (the entry flow's first block
    follows a ReLU already).
    """

    def __init__(self, in_chs: int, out_chs: int, reps: int, stride: int = 1, first_relu: bool = True,
                 grow_first: bool = True, norm_layer: LayerFactory = nn.BatchNorm2d) -> None:
        super().__init__()
        if out_chs != in_chs or stride != 1:  # registered first, as in the released network's weights
            self.shortcut = nn.Sequential(OrderedDict(
                conv=nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), bn=norm_layer(out_chs)))
        else:
            self.shortcut = None
        widths = [in_chs] + ([out_chs] * reps if grow_first else [in_chs] * (reps - 1) + [out_chs])
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False)):
            if i > 0 or first_relu:
                # not in place where the block's input is still needed by the shortcut
                layers.append(nn.ReLU(inplace=i > 0))
            layers += [SeparableConv2d(a, b), norm_layer(b)]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.residual = nn.Sequential(*layers)
        self.in_chs, self.out_chs = in_chs, out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.residual(x) + identity
