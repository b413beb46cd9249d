"""Inception-ResNet-v2.

Paper: Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning", AAAI 2017 (Figures 15-19).

Inception modules with residual connections: each block's branches are concatenated, brought back to the
input's width by a linear 1x1 convolution, scaled down and added to the input. Layout at 299x299:

```
stem: 3x3/2, 3x3, 3x3 pad, max 3x3/2, 1x1, 3x3, max 3x3/2     192 x 35 x 35
mixed5b: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | avg-pool, 1x1       320 x 35 x 35
10 x Inception-ResNet-A (scale 0.17)                          320 x 35 x 35
Reduction-A (k, l, m, n = 256, 256, 384, 384)                1088 x 17 x 17
20 x Inception-ResNet-B (scale 0.10)                         1088 x 17 x 17
Reduction-B                                                  2080 x 8 x 8
9 x Inception-ResNet-C (scale 0.20), 1 more (scale 1, no ReLU) 2080 x 8 x 8
1x1 convolution                                              1536 x 8 x 8
global average pool, dropout 0.2, linear                     num_classes
```

The paper says Inception-ResNet-v2 shares Inception-v4's stem (Figure 3, 384 channels at 35x35). The network
the authors released (TensorFlow-slim's, whose layout timm's ``inception_resnet_v2`` and its 55,843,464
parameters follow) has instead an Inception-v3-like stem and a first Inception module (``mixed5b``, 320
channels), and a last 8x8 block without scaling or ReLU before a 1x1 convolution to 1536 channels. cnnlab
builds the released network, so that its weights (in timm's layout) load by position.

``small_input=True``: the first convolution at stride 1 and no stem max-pools, for a total stride of 4.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.head import ClassifierHead
from ..nn.inception import Branches
from ..nn.inception_resnet import InceptionResNetA, InceptionResNetB, InceptionResNetC, InceptionResNetReductionB
from ..nn.inception_v3 import InceptionV3Stem
from ..nn.inception_v4 import ReductionA
from ._base import Classifier, FeatureInfo
from ._registry import register_model
from .inception import PAPER_V4, conv_bn, truncated_normal_init


class InceptionResNetV2(Classifier):
    """Inception-ResNet-v2 as released. ``scales`` are the residual scales of the A, B and C blocks."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.2,
                 scales: tuple[float, float, float] = (0.17, 0.10, 0.20), small_input: bool = False) -> None:
        super().__init__()
        # smallest inputs: 75 px (the last reduction needs 3x3); small form 13 px
        self.set_input_sizes(in_chans, small_input, minimum=75, small_minimum=13, default=299)
        conv = conv_bn
        self.stem = InceptionV3Stem(in_chans, conv, small_input)   # 192 x 35 x 35, as Inception v3's
        self.mixed5b = Branches(                                    # 320 x 35 x 35
            192,
            branch0=conv(192, 96, 1),
            branch1=nn.Sequential(conv(192, 48, 1), conv(48, 64, 5)),
            branch2=nn.Sequential(conv(192, 64, 1), conv(64, 96, 3), conv(96, 96, 3)),
            branch3=nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), conv(192, 64, 1)),
        )
        a, b, c = scales
        self.stage_a = nn.Sequential(*[InceptionResNetA(320, conv, a) for _ in range(10)])    # 320 x 35 x 35
        self.reduction_a = ReductionA(320, 256, 256, 384, 384, conv)                          # 1088 x 17 x 17
        self.stage_b = nn.Sequential(*[InceptionResNetB(1088, conv, b) for _ in range(20)])   # 1088 x 17 x 17
        self.reduction_b = InceptionResNetReductionB(1088, conv)                              # 2080 x 8 x 8
        self.stage_c = nn.Sequential(*[InceptionResNetC(2080, conv, c) for _ in range(9)],
                                     InceptionResNetC(2080, conv, 1.0, act_layer=None))       # 2080 x 8 x 8
        self.conv7b = conv(2080, 1536, 1)                                                     # 1536 x 8 x 8
        r = 1 if small_input else 8
        self.feature_info = [FeatureInfo(320, r, "stage_a"), FeatureInfo(1088, 2 * r, "stage_b"),
                             FeatureInfo(1536, 4 * r, "conv7b")]
        self.num_features = 1536
        self.head = ClassifierHead(1536, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        truncated_normal_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage_a(self.mixed5b(self.stem(x)))
        x = self.stage_b(self.reduction_a(x))
        return self.conv7b(self.stage_c(self.reduction_b(x)))


@register_model(family="inception", paper=PAPER_V4, channels_last=True,
                notes="the released network's stem; timm's weights load")
def inception_resnet_v2(**kwargs) -> InceptionResNetV2:
    """Inception-ResNet-v2 (299x299): scaled residual Inception blocks, 10 x A, 20 x B, 10 x C."""
    return InceptionResNetV2(**kwargs)
