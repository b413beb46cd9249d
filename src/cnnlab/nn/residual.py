"""Residual blocks (He et al. 2016, "Deep Residual Learning for Image Recognition")."""

from __future__ import annotations

import torch
from torch import nn

from .conv import ConvNormAct, LayerFactory, make_act


def _shortcut(in_chs: int, out_chs: int, stride: int, norm_layer: LayerFactory) -> nn.Module | None:
    """Identity when shapes agree, else a strided 1x1 projection (the paper's option B)."""
    if stride == 1 and in_chs == out_chs:
        return None
    return ConvNormAct(in_chs, out_chs, 1, stride, norm_layer=norm_layer, act_layer=None)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity shortcut: ``y = act(F(x) + x)``. Used by ResNet-18/34."""

    expansion = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.conv1 = ConvNormAct(in_chs, planes, 3, stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(planes, out_chs, 3, norm_layer=norm_layer, act_layer=None)
        self.shortcut = _shortcut(in_chs, out_chs, stride, norm_layer)
        self.act = make_act(act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv2(self.conv1(x)) + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a shortcut. Used by ResNet-50/101/152.

    The stride sits on the 3x3 convolution ("ResNet v1.5", as in torchvision), not on the first 1x1.
    """

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.conv1 = ConvNormAct(in_chs, planes, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(planes, planes, 3, stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv3 = ConvNormAct(planes, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.shortcut = _shortcut(in_chs, out_chs, stride, norm_layer)
        self.act = make_act(act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv3(self.conv2(self.conv1(x))) + identity)
