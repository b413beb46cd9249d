"""Residual Attention Networks for ImageNet: Attention-56 and Attention-92.

Paper: Wang, Jiang, Qian, Yang, Li, Zhang, Wang & Tang, "Residual Attention Network for Image Classification",
CVPR 2017.

A pre-activation bottleneck ResNet (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016) with
Attention Modules between its stages. Each module runs a trunk of residual units beside a soft-mask branch,
an hourglass of max-pools, residual units and interpolations ending in a sigmoid, and multiplies them by
attention residual learning, ``H = (1 + M) * T`` (blocks in :mod:`cnnlab.nn.attention`). The layout is the
paper's Table 2 (224x224 input), with p, t, r = 1, 2, 1:

```
conv 7x7/2, 64; max-pool 3x3/2                                       64 x 56 x 56
stage1: residual unit (256); n1 attention modules, masks 3 pools     256 x 56 x 56     (masks down to 7x7)
stage2: residual unit (512, /2); n2 attention modules, masks 2 pools 512 x 28 x 28     (masks down to 7x7)
stage3: residual unit (1024, /2); n3 attention modules, mask 1 pool  1024 x 14 x 14    (masks down to 7x7)
stage4: 3 residual units (2048, the first /2)                        2048 x 7 x 7
BN-ReLU, global average pooling, fully connected                     num_classes
```

(n1, n2, n3) = (1, 1, 1) is Attention-56 and (1, 2, 3) Attention-92: the name counts the weighted layers of
the trunk path, 3 per residual unit (each module has p + t + p = 4 on it) plus the stem and the classifier.
Every soft mask goes down to the resolution of stage 4 (1/32 of the input), the deepest one from the largest map.

Parameters: 31,810,728 and 52,466,344, exactly those of the authors' released Caffe deploy files
(``Attention-56/92-deploy.prototxt``, counted layer by layer: convolutions, BN scale and shift, classifier).
The paper's Table 4 says 31.9M and 51.3M: the first is within 0.3% (31.88M if BN's running mean and variance
are counted too); the second is 2.3% below both this network and the authors' own file, and nothing in
Table 2's layout accounts for the difference. Multiply-adds at 224x224: 6.27G and 10.53G (Table 4: 6.3G
and 10.4G FLOPs).

What the paper leaves open, and the choices made here:

- the mask's max-pools: 3x3, stride 2, padding 1 (side ``n`` -> ``ceil(n / 2)``, so any map pools, even 1x1);
- the up-sampling: bilinear interpolation (``align_corners=False``) to the exact size of the map it is added to
  (``upsample="nearest"`` is the other choice); the skip connections pass the down path's map through one
  residual unit before the sum, and the lowest resolution has 2r units, as in the authors' release;
- the two 1x1 convolutions of the mask: each after BN-ReLU, C -> C channels, no bias (as released);
- the stage transitions: the stride sits on the 3x3 convolution, the projection shortcut (1x1, strided) takes
  the pre-activated input; a final BN-ReLU precedes the pooling (the network is pre-activation throughout);
- the initialisation (not given): Kaiming-normal convolutions (fan-out), BN weight 1 and bias 0.

``small_input=True`` (the zoo's 16-32 px form): a 3x3 stride-1 stem without the max-pool, so the stages run at
1, 1/2, 1/4 and 1/8 of the input (32x32: 32, 16, 8, 4); the masks keep their 3, 2, 1 pools and so still go
down to stage 4's size (32 -> 4, 16 -> 4, 8 -> 4; 28x28: 28 -> 14 -> 7 -> 4). Minimum input: 32x32 (8x8 in
the small form), where stage 4 is 1x1.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..nn.attention import AttentionModule, PreActBottleneck
from ..nn.conv import ConvNormAct, LayerFactory, make_act
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Wang et al. 2017, Residual Attention Network for Image Classification"

_WIDTHS = (256, 512, 1024, 2048)
_MASK_DEPTHS = (3, 2, 1)  # max-pools in the soft mask of stages 1-3: each goes down to stage 4's resolution


class ResidualAttentionNet(Classifier):
    """A Residual Attention Network with ``num_modules[i]`` Attention Modules in stage ``i + 1`` (i = 0, 1, 2).

    Args:
        num_modules: Attention Modules per stage: (1, 1, 1) Attention-56, (1, 2, 3) Attention-92.
        p, t, r: residual units before and after the branches, in the trunk, and between pools in the mask.
        upsample: ``"bilinear"`` or ``"nearest"``, the mask's up-sampling.
        attention_residual: ``(1 + M) * T`` (the paper's); False for ``M * T`` (its naive baseline).
        small_input: 3x3 stride-1 stem without the max-pool, for 16-32 px images.
    """

    def __init__(self, num_modules: tuple[int, int, int], num_classes: int = 1000, in_chans: int = 3,
                 small_input: bool = False, drop_rate: float = 0.0, p: int = 1, t: int = 2, r: int = 1,
                 upsample: str = "bilinear", attention_residual: bool = True,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d, act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        self.set_input_sizes(in_chans, small_input, minimum=32, small_minimum=8)
        if small_input:
            self.stem = ConvNormAct(in_chans, 64, 3, 1, norm_layer=norm_layer, act_layer=act_layer)  # 64 x H x W
        else:
            self.stem = nn.Sequential(OrderedDict(
                conv=ConvNormAct(in_chans, 64, 7, 2, norm_layer=norm_layer, act_layer=act_layer),  # 64 x 112 x 112
                pool=nn.MaxPool2d(3, 2, padding=1),                                              # 64 x 56 x 56
            ))
        first = 1 if small_input else 4
        chs, self.feature_info = 64, []
        for i, width in enumerate(_WIDTHS):
            stride = 1 if i == 0 else 2
            blocks = [PreActBottleneck(chs, width, stride, norm_layer, act_layer)]
            if i < 3:
                blocks += [AttentionModule(width, _MASK_DEPTHS[i], p, t, r, upsample, attention_residual,
                                           norm_layer, act_layer) for _ in range(num_modules[i])]
            else:
                blocks += [PreActBottleneck(width, width, 1, norm_layer, act_layer) for _ in range(2)]
            self.add_module(f"stage{i + 1}", nn.Sequential(*blocks))
            chs = width
            # the last stage is reported after the final BN-ReLU: the map the head pools
            self.feature_info.append(FeatureInfo(chs, first * 2**i, f"stage{i + 1}" if i < 3 else "norm_act"))
        # stages at 224: 256 x 56 x 56, 512 x 28 x 28, 1024 x 14 x 14, 2048 x 7 x 7
        norm = OrderedDict(bn=norm_layer(chs)) if norm_layer is not None else OrderedDict()
        self.norm_act = nn.Sequential(OrderedDict(**norm, act=make_act(act_layer)))  # pre-activation: BN-ReLU last
        self.num_features = chs                                                       # 2048 x 7 x 7 at 224
        self.head = ClassifierHead(chs, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal convolutions (fan-out), BN weight 1 and bias 0, PyTorch's default linear layer."""
        torchvision_init(self, conv_mode="fan_out")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.stage1(self.stem(x)))
        return self.norm_act(self.stage4(self.stage3(x)))


_reg = dict(family="attention", paper=PAPER, channels_last=True)  # README, Memory layout


@register_model(**_reg, notes="31.8M parameters, as the authors' released model (paper's Table 4: 31.9M)")
def attention56(**kwargs) -> ResidualAttentionNet:
    """Attention-56: one Attention Module in each of stages 1-3 (31.8M parameters; the paper: 31.9M)."""
    return ResidualAttentionNet((1, 1, 1), **kwargs)


@register_model(**_reg, notes="52.5M parameters as built and as released by the authors (paper's Table 4: 51.3M)")
def attention92(**kwargs) -> ResidualAttentionNet:
    """Attention-92: 1, 2 and 3 Attention Modules in stages 1-3 (52.5M parameters, as the authors' released
    model; the paper's Table 4 says 51.3M)."""
    return ResidualAttentionNet((1, 2, 3), **kwargs)
