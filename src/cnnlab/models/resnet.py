"""ResNet.

Paper: He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.

A 7x7/2 stem and a 3x3/2 max-pool, then four stages of residual blocks (64, 128, 256, 512 planes; each
stage after the first halves the resolution), global average pooling and one linear layer. Shortcuts are
identities, with a strided 1x1 projection where the shape changes. ResNet-18/34 use two-conv basic blocks,
ResNet-50/101/152 1x1-3x3-1x1 bottlenecks (stride on the 3x3, as torchvision's "v1.5").

The same network with wider or grouped bottlenecks (see :class:`~cnnlab.nn.residual.Bottleneck`):

- Wide ResNet-50-2 / 101-2 (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016): the inner 3x3 of
  every bottleneck twice as wide (``width_per_group=128``). The paper's own networks are CIFAR WRN-d-k of
  basic blocks; these are its ImageNet bottleneck form, as torchvision builds it.
- ResNeXt-50 32x4d (Xie et al., "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017):
  the 3x3 split into 32 groups of 4 channels per 64 planes (``groups=32, width_per_group=4``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..nn.conv import ConvNormAct, LayerFactory
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ..nn.residual import BasicBlock, Bottleneck
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "He et al. 2016, Deep Residual Learning for Image Recognition"


class ResNet(Classifier):
    """ResNet. ``small_input=True`` uses a 3x3/1 stem without max-pool (the paper's CIFAR-style stem)."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, int, int, int],
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        small_input: bool = False,
        zero_init_residual: bool = False,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        if block is not Bottleneck and (groups, width_per_group) != (1, 64):
            raise ValueError("groups and width_per_group apply to bottleneck blocks (ResNet-50 and deeper)")
        widen = {"groups": groups, "base_width": width_per_group} if block is Bottleneck else {}
        self.set_input_sizes(in_chans, small_input)
        self.zero_init_residual = zero_init_residual
        if small_input:
            self.stem = nn.Sequential(OrderedDict(
                conv=ConvNormAct(in_chans, 64, 3, 1, norm_layer=norm_layer, act_layer=act_layer),
            ))
        else:
            self.stem = nn.Sequential(OrderedDict(
                conv=ConvNormAct(in_chans, 64, 7, 2, 3, norm_layer=norm_layer, act_layer=act_layer),
                pool=nn.MaxPool2d(3, 2, 1),                                   # 64 x 56 x 56 at 224
            ))
        stem_reduction = 1 if small_input else 4
        chs, self.feature_info = 64, []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(chs, planes, stride if j == 0 else 1, norm_layer, act_layer, **widen))
                chs = planes * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(chs, stem_reduction * 2**i, f"layer{i + 1}"))
        self.num_features = chs                                              # 512 or 2048 x 7 x 7 at 224
        self.head = ClassifierHead(chs, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's scheme: Kaiming-normal (fan-out) convolutions, BN weight 1 and bias 0.

        With ``zero_init_residual`` the last BN of each block starts at 0, so every block starts as an
        identity (Goyal et al. 2017).
        """
        torchvision_init(self, conv_mode="fan_out")
        if self.zero_init_residual:
            for m in self.modules():
                last = getattr(m, "conv3", None) if isinstance(m, Bottleneck) else getattr(m, "conv2", None)
                if isinstance(m, (BasicBlock, Bottleneck)) and hasattr(last, "bn"):
                    nn.init.zeros_(last.bn.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


_reg = dict(family="resnet", paper=PAPER)


@register_model(**_reg, torchvision="resnet18")
def resnet18(**kwargs) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2]."""
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


@register_model(**_reg, torchvision="resnet34")
def resnet34(**kwargs) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3]."""
    return ResNet(BasicBlock, (3, 4, 6, 3), **kwargs)


@register_model(**_reg, torchvision="resnet50", channels_last=True)  # README, Memory layout
def resnet50(**kwargs) -> ResNet:
    """ResNet-50: bottlenecks [3, 4, 6, 3]."""
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)


@register_model(**_reg, torchvision="resnet101", channels_last=True)
def resnet101(**kwargs) -> ResNet:
    """ResNet-101: bottlenecks [3, 4, 23, 3]."""
    return ResNet(Bottleneck, (3, 4, 23, 3), **kwargs)


@register_model(**_reg, torchvision="resnet152", channels_last=True)
def resnet152(**kwargs) -> ResNet:
    """ResNet-152: bottlenecks [3, 8, 36, 3]."""
    return ResNet(Bottleneck, (3, 8, 36, 3), **kwargs)


@register_model(family="resnet", paper="Zagoruyko & Komodakis 2016, Wide Residual Networks",
                torchvision="wide_resnet50_2")
def wide_resnet50_2(**kwargs) -> ResNet:
    """Wide ResNet-50-2: ResNet-50's bottlenecks [3, 4, 6, 3] with inner 3x3 convolutions twice as wide."""
    return ResNet(Bottleneck, (3, 4, 6, 3), width_per_group=128, **kwargs)


@register_model(family="resnet", paper="Zagoruyko & Komodakis 2016, Wide Residual Networks",
                torchvision="wide_resnet101_2")
def wide_resnet101_2(**kwargs) -> ResNet:
    """Wide ResNet-101-2: ResNet-101's bottlenecks [3, 4, 23, 3] with inner 3x3 convolutions twice as wide."""
    return ResNet(Bottleneck, (3, 4, 23, 3), width_per_group=128, **kwargs)


@register_model(family="resnet", paper="Xie et al. 2017, Aggregated Residual Transformations for Deep Neural "
                "Networks", torchvision="resnext50_32x4d", channels_last=True)
def resnext50_32x4d(**kwargs) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50's bottlenecks [3, 4, 6, 3], each 3x3 in 32 groups of 4 channels per 64
    planes (cardinality 32)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), groups=32, width_per_group=4, **kwargs)
