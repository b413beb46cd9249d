"""Inception v3 and Inception v4.

Papers: Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the Inception Architecture for Computer Vision",
CVPR 2016 (v3); Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning", AAAI 2017 (v4, Figures 3-9).

Inception v3 at 299x299 (torchvision's form, so that its weights load; batch norm eps 0.001 everywhere):

```
stem: 3x3/2, 3x3, 3x3 pad, max 3x3/2, 1x1, 3x3, max 3x3/2     192 x 35 x 35
3 x A (35x35: 5x5 factorised)                                 288 x 35 x 35
B (grid reduction)                                            768 x 17 x 17
4 x C (17x17: 1x7 and 7x1)              -> auxiliary head     768 x 17 x 17
D (grid reduction)                                           1280 x 8 x 8
2 x E (8x8: expanded filter bank)                            2048 x 8 x 8
global average pool, dropout 0.5, linear                     num_classes
```

Inception v4 at 299x299 (Figure 9):

```
stem (Figure 3): 3x3/2, 3x3, 3x3 pad, [max 3x3/2 | 3x3/2],
  [1x1, 3x3 | 1x1, 7x1, 1x7, 3x3], [3x3/2 | max 3x3/2]        384 x 35 x 35
4 x Inception-A (Figure 4)                                    384 x 35 x 35
Reduction-A (Figure 7; k, l, m, n = 192, 224, 256, 384)       1024 x 17 x 17
7 x Inception-B (Figure 5)                                   1024 x 17 x 17
Reduction-B (Figure 8)                                       1536 x 8 x 8
3 x Inception-C (Figure 6)                                   1536 x 8 x 8
global average pool, dropout 0.2, linear                     num_classes
```

``small_input=True`` gives both a stem without its stride-2 steps (stride-1 first convolution and pools; v3
drops its two stem max-pools, v4 keeps its pooling branches at stride 1), so 16-32 px images (v4: 17-32) reach
the modules at about their own size; the grid reductions keep their stride, for a total stride of 4.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..nn.conv import ConvNormAct
from ..nn.head import ClassifierHead
from ..nn.inception_v3 import (
    InceptionV3A,
    InceptionV3Aux,
    InceptionV3B,
    InceptionV3C,
    InceptionV3D,
    InceptionV3E,
    InceptionV3Stem,
)
from ..nn.inception_v4 import InceptionV4A, InceptionV4B, InceptionV4C, InceptionV4Stem, ReductionA, ReductionB
from ..nn.init import trunc_normal_
from ._base import Classifier, FeatureInfo
from ._registry import register_model
from .googlenet import InceptionOutputs, renormalise_for_inception

PAPER_V3 = "Szegedy et al. 2016, Rethinking the Inception Architecture for Computer Vision"
PAPER_V4 = "Szegedy et al. 2017, Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning"

# conv-BN-ReLU without a convolution bias, BN eps 0.001 (the released networks')
conv_bn = functools.partial(ConvNormAct, norm_kwargs={"eps": 0.001})


def truncated_normal_init(model: nn.Module, std: float = 0.1) -> None:
    """N(0, std) truncated at two standard deviations for convolutions and linear layers (std 0.1: the scheme of
    the TensorFlow-slim Inception networks), zero biases, BN weight 1 and bias 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            trunc_normal_(m.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class InceptionV3(Classifier):
    """Inception v3. In training mode with ``aux_logits`` it returns :class:`InceptionOutputs` (logits, aux1,
    None), as GoogLeNet does; in eval mode, logits."""

    aux_heads = ("aux1",)

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True, drop_rate: float = 0.5,
                 transform_input: bool = False, small_input: bool = False) -> None:
        super().__init__()
        # smallest inputs: 75 px (the last reduction needs 3x3); small form 13 px
        self.set_input_sizes(in_chans, small_input, minimum=75, small_minimum=13, default=299)
        self.aux_logits, self.transform_input = aux_logits, transform_input
        conv = conv_bn
        self.stem = InceptionV3Stem(in_chans, conv, small_input)   # 192 x 35 x 35
        self.mixed5b = InceptionV3A(192, 32, conv)                  # 256 x 35 x 35
        self.mixed5c = InceptionV3A(256, 64, conv)                  # 288
        self.mixed5d = InceptionV3A(288, 64, conv)                  # 288
        self.mixed6a = InceptionV3B(288, conv)                      # 768 x 17 x 17
        self.mixed6b = InceptionV3C(768, 128, conv)
        self.mixed6c = InceptionV3C(768, 160, conv)
        self.mixed6d = InceptionV3C(768, 160, conv)
        self.mixed6e = InceptionV3C(768, 192, conv)                 # 768 x 17 x 17
        self.aux1 = InceptionV3Aux(768, num_classes, conv) if aux_logits else None
        self.mixed7a = InceptionV3D(768, conv)                      # 1280 x 8 x 8
        self.mixed7b = InceptionV3E(1280, conv)                     # 2048 x 8 x 8
        self.mixed7c = InceptionV3E(2048, conv)                     # 2048 x 8 x 8
        r = 1 if small_input else 8
        self.feature_info = [FeatureInfo(192, r, "stem"), FeatureInfo(288, r, "mixed5d"),
                             FeatureInfo(768, 2 * r, "mixed6e"), FeatureInfo(2048, 4 * r, "mixed7c")]
        self.num_features = 2048
        self.head = ClassifierHead(2048, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        truncated_normal_init(self)
        if self.aux1 is not None:  # as torchvision's scales them: the auxiliary head's last layers start smaller
            trunc_normal_(self.aux1.conv1.conv.weight, std=0.01, a=-0.02, b=0.02)
            trunc_normal_(self.aux1.fc.weight, std=0.001, a=-0.002, b=0.002)

    def _features(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.stem(renormalise_for_inception(x) if self.transform_input else x)
        x = self.mixed6a(self.mixed5d(self.mixed5c(self.mixed5b(x))))
        x = self.mixed6e(self.mixed6d(self.mixed6c(self.mixed6b(x))))
        aux = self.aux1(x) if with_aux else None
        x = self.mixed7c(self.mixed7b(self.mixed7a(x)))
        return x, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x, with_aux=False)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor | InceptionOutputs:
        self.check_input(x)
        with_aux = self.training and self.aux1 is not None
        features, aux = self._features(x, with_aux)
        logits = self.forward_head(features)
        return InceptionOutputs(logits, aux, None) if with_aux else logits


class InceptionV4(Classifier):
    """Inception v4: the pure Inception network of the paper (no residual connections)."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.2,
                 small_input: bool = False) -> None:
        super().__init__()
        # smallest inputs: 75 px (Reduction-B needs 3x3); small form 17 px
        self.set_input_sizes(in_chans, small_input, minimum=75, small_minimum=17, default=299)
        conv = conv_bn
        self.stem = InceptionV4Stem(in_chans, conv, stride=1 if small_input else 2)       # 384 x 35 x 35
        self.stage_a = nn.Sequential(*[InceptionV4A(384, conv) for _ in range(4)])       # 384 x 35 x 35
        self.reduction_a = ReductionA(384, 192, 224, 256, 384, conv)                      # 1024 x 17 x 17
        self.stage_b = nn.Sequential(*[InceptionV4B(1024, conv) for _ in range(7)])      # 1024 x 17 x 17
        self.reduction_b = ReductionB(1024, conv)                                         # 1536 x 8 x 8
        self.stage_c = nn.Sequential(*[InceptionV4C(1536, conv) for _ in range(3)])      # 1536 x 8 x 8
        r = 1 if small_input else 8
        self.feature_info = [FeatureInfo(384, r, "stage_a"), FeatureInfo(1024, 2 * r, "stage_b"),
                             FeatureInfo(1536, 4 * r, "stage_c")]
        self.num_features = 1536
        self.head = ClassifierHead(1536, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        truncated_normal_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduction_a(self.stage_a(self.stem(x)))
        return self.stage_c(self.reduction_b(self.stage_b(x)))


@register_model(family="inception", paper=PAPER_V3, torchvision="inception_v3", channels_last=True,
                notes="torchvision's form; auxiliary head in training only")
def inception_v3(**kwargs) -> InceptionV3:
    """Inception v3 (299x299): factorised and asymmetric convolutions, an auxiliary classifier in training."""
    return InceptionV3(**kwargs)


@register_model(family="inception", paper=PAPER_V4, channels_last=True,
                notes="the paper's Figure 9; timm's inception_v4 loads")
def inception_v4(**kwargs) -> InceptionV4:
    """Inception v4 (299x299): the paper's stem, 4 x A, 7 x B, 3 x C with reduction modules between."""
    return InceptionV4(**kwargs)
