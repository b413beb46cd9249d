"""Dense connectivity (Huang et al. 2017, "Densely Connected Convolutional Networks")."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .conv import LayerFactory, make_act


class NormActConv(nn.Sequential):
    """Pre-activation unit ``norm -> act -> conv`` (DenseNet's composite function H)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        parts = OrderedDict(bn=norm_layer(in_chs)) if norm_layer is not None else OrderedDict()  # None: no norm
        parts["act"] = make_act(act_layer)
        # without a norm layer after it, the next layer's input has no shift but this bias
        parts["conv"] = nn.Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=norm_layer is None)
        super().__init__(parts)


class DenseLayer(nn.Module):
    """Bottleneck dense layer: ``BN-ReLU-1x1 (bn_size*k) -> BN-ReLU-3x3 (k)``; adds k = growth channels."""

    def __init__(
        self,
        in_chs: int,
        growth_rate: int,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.reduce = NormActConv(in_chs, bn_size * growth_rate, 1, norm_layer, act_layer)
        self.conv = NormActConv(bn_size * growth_rate, growth_rate, 3, norm_layer, act_layer)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.conv(self.reduce(x)))


class DenseBlock(nn.Module):
    """``num_layers`` dense layers; each sees the concatenation of the block input and all earlier outputs.

    Output channels: ``in_chs + num_layers * growth_rate``.
    """

    def __init__(self, num_layers: int, in_chs: int, growth_rate: int, **layer_kwargs) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_chs + i * growth_rate, growth_rate, **layer_kwargs) for i in range(num_layers)
        )
        self.out_chs = in_chs + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Sequential):
    """Between dense blocks: ``BN-ReLU-1x1 conv`` compressing channels by ``compression``, 2x2 avg-pool."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        parts = OrderedDict(bn=norm_layer(in_chs)) if norm_layer is not None else OrderedDict()  # None: no norm
        parts["act"] = make_act(act_layer)
        parts["conv"] = nn.Conv2d(in_chs, out_chs, 1, bias=norm_layer is None)
        parts["pool"] = nn.AvgPool2d(2, stride=2)
        super().__init__(parts)
