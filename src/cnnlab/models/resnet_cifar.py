"""ResNets for CIFAR-10, and the plain networks they were compared with.

Paper: He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, Section 4.2.

Layout (32x32 input), ``6n + 2`` weighted layers:

```
conv 3x3, 16                                   16 x 32 x 32
layer1: n blocks of two 3x3 convs, 16          16 x 32 x 32
layer2: n blocks, 32 (the first with stride 2) 32 x 16 x 16
layer3: n blocks, 64 (the first with stride 2) 64 x 8 x 8
global average pooling, fully connected        num_classes
```

n = 3, 5, 7, 9, 18 gives ResNet-20, 32, 44, 56, 110 (0.27M, 0.46M, 0.66M, 0.85M, 1.7M parameters). The
shortcuts are the paper's option A, parameter-free: identities, subsampled and zero-padded where the shape
changes. The plain networks are the same stacks without shortcuts; the paper shows them getting worse, in
training error too, as they get deeper, while the ResNets get better (CIFAR-10 test error: ResNet-20
8.75%, 32 7.51%, 44 7.17%, 56 6.97%, 110 6.43%).
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.conv import ConvNormAct, LayerFactory
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ..nn.residual import CifarBlock
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "He et al. 2016, Deep Residual Learning for Image Recognition (Sec. 4.2, CIFAR-10)"


class CifarResNet(Classifier):
    """A ResNet (``residual=True``) or plain network (``residual=False``) of ``6 n + 2`` layers for 32x32 images.

    Built for small images in either form: ``small_input`` is accepted for the zoo's common interface and
    changes nothing. Any input of at least 4x4 works (two stride-2 stages).
    """

    def __init__(self, n: int, residual: bool = True, num_classes: int = 10, in_chans: int = 3,
                 drop_rate: float = 0.0, small_input: bool = True, norm_layer: LayerFactory = nn.BatchNorm2d,
                 act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        self.set_input_sizes(in_chans, small_input, minimum=4, small_minimum=4, default=32, small_default=32)
        self.depth, self.residual = 6 * n + 2, residual
        self.stem = ConvNormAct(in_chans, 16, 3, norm_layer=norm_layer, act_layer=act_layer)
        chs, self.feature_info = 16, []
        for i, width in enumerate((16, 32, 64)):
            blocks = [CifarBlock(chs if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1, residual,
                                 norm_layer, act_layer) for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            chs = width
            self.feature_info.append(FeatureInfo(chs, 2**i, f"layer{i + 1}"))
        self.num_features = chs                                                     # 64 x 8 x 8 at 32
        self.head = ClassifierHead(chs, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """He initialisation (the paper's [13]): Kaiming-normal convolutions, BN weight 1 and bias 0."""
        torchvision_init(self, conv_mode="fan_out")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.layer2(self.layer1(self.stem(x))))


_reg = dict(family="resnet_cifar", paper=PAPER, channels_last=True)  # README, Memory layout


@register_model(**_reg)
def resnet20(**kwargs) -> CifarResNet:
    """ResNet-20 for CIFAR: 3 blocks per stage, zero-padding shortcuts (0.27M parameters)."""
    return CifarResNet(3, True, **kwargs)


@register_model(**_reg)
def resnet32(**kwargs) -> CifarResNet:
    """ResNet-32 for CIFAR: 5 blocks per stage (0.46M parameters)."""
    return CifarResNet(5, True, **kwargs)


@register_model(**_reg)
def resnet44(**kwargs) -> CifarResNet:
    """ResNet-44 for CIFAR: 7 blocks per stage (0.66M parameters)."""
    return CifarResNet(7, True, **kwargs)


@register_model(**_reg)
def resnet56(**kwargs) -> CifarResNet:
    """ResNet-56 for CIFAR: 9 blocks per stage (0.85M parameters)."""
    return CifarResNet(9, True, **kwargs)


@register_model(**_reg)
def resnet110(**kwargs) -> CifarResNet:
    """ResNet-110 for CIFAR: 18 blocks per stage (1.7M parameters)."""
    return CifarResNet(18, True, **kwargs)


@register_model(**_reg)
def plain20(**kwargs) -> CifarResNet:
    """The plain 20-layer network for CIFAR: ResNet-20 without shortcuts."""
    return CifarResNet(3, False, **kwargs)


@register_model(**_reg)
def plain32(**kwargs) -> CifarResNet:
    """The plain 32-layer network for CIFAR: ResNet-32 without shortcuts."""
    return CifarResNet(5, False, **kwargs)


@register_model(**_reg)
def plain44(**kwargs) -> CifarResNet:
    """The plain 44-layer network for CIFAR: ResNet-44 without shortcuts."""
    return CifarResNet(7, False, **kwargs)


@register_model(**_reg)
def plain56(**kwargs) -> CifarResNet:
    """The plain 56-layer network for CIFAR: ResNet-56 without shortcuts."""
    return CifarResNet(9, False, **kwargs)
