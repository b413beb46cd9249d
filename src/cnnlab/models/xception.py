"""Xception.

Paper: Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017 (Figure 5).

36 convolutions in 14 blocks, all but the first two depthwise separable, all but the first and last block
with a residual shortcut. Layout at 299x299:

```
entry flow: 3x3/2 conv 32, 3x3 conv 64                         64 x 147 x 147
            3 blocks (2 separable convs + 3x3/2 max-pool):
            128, 256, 728                                     728 x 19 x 19
middle flow: 8 blocks of 3 separable convs, 728                728 x 19 x 19
exit flow:  block (separable 728, 1024, 3x3/2 max-pool)       1024 x 10 x 10
            separable 1536, separable 2048                    2048 x 10 x 10
global average pool, dropout 0.5, linear                      num_classes
```

Batch norm after every convolution; the separable convolutions have no nonlinearity between their depthwise
and pointwise halves. 22,855,952 parameters, as the paper's Table 3 says. The layout follows the released
network's, whose weights (timm's ``legacy_xception``) load by position.

``small_input=True``: the first convolution at stride 1, for a total stride of 16.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..nn.conv import ConvNormAct
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ..nn.xception import SeparableConv2d, XceptionBlock
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Chollet 2017, Xception: Deep Learning with Depthwise Separable Convolutions"


def _separable_bn_relu(in_chs: int, out_chs: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(conv=SeparableConv2d(in_chs, out_chs), bn=nn.BatchNorm2d(out_chs),
                                     act=nn.ReLU(inplace=True)))


class Xception(Classifier):
    """Xception: entry, middle and exit flows of depthwise separable convolutions with residual shortcuts."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5, middle_blocks: int = 8,
                 small_input: bool = False) -> None:
        super().__init__()
        if middle_blocks < 0:
            raise ValueError(f"middle_blocks must be 0 or more, got {middle_blocks}")
        r = 1 if small_input else 2
        # the network runs from 7 px (small form 5 px) on, but the last map is one unit per 32 (16) pixels there
        self.set_input_sizes(in_chans, small_input, minimum=32, small_minimum=16, default=299)
        self.stem = nn.Sequential(OrderedDict(
            conv1=ConvNormAct(in_chans, 32, 3, r, 0),               # 32 x 149 x 149
            conv2=ConvNormAct(32, 64, 3, 1, 0),                     # 64 x 147 x 147
        ))
        self.entry = nn.Sequential(OrderedDict(
            block1=XceptionBlock(64, 128, 2, 2, first_relu=False),  # 128 x 74 x 74
            block2=XceptionBlock(128, 256, 2, 2),                   # 256 x 37 x 37
            block3=XceptionBlock(256, 728, 2, 2),                   # 728 x 19 x 19
        ))
        self.middle = nn.Sequential(*[XceptionBlock(728, 728, 3) for _ in range(middle_blocks)])  # 728 x 19 x 19
        self.exit = nn.Sequential(OrderedDict(
            block=XceptionBlock(728, 1024, 2, 2, grow_first=False),  # 1024 x 10 x 10
            conv3=_separable_bn_relu(1024, 1536),                  # 1536 x 10 x 10
            conv4=_separable_bn_relu(1536, 2048),                  # 2048 x 10 x 10
        ))
        self.feature_info = [FeatureInfo(128, 2 * r, "entry.block1"), FeatureInfo(256, 4 * r, "entry.block2"),
                             FeatureInfo(728, 8 * r, "middle"), FeatureInfo(2048, 16 * r, "exit")]
        self.num_features = 2048
        self.head = ClassifierHead(2048, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        torchvision_init(self, conv_mode="fan_out")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.exit(self.middle(self.entry(self.stem(x))))


@register_model(family="xception", paper=PAPER, channels_last=True, notes="timm's legacy_xception loads")
def xception(**kwargs) -> Xception:
    """Xception (299x299): 36 convolutions, depthwise separable after the stem, in residual blocks."""
    return Xception(**kwargs)
