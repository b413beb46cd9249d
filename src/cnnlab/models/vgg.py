"""VGG.

Paper: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015.

Stacks of 3x3 convolutions (two 3x3 layers see a 5x5 window, three see 7x7, with fewer weights and more
non-linearities) and five 2x2 max-pools, then FC-4096, FC-4096 and the classifier. Configurations A, B, D
and E of the paper are vgg11, vgg13, vgg16 and vgg19; the ``_bn`` variants add batch normalisation after
every convolution (not in the paper; torchvision's).
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.conv import ConvNormAct, LayerFactory
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Simonyan & Zisserman 2015, Very Deep Convolutional Networks for Large-Scale Image Recognition"

# Convolutions per stage; stage i has 64 * 2**i channels (capped at 512).
_STAGE_DEPTHS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


class VGG(Classifier):
    """VGG. ``small_input=True`` drops the last max-pool and pools the head globally (for 16-32 px)."""

    def __init__(
        self,
        depths: tuple[int, ...],
        num_classes: int = 1000,
        in_chans: int = 3,
        batch_norm: bool = False,
        drop_rate: float = 0.5,
        small_input: bool = False,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.set_input_sizes(in_chans, small_input, minimum=32, small_minimum=16)
        norm = nn.BatchNorm2d if batch_norm else None
        stages, self.feature_info, chs = [], [], in_chans
        for i, depth in enumerate(depths):
            out = min(64 * 2**i, 512)
            layers: list[nn.Module] = []
            for _ in range(depth):
                # torchvision keeps the conv bias even before batch norm; so do we, for weight compatibility
                layers.append(ConvNormAct(chs, out, 3, norm_layer=norm, act_layer=act_layer, bias=True))
                chs = out
            last = i == len(depths) - 1
            if not (last and small_input):
                layers.append(nn.MaxPool2d(2, 2))
            stages.append(nn.Sequential(*layers))
            self.feature_info.append(FeatureInfo(out, 2 ** (i + 1 - (last and small_input)), f"stages.{i}"))
        self.stages = nn.Sequential(*stages)                   # 512 x 7 x 7 at 224
        self.num_features = chs
        self.head = ClassifierHead(chs, num_classes, pool_size=1 if small_input else 7, hidden=(4096, 4096),
                                   drop_rate=drop_rate, act_layer=act_layer)
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's scheme: Kaiming-normal (fan-out) convolutions, N(0, 0.01) linear layers."""
        torchvision_init(self, conv_mode="fan_out", linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


def _vgg(depth: int, batch_norm: bool, **kwargs) -> VGG:
    return VGG(_STAGE_DEPTHS[depth], batch_norm=batch_norm, **kwargs)


_reg = dict(family="vgg", paper=PAPER)


@register_model(**_reg, torchvision="vgg11")
def vgg11(**kwargs) -> VGG:
    """VGG-11 (configuration A)."""
    return _vgg(11, False, **kwargs)


@register_model(**_reg, torchvision="vgg13")
def vgg13(**kwargs) -> VGG:
    """VGG-13 (configuration B)."""
    return _vgg(13, False, **kwargs)


@register_model(**_reg, torchvision="vgg16")
def vgg16(**kwargs) -> VGG:
    """VGG-16 (configuration D)."""
    return _vgg(16, False, **kwargs)


@register_model(**_reg, torchvision="vgg19")
def vgg19(**kwargs) -> VGG:
    """VGG-19 (configuration E)."""
    return _vgg(19, False, **kwargs)


@register_model(**_reg, torchvision="vgg11_bn")
def vgg11_bn(**kwargs) -> VGG:
    """VGG-11 with batch normalisation."""
    return _vgg(11, True, **kwargs)


@register_model(**_reg, torchvision="vgg13_bn")
def vgg13_bn(**kwargs) -> VGG:
    """VGG-13 with batch normalisation."""
    return _vgg(13, True, **kwargs)


@register_model(**_reg, torchvision="vgg16_bn")
def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 with batch normalisation."""
    return _vgg(16, True, **kwargs)


@register_model(**_reg, torchvision="vgg19_bn")
def vgg19_bn(**kwargs) -> VGG:
    """VGG-19 with batch normalisation."""
    return _vgg(19, True, **kwargs)
