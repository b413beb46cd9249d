"""DenseNet.

Paper: Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional Networks", CVPR 2017.

Inside a dense block every layer receives the concatenation of all earlier feature maps and adds
``growth_rate`` new ones. Transitions between blocks compress the channels (``compression`` = 0.5 in
DenseNet-BC) and halve the resolution. DenseNet-121/169/201 are DenseNet-BC with growth rate 32.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..nn.conv import ConvNormAct, LayerFactory, make_act
from ..nn.dense import DenseBlock, Transition
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Huang et al. 2017, Densely Connected Convolutional Networks"


class DenseNet(Classifier):
    """DenseNet-BC. ``small_input=True`` uses a 3x3/1 stem without max-pool (for 28-32 px images).

    Stage i is ``transition (i > 0) -> dense block``; the last stage ends with BN and ReLU.
    """

    def __init__(
        self,
        block_config: tuple[int, ...],
        growth_rate: int = 32,
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        small_input: bool = False,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.set_input_sizes(in_chans, small_input)
        chs = num_init_features
        if small_input:
            self.stem = nn.Sequential(OrderedDict(
                conv=ConvNormAct(in_chans, chs, 3, 1, norm_layer=norm_layer, act_layer=act_layer)))
        else:
            self.stem = nn.Sequential(OrderedDict(
                conv=ConvNormAct(in_chans, chs, 7, 2, 3, norm_layer=norm_layer, act_layer=act_layer),
                pool=nn.MaxPool2d(3, 2, 1),                                   # 64 x 56 x 56 at 224
            ))
        reduction = 1 if small_input else 4
        stages, self.feature_info = [], []
        for i, num_layers in enumerate(block_config):
            parts: OrderedDict[str, nn.Module] = OrderedDict()
            if i > 0:
                out = int(chs * compression)
                parts["transition"] = Transition(chs, out, norm_layer, act_layer)
                chs, reduction = out, reduction * 2
            block = DenseBlock(num_layers, chs, growth_rate, bn_size=bn_size, drop_rate=drop_rate,
                               norm_layer=norm_layer, act_layer=act_layer)
            parts["block"] = block
            chs = block.out_chs
            if i == len(block_config) - 1:
                if norm_layer is not None:
                    parts["bn"] = norm_layer(chs)
                parts["act"] = make_act(act_layer)
            stages.append(nn.Sequential(parts))
            self.feature_info.append(FeatureInfo(chs, reduction, f"stages.{i}"))
        self.stages = nn.Sequential(*stages)                   # 1024 x 7 x 7 at 224 for DenseNet-121
        self.num_features = chs
        self.head = ClassifierHead(chs, num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's scheme: Kaiming-normal (fan-in) convolutions, BN 1/0, linear bias 0."""
        torchvision_init(self, conv_mode="fan_in", linear_bias_zero=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


_reg = dict(family="densenet", paper=PAPER, channels_last=True)  # README, Memory layout


@register_model(**_reg, torchvision="densenet121")
def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121: dense blocks of (6, 12, 24, 16) layers, growth rate 32."""
    return DenseNet((6, 12, 24, 16), **kwargs)


@register_model(**_reg, torchvision="densenet169")
def densenet169(**kwargs) -> DenseNet:
    """DenseNet-169: dense blocks of (6, 12, 32, 32) layers, growth rate 32."""
    return DenseNet((6, 12, 32, 32), **kwargs)


@register_model(**_reg, torchvision="densenet201")
def densenet201(**kwargs) -> DenseNet:
    """DenseNet-201: dense blocks of (6, 12, 48, 32) layers, growth rate 32."""
    return DenseNet((6, 12, 48, 32), **kwargs)
