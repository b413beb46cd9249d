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

    ``groups`` and ``base_width`` widen the inner 3x3: it has ``planes * base_width / 64 * groups`` channels in
    ``groups`` groups. ``base_width=128`` doubles it (Wide ResNet-50-2: Zagoruyko & Komodakis, "Wide Residual
    Networks", BMVC 2016, in its bottleneck form); ``groups=32, base_width=4`` makes the 3x3 a set of 32
    parallel 4-channel paths (ResNeXt's cardinality: Xie et al., "Aggregated Residual Transformations for Deep
    Neural Networks", CVPR 2017). The output keeps ``planes * 4`` channels either way.
    """

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        groups: int = 1,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        width = int(planes * base_width / 64) * groups
        self.conv1 = ConvNormAct(in_chs, width, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(width, width, 3, stride, groups=groups, norm_layer=norm_layer, act_layer=act_layer)
        self.conv3 = ConvNormAct(width, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.shortcut = _shortcut(in_chs, out_chs, stride, norm_layer)
        self.act = make_act(act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv3(self.conv2(self.conv1(x))) + identity)


class ZeroPadShortcut(nn.Module):
    """The paper's option A: the identity, subsampled by ``stride`` and padded with zero channels up to
    ``out_chs`` where the shape changes. No parameters (He et al. 2016, Sec. 3.3 and the CIFAR-10 networks)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]                 # a 1x1 "convolution" of stride s
        extra = self.out_chs - self.in_chs
        return nn.functional.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2)) if extra else x


class CifarBlock(nn.Module):
    """Two 3x3 convolutions, with the parameter-free shortcut of :class:`ZeroPadShortcut` (``residual=True``,
    ``y = relu(F(x) + x)``) or none at all (``residual=False``: the paper's "plain" network, ``y = relu(F(x))``).
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, residual: bool = True,
                 norm_layer: LayerFactory = nn.BatchNorm2d, act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_chs, out_chs, 3, stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(out_chs, out_chs, 3, norm_layer=norm_layer, act_layer=None)
        self.shortcut = ZeroPadShortcut(in_chs, out_chs, stride) if residual else None
        self.act = make_act(act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return self.act(y + self.shortcut(x) if self.shortcut is not None else y)
