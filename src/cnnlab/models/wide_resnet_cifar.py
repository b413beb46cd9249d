"""Wide Residual Networks for CIFAR: WRN-d-k, residual networks made shallower and k times wider.

Paper: Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016.

WRN-d-k has depth ``d = 6 N + 4`` and widening factor ``k``: three groups of ``N = (d - 4) / 6`` pre-activation
blocks B(3,3) (:class:`~cnnlab.nn.wide.WideBasicBlock`: ``BN-ReLU-conv3x3-[dropout]-BN-ReLU-conv3x3``, the
paper's Fig. 1(d)) of widths 16k, 32k and 64k.

Layout (32x32 input), the paper's Table 1:

```
conv1: conv 3x3, 16                                          16 x 32 x 32
layer1 (conv2): N blocks, 16k                                16k x 32 x 32
layer2 (conv3): N blocks, 32k (the first with stride 2)      32k x 16 x 16
layer3 (conv4): N blocks, 64k (the first with stride 2)      64k x 8 x 8
final: BN, ReLU                                              64k x 8 x 8
global average pooling, fully connected                      num_classes
```

| model     | N | widths        | parameters (10 classes) | paper  |
|-----------|---|---------------|-------------------------|--------|
| wrn16_4   | 2 | 64, 128, 256  | 2,748,890               | 2.7M   |
| wrn16_8   | 2 | 128, 256, 512 | 10,961,370              | 11.0M  |
| wrn28_10  | 4 | 160, 320, 640 | 36,479,194              | 36.5M  |
| wrn40_4   | 6 | 64, 128, 256  | 8,949,210               | 8.9M   |

The paper's table of CIFAR results (against the thin ResNets) gives WRN-40-4 8.9M, WRN-16-8 11.0M and
WRN-28-10 36.5M; WRN-16-4's 2.7M is in its tables of the block studies. Its best runs add dropout 0.3 between
the blocks' convolutions (``drop_rate=0.3``).

Shortcuts: the identity where a block keeps the shape; a 1x1 convolution (with the block's stride) where the
width or the resolution changes, that is at the first block of every group (also of the first group, whose
16 -> 16k widening is a change of width for k > 1); for k > 1 the depth ``d`` counts exactly the
convolutions: conv1, the 6N 3x3 ones and the three 1x1 projections. The paper does not say what a
projection sees; cnnlab does as the authors' code does: the projection takes the block's pre-activated input
``ReLU(BN(x))``, the tensor its first convolution takes, while an identity shortcut carries ``x`` itself.

Left open by the paper, and cnnlab's choices: the 3x3 ``conv1`` has no BN or ReLU of its own (the first
block's pre-activation follows it) and, like every convolution before a BN, no bias; the stride sits on the
first 3x3 convolution of a group and on its projection; a BN-ReLU closes the backbone before pooling (the
blocks' outputs are never rectified); He initialisation (Kaiming-normal, fan-out), as cnnlab's CIFAR
ResNets. ``drop_rate`` is the paper's dropout inside every block, after the second ReLU (off by
default; 0.3 in the paper's best runs); ``head_drop_rate`` is a dropout before the classifier, which the paper
does not use (off by default), as the other models' head dropout.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import CnnlabError
from ..nn.conv import LayerFactory, make_act
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ..nn.wide import WideBasicBlock
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Zagoruyko & Komodakis 2016, Wide Residual Networks (CIFAR)"


class WideResNetCifar(Classifier):
    """WRN-``depth``-``widen_factor`` for 32x32 images.

    Built for small images in either form: ``small_input`` is accepted for the zoo's common interface and
    changes nothing. Any input of at least 4x4 works (two stride-2 groups).

    Args:
        depth: ``6 N + 4`` (N blocks per group, N >= 1).
        widen_factor: ``k``; the groups have 16k, 32k and 64k channels.
        drop_rate: dropout between the two convolutions of every block (the paper's; 0 turns it off).
        head_drop_rate: dropout before the final linear layer (not in the paper; 0 turns it off).
    """

    def __init__(self, depth: int, widen_factor: int, num_classes: int = 10, in_chans: int = 3,
                 drop_rate: float = 0.0, head_drop_rate: float = 0.0, small_input: bool = True,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d, act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise CnnlabError(f"a wide ResNet has depth 6 N + 4 (N >= 1 blocks per group), got {depth}")
        if widen_factor < 1:
            raise CnnlabError(f"the widening factor k must be at least 1, got {widen_factor}")
        if not 0.0 <= drop_rate < 1.0:
            raise CnnlabError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.set_input_sizes(in_chans, small_input, minimum=4, small_minimum=4, default=32, small_default=32)
        self.depth, self.widen_factor = depth, widen_factor
        n = (depth - 4) // 6
        self.stem = nn.Conv2d(in_chans, 16, 3, padding=1, bias=norm_layer is None)         # 16 x 32 x 32
        chs, self.feature_info = 16, []
        for i, width in enumerate((16 * widen_factor, 32 * widen_factor, 64 * widen_factor)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(WideBasicBlock(chs, width, stride, drop_rate, norm_layer, act_layer))
                chs = width
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))   # 16k x 32 x 32, 32k x 16², 64k x 8²
            self.feature_info.append(FeatureInfo(chs, 2**i, f"layer{i + 1}"))
        final: OrderedDict[str, nn.Module] = OrderedDict()
        if norm_layer is not None:
            final["bn"] = norm_layer(chs)
        final["act"] = make_act(act_layer) if norm_layer is not None else act_layer()  # x is layer3's output
        self.final = nn.Sequential(final)                                       # 64k x 8 x 8 at 32
        self.feature_info[-1] = FeatureInfo(chs, 4, "final")                    # the map the head pools
        self.num_features = chs
        self.head = ClassifierHead(chs, num_classes, drop_rate=head_drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """He initialisation: Kaiming-normal (fan-out) convolutions, BN weight 1 and bias 0."""
        torchvision_init(self, conv_mode="fan_out")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.layer3(self.layer2(self.layer1(self.stem(x)))))


_reg = dict(family="resnet_cifar", paper=PAPER)


@register_model(**_reg, channels_last=True)  # 1.10-1.14x; the wider ones 1.05-1.06x (README)
def wrn16_4(**kwargs) -> WideResNetCifar:
    """WRN-16-4: 2 blocks per group, widths 64, 128, 256 (2.7M parameters)."""
    return WideResNetCifar(16, 4, **kwargs)


@register_model(**_reg)
def wrn16_8(**kwargs) -> WideResNetCifar:
    """WRN-16-8: 2 blocks per group, widths 128, 256, 512 (11.0M parameters)."""
    return WideResNetCifar(16, 8, **kwargs)


@register_model(**_reg)
def wrn28_10(**kwargs) -> WideResNetCifar:
    """WRN-28-10: 4 blocks per group, widths 160, 320, 640 (36.5M parameters); the paper's best, with
    ``drop_rate=0.3``."""
    return WideResNetCifar(28, 10, **kwargs)


@register_model(**_reg, channels_last=True)  # 1.10-1.14x; the wider ones 1.05-1.06x (README)
def wrn40_4(**kwargs) -> WideResNetCifar:
    """WRN-40-4: 6 blocks per group, widths 64, 128, 256 (8.9M parameters)."""
    return WideResNetCifar(40, 4, **kwargs)
