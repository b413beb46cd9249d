"""EfficientNet.

Paper: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019.

A baseline found by architecture search (B0: MobileNet v2's inverted residuals, called MBConv, with
squeeze-and-excitation gates and the SiLU/swish activation), then scaled in three dimensions at once: depth
(blocks per stage) by ``alpha ** phi``, width (channels) by ``beta ** phi`` and input resolution by
``gamma ** phi``, with ``alpha * beta**2 * gamma**2 ~= 2`` so that each step of ``phi`` about doubles the
multiply-adds (compound scaling; the paper's grid search gave alpha 1.2, beta 1.1, gamma 1.15 on B0).
B1 to B7 use coefficients the authors tuned around that rule; cnnlab builds B0 to B3 with theirs:

| model | width | depth | resolution | dropout |
|---|---|---|---|---|
| B0 | 1.0 | 1.0 | 224 | 0.2 |
| B1 | 1.0 | 1.1 | 240 | 0.2 |
| B2 | 1.1 | 1.2 | 260 | 0.3 |
| B3 | 1.2 | 1.4 | 300 | 0.3 |

Channels scale by ``width`` rounded to a multiple of 8 (never 10% below), blocks per stage by ``depth``
rounded up. Stochastic depth (Huang et al. 2016) drops the residual branch of block ``i`` of ``n`` with
probability ``0.2 * i / n`` in training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..nn.conv import ConvNormAct, LayerFactory
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ..nn.mobile import InvertedResidual
from ._base import Classifier, FeatureInfo
from ._registry import register_model
from .mobilenet import make_divisible

PAPER = "Tan & Le 2019, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"

# B0 (paper Table 1): expansion, depthwise kernel, first stride, output channels, blocks; input 32 channels
_B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
       (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


class EfficientNet(Classifier):
    """EfficientNet with the B0 baseline scaled by ``width_mult`` and ``depth_mult``. ``resolution`` is its
    default input side; ``small_input=True`` makes the stem and the first strided stage stride 1.
    ``drop_path_rate`` is the stochastic-depth probability of the last block (0 turns it off)."""

    def __init__(
        self,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        resolution: int = 224,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.2,
        drop_path_rate: float = 0.2,
        small_input: bool = False,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.SiLU,
    ) -> None:
        super().__init__()
        self.set_input_sizes(in_chans, small_input, default=resolution)
        chs = make_divisible(32 * width_mult)
        self.stem = ConvNormAct(in_chans, chs, 3, 1 if small_input else 2, norm_layer=norm_layer,
                                act_layer=act_layer)
        depths = [math.ceil(n * depth_mult) for *_, n in _B0]
        total, index = sum(depths), 0
        reduction, first_stride = (1 if small_input else 2), True
        stages, self.feature_info = [], []
        for (expand, kernel, stride, out, _), n in zip(_B0, depths, strict=True):
            if stride == 2 and small_input and first_stride:
                stride, first_stride = 1, False
            out = make_divisible(out * width_mult)
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(
                    chs, out, stride if j == 0 else 1, expand, norm_layer, act_layer, kernel_size=kernel,
                    se_chs=max(1, chs // 4), se_act=act_layer, se_gate=nn.Sigmoid,
                    drop_path=drop_path_rate * index / total))
                chs, index = out, index + 1
            reduction *= stride
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(chs, reduction, f"stages.{len(stages) - 1}"))
        last = 4 * chs
        stages[-1].append(ConvNormAct(chs, last, 1, norm_layer=norm_layer, act_layer=act_layer))
        self.feature_info[-1] = FeatureInfo(last, reduction, f"stages.{len(stages) - 1}")
        self.stages = nn.Sequential(*stages)                   # 1280 x 7 x 7 for B0 at 224
        self.num_features = last
        self.head = ClassifierHead(last, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's scheme: Kaiming-normal (fan-out) convolutions, BN weight 1 and bias 0."""
        torchvision_init(self, conv_mode="fan_out")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


def _efficientnet(width: float, depth: float, resolution: int, dropout: float, **kwargs) -> EfficientNet:
    """A scaled EfficientNet with its default dropout (``drop_rate`` overrides it)."""
    kwargs.setdefault("drop_rate", dropout)
    return EfficientNet(width, depth, resolution, **kwargs)


@register_model(family="efficientnet", paper=PAPER, torchvision="efficientnet_b0", channels_last=True)
def efficientnet_b0(**kwargs) -> EfficientNet:
    """EfficientNet-B0: the searched baseline (5.3M parameters, 224x224)."""
    return _efficientnet(1.0, 1.0, 224, 0.2, **kwargs)


@register_model(family="efficientnet", paper=PAPER, torchvision="efficientnet_b1", channels_last=True)
def efficientnet_b1(**kwargs) -> EfficientNet:
    """EfficientNet-B1: depth x1.1, 240x240."""
    return _efficientnet(1.0, 1.1, 240, 0.2, **kwargs)


@register_model(family="efficientnet", paper=PAPER, torchvision="efficientnet_b2", channels_last=True)
def efficientnet_b2(**kwargs) -> EfficientNet:
    """EfficientNet-B2: width x1.1, depth x1.2, 260x260."""
    return _efficientnet(1.1, 1.2, 260, 0.3, **kwargs)


@register_model(family="efficientnet", paper=PAPER, torchvision="efficientnet_b3", channels_last=True)
def efficientnet_b3(**kwargs) -> EfficientNet:
    """EfficientNet-B3: width x1.2, depth x1.4, 300x300."""
    return _efficientnet(1.2, 1.4, 300, 0.3, **kwargs)
