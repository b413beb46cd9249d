"""MobileNet v2's inverted residual (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks")."""

from __future__ import annotations

import torch
from torch import nn

from .conv import ConvNormAct, LayerFactory


class InvertedResidual(nn.Module):
    """1x1 expand (x t) -> 3x3 depthwise -> 1x1 linear projection, with a shortcut when shapes agree.

    The block is "inverted" because it is narrow at its ends and wide in the middle, the opposite of
    ResNet's bottleneck; the projection has no activation ("linear bottleneck"), since a ReLU in a
    low-dimensional space destroys information.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int,
        expand_ratio: int,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU6,
    ) -> None:
        super().__init__()
        hidden = int(round(in_chs * expand_ratio))
        self.use_shortcut = stride == 1 and in_chs == out_chs
        self.expand = (
            ConvNormAct(in_chs, hidden, 1, norm_layer=norm_layer, act_layer=act_layer)
            if expand_ratio != 1 else nn.Identity()
        )
        self.dw = ConvNormAct(hidden, hidden, 3, stride, groups=hidden, norm_layer=norm_layer,
                              act_layer=act_layer)
        self.project = ConvNormAct(hidden, out_chs, 1, norm_layer=norm_layer, act_layer=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.dw(self.expand(x)))
        return x + out if self.use_shortcut else out
