"""Pyramidal residual units (Han, Kim & Kim, "Deep Pyramidal Residual Networks", CVPR 2017).

A pyramidal unit is a pre-activation-style residual unit with the paper's placement of batch norm and ReLU
(its Fig. 6(d)): ``BN -> conv -> BN -> ReLU -> conv -> BN``, then the addition, with no ReLU before the first
convolution and none after the addition. Every unit is wider than the one before it, so the shortcut is the
identity padded with zero channels (the paper's Fig. 5(b)): the paper finds projection shortcuts hurt, and a
zero-padded identity keeps every unit's shortcut parameter-free.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import ConvNormAct, LayerFactory, norm_or_identity


class PyramidShortcut(nn.Module):
    """The zero-padded identity shortcut of a pyramidal unit: no parameters.

    Where the unit down-samples, the identity is averaged over 2x2 windows with stride 2 (the paper's way to
    down-sample the shortcut, instead of ResNet's strided 1x1 sampling that drops three pixels in four). The
    ``out_chs - in_chs`` new channels are zeros appended *after* the input's channels, ``[x, 0]``, so channel
    ``c`` of the identity is channel ``c`` of the input (``nn.residual.ZeroPadShortcut`` pads both sides).
    The pooling rounds up (``ceil_mode``) so that an odd-sized map matches the strided 3x3 convolution.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        if out_chs < in_chs:
            raise ValueError(f"a zero-padded shortcut cannot narrow {in_chs} channels to {out_chs}")
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        extra = self.out_chs - self.in_chs
        return nn.functional.pad(x, (0, 0, 0, 0, 0, extra)) if extra else x   # zeros after the C channels


class PyramidBlock(nn.Module):
    """The pyramidal residual unit (basic form, two 3x3 convolutions), the paper's Fig. 6(d):

    ``y = BN(conv3x3(ReLU(BN(conv3x3_s(BN(x)))))) + shortcut(x)``, with no activation after the sum.
    ``stride`` sits on the first convolution.
    """

    expansion = 1

    def __init__(self, in_chs: int, planes: int, stride: int = 1, norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        self.out_chs = planes
        self.bn = norm_or_identity(norm_layer, in_chs)
        self.conv1 = ConvNormAct(in_chs, planes, 3, stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(planes, planes, 3, norm_layer=norm_layer, act_layer=None)
        self.shortcut = PyramidShortcut(in_chs, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(self.bn(x))) + self.shortcut(x)


class PyramidBottleneck(nn.Module):
    """The pyramidal bottleneck unit: Fig. 6(d)'s placement on 1x1 reduce, 3x3, 1x1 expand (x4):

    ``BN -> conv1x1 -> BN -> ReLU -> conv3x3_s -> BN -> ReLU -> conv1x1 -> BN``, plus the zero-padded shortcut,
    no activation after the sum. ``planes`` is the unit's width ``D_k``; it outputs ``4 D_k`` channels. The
    stride sits on the 3x3 convolution.
    """

    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int = 1, norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        self.out_chs = planes * self.expansion
        self.bn = norm_or_identity(norm_layer, in_chs)
        self.conv1 = ConvNormAct(in_chs, planes, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(planes, planes, 3, stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv3 = ConvNormAct(planes, self.out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.shortcut = PyramidShortcut(in_chs, self.out_chs, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(self.bn(x)))) + self.shortcut(x)
