"""MobileNet v2's inverted residual (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks"), and the squeeze-and-excitation gate MobileNet v3 adds to it (Hu et al. 2018,
"Squeeze-and-Excitation Networks"; Howard et al. 2019, "Searching for MobileNetV3")."""

from __future__ import annotations

import torch
from torch import nn

from .conv import ConvNormAct, LayerFactory, make_act
from .drop import DropPath


class SqueezeExcite(nn.Module):
    """Channel attention: global average pool -> 1x1 reduce -> act -> 1x1 expand -> gate, and the input scaled
    channel by channel by the gate (Hu et al. 2018). MobileNet v3 gates with a hard sigmoid and reduces to a
    quarter of the channels, rounded to a multiple of 8."""

    def __init__(self, chs: int, squeeze_chs: int, act_layer: LayerFactory = nn.ReLU,
                 gate_layer: LayerFactory = nn.Hardsigmoid) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(chs, squeeze_chs, 1)
        self.act = make_act(act_layer)
        self.expand = nn.Conv2d(squeeze_chs, chs, 1)
        self.gate = make_act(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


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
        expand_ratio: float,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU6,
        kernel_size: int = 3,
        hidden_chs: int | None = None,
        se_chs: int = 0,
        se_act: LayerFactory = nn.ReLU,
        se_gate: LayerFactory = nn.Hardsigmoid,
        drop_path: float = 0.0,
    ) -> None:
        """``hidden_chs`` gives the expanded width directly (MobileNet v3's tables), instead of ``in_chs *
        expand_ratio``; ``kernel_size`` is the depthwise kernel (v3 uses 3 and 5); ``se_chs`` > 0 adds a
        squeeze-and-excitation gate of that many squeezed channels after the depthwise convolution, with
        ``se_act`` inside and ``se_gate`` at its end (v3: ReLU and hard sigmoid; EfficientNet's MBConv: SiLU
        and sigmoid); ``drop_path`` drops the residual branch of whole samples in training (EfficientNet's
        stochastic depth; only where there is a shortcut)."""
        super().__init__()
        hidden = hidden_chs if hidden_chs is not None else int(round(in_chs * expand_ratio))
        self.use_shortcut = stride == 1 and in_chs == out_chs
        self.expand = (
            ConvNormAct(in_chs, hidden, 1, norm_layer=norm_layer, act_layer=act_layer)
            if hidden != in_chs else nn.Identity()
        )
        self.dw = ConvNormAct(hidden, hidden, kernel_size, stride, groups=hidden, norm_layer=norm_layer,
                              act_layer=act_layer)
        self.se = SqueezeExcite(hidden, se_chs, se_act, se_gate) if se_chs else nn.Identity()
        self.project = ConvNormAct(hidden, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.drop_path = DropPath(drop_path) if drop_path and self.use_shortcut else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.dw(self.expand(x))))
        return x + self.drop_path(out) if self.use_shortcut else out
