"""ZFNet: AlexNet refined by visualising what its layers learn.

Paper: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014 (Fig. 3, the
architecture of their ImageNet model). Their deconvnet showed AlexNet's 11x11/4 first layer leaving dead
filters and aliasing; the fix is a 7x7/2 first layer and a stride-2 second layer. Trained on one GPU, so
layers 3-5 are dense (no grouped convolutions as in AlexNet's two towers).

Layout (224x224 input), the paper's sizes in every row:

```
conv1 7x7/2, 96, pad 1, ReLU                      96 x 110 x 110
pool1 3x3/2 (rounding up), contrast norm          96 x 55 x 55
conv2 5x5/2, 256, no pad, ReLU                    256 x 26 x 26
pool2 3x3/2 (rounding up), contrast norm          256 x 13 x 13
conv3 3x3, 384, ReLU                              384 x 13 x 13
conv4 3x3, 384, ReLU                              384 x 13 x 13
conv5 3x3, 256, ReLU                              256 x 13 x 13
pool5 3x3/2                                       256 x 6 x 6
fc6 4096, ReLU, dropout; fc7 4096, ReLU, dropout  4096
fc8                                               num_classes
```

62,357,608 parameters with 1000 classes (3,726,464 in the convolutions, 58,631,144 in the three FC layers).

Where the paper is ambiguous (its figure gives sizes, not paddings): ``(224 - 7) / 2 + 1`` is not a whole
number, so conv1 pads by 1 (``floor(219 / 2) + 1 = 110``); ``(110 - 3) / 2 + 1 = 54.5`` and ``(26 - 3) / 2 + 1
= 12.5``, so the max-pools round up (``ceil_mode``, the convention of the Caffe-era codebases: 55 and 13);
conv2 is unpadded (``(55 - 5) / 2 + 1 = 26``) and conv3-5 keep the size (pad 1). Every size then matches the
figure. "Contrast normalized across feature maps" is taken as AlexNet's local response normalisation
(the paper points to Krizhevsky et al. for it) with AlexNet's constants (5 maps, alpha 1e-4, beta 0.75,
k 2), since the paper gives none; ``lrn=False`` removes it. Dropout (rate 0.5) follows the ReLU of fc6 and
fc7 ("dropout in layers 6 and 7"). Weights start as N(0, 0.01^2) and biases at 0 (the paper's Sec. 3);
its renormalisation of filters whose RMS exceeds 0.1 is a training rule and is not part of the model.

``small_input=True`` is AlexNet's small-input form carried over: AlexNet drops the 4x stride of its first
convolution and keeps the three pools; ZFNet's 4x is split between conv1 and conv2, so conv1 becomes 3x3/1
(pad 1) and conv2 5x5/1 (pad 2). The small form keeps every width (62,346,088 parameters: conv1 is 3x3) and
runs from 8x8 up (32 px: 16, 8, 4 after the pools; the head's adaptive pool takes any map to 6x6).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..nn.conv import ConvNormAct, LayerFactory
from ..nn.head import ClassifierHead
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks"


class ZFNet(Classifier):
    """ZFNet. ``small_input=True`` makes conv1 3x3/1 and conv2 5x5/1 (for 16-32 px images)."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        small_input: bool = False,
        lrn: bool = True,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.set_input_sizes(in_chans, small_input, minimum=47, small_minimum=8)
        conv = dict(norm_layer=None, act_layer=act_layer)
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        norm = (lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)) if lrn else nn.Identity
        if small_input:
            conv1, conv2 = ConvNormAct(in_chans, 96, 3, 1, 1, **conv), ConvNormAct(96, 256, 5, 1, 2, **conv)
        else:
            conv1 = ConvNormAct(in_chans, 96, 7, 2, 1, **conv)                # 96 x 110 x 110 at 224
            conv2 = ConvNormAct(96, 256, 5, 2, 0, **conv)                     # 256 x 26 x 26
        self.features = nn.Sequential(
            OrderedDict(
                conv1=conv1,
                pool1=pool(),                                                  # 96 x 55 x 55
                norm1=norm(),
                conv2=conv2,
                pool2=pool(),                                                  # 256 x 13 x 13
                norm2=norm(),
                conv3=ConvNormAct(256, 384, 3, **conv),
                conv4=ConvNormAct(384, 384, 3, **conv),
                conv5=ConvNormAct(384, 256, 3, **conv),                        # 256 x 13 x 13
                pool5=pool(),                                                  # 256 x 6 x 6
            )
        )
        reduction = (2, 4, 8) if small_input else (4, 16, 32)                # conv1 and conv2 stride 2 or 1
        self.feature_info = [
            FeatureInfo(96, reduction[0], "features.norm1"),
            FeatureInfo(256, reduction[1], "features.norm2"),
            FeatureInfo(256, reduction[2], "features.pool5"),
        ]
        self.num_features = 256
        self.head = ClassifierHead(256, num_classes, pool_size=6, hidden=(4096, 4096), drop_rate=drop_rate,
                                   act_layer=act_layer)
        self.init_weights()

    def init_weights(self) -> None:
        """The paper's: every weight N(0, 0.01^2) ("initialized to 10^-2"), every bias 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_model(family="alexnet", paper=PAPER, notes="LRN as the paper's contrast normalisation; pad/pool rounding "
                "chosen to reproduce Fig. 3's 110-55-26-13-6 sizes")
def zfnet(**kwargs) -> ZFNet:
    """ZFNet (Zeiler & Fergus 2014): AlexNet with a 7x7/2 first layer and a stride-2 second layer; 62.4M
    parameters. ``small_input`` for 16-32 px images."""
    return ZFNet(**kwargs)
