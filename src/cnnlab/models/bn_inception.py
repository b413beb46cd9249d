"""BN-Inception (Inception v2).

Paper: Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate
Shift", ICML 2015: the network of Figure 5 (appendix), GoogLeNet rebuilt around batch normalization.

Changes to GoogLeNet (``models/googlenet.py``): batch norm after every convolution, before its ReLU; the 5x5
convolutions replaced by two 3x3 (:class:`BNInceptionModule`); three 28x28 modules instead of two; average or
max pooling in each module as the table says; no pooling layers between modules: modules 3c and 4e reduce the
grid themselves (stride-2 3x3 convolutions next to a stride-2 max-pool that passes its input through); the
first layer a 7x7/2 separable convolution with depth multiplier 8. Layout at 224x224:

```
separable conv 7x7/2, depth multiplier 8       64 x 112 x 112
max-pool 3x3/2                                 64 x 56 x 56
conv 1x1 64, conv 3x3 192                     192 x 56 x 56
max-pool 3x3/2                                192 x 28 x 28
3a, 3b (avg-pool branch)                      256, 320 x 28 x 28
3c (stride 2, max-pool pass-through)          576 x 14 x 14
4a, 4b, 4c, 4d (avg-pool branch)              576, 576, 608, 608 x 14 x 14
4e (stride 2, max-pool pass-through)         1056 x 7 x 7
5a (avg-pool branch), 5b (max-pool branch)   1024 x 7 x 7
global average pool, linear                  num_classes
```

The table's output column disagrees with its filter columns in three rows: 4c and 4d give 160 + 160 + 160 + 128
= 608 channels (the column says 576), 4e 192 + 256 + 608 = 1056 (it says 1024), and 3c's output is 14x14
after its stride 2 (it says 28x28). The filter columns are what the weights are; they are followed here.

Figure 5's table has no auxiliary classifiers, and there are none here: the model returns logits in training
mode too. Section 4.2.1 removes dropout from the network (batch norm regularises), so ``drop_rate`` is 0.

What the paper leaves open, and the choices made:

- the separable first layer: a linear depthwise 7x7/2 (3 -> 24 channels), then 1x1 to 64 with batch norm and
  ReLU after it only (:class:`SeparableConv`); ``separable_stem=False`` gives a plain 7x7/2 convolution;
- biases: none in the convolutions, since batch norm's shift replaces them (the paper's Section 3.2); batch
  norm eps 0.001, as the released Inception networks use;
- padding: every 3x3 pool has padding 1 and every stride-2 layer gives ``ceil(n / 2)``, so a stride-2 module's
  branches agree at any size (the 224 layout is the same either way); average pools count real pixels only;
- initialisation (not given): Kaiming-normal convolutions, as torchvision does for its batch-norm networks.

``small_input=True`` follows GoogLeNet's small form: a 3x3/1 convolution (a plain one: separating a 3x3 on
3 channels saves nothing) and no first max-pool, for a total stride of 8 (32 px -> 4x4 at 5b).
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import torch
from torch import nn

from ..nn.bn_inception import BNInceptionModule, SeparableConv
from ..nn.conv import ConvNormAct, LayerFactory
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Ioffe & Szegedy 2015, Batch Normalization: Accelerating Deep Network Training by Reducing Internal " \
        "Covariate Shift"

# Figure 5: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool, pool projection (0: pass-through),
# stride.
_MODULES = {
    "3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "3c": (0, 128, 160, 64, 96, "max", 0, 2),
    "4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "4e": (0, 128, 192, 192, 256, "max", 0, 2),
    "5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "5b": (352, 192, 320, 192, 224, "max", 128, 1),
}


class BNInception(Classifier):
    """BN-Inception, the network of Ioffe & Szegedy's Figure 5 (no auxiliary classifiers).

    Args:
        separable_stem: the first layer as the paper's separable 7x7/2 with depth multiplier 8 (False: a plain
            7x7/2 convolution, as most later re-implementations have it).
        norm_layer: batch norm by default; ``None`` gives the same network without it (convolutions with bias),
            the comparison the paper is about.
        small_input: 3x3/1 first layer and no first max-pool, for 16-32 px images.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        separable_stem: bool = True,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        # every stride-2 step gives ceil(n / 2): the backbone runs on any size, so the minimum is one unit per
        # reduction step (32 px; 8 px in the small form)
        self.set_input_sizes(in_chans, small_input, minimum=32, small_minimum=8)
        norm_kwargs = {"eps": 0.001} if norm_layer is not None else None
        conv = functools.partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer, norm_kwargs=norm_kwargs)
        pool = functools.partial(nn.MaxPool2d, 3, 2, 1)
        stem: OrderedDict[str, nn.Module] = OrderedDict()
        if small_input:
            stem["conv1"] = conv(in_chans, 64, 3, 1)                       # 64 x 32 x 32
        else:
            stem["conv1"] = SeparableConv(in_chans, 64, 7, 2, multiplier=8, norm_layer=norm_layer,
                                          act_layer=act_layer, norm_kwargs=norm_kwargs) \
                if separable_stem else conv(in_chans, 64, 7, 2)            # 64 x 112 x 112
            stem["pool1"] = pool()                                         # 64 x 56 x 56
        stem["conv2_reduce"] = conv(64, 64, 1)
        stem["conv2"] = conv(64, 192, 3)                                   # 192 x 56 x 56
        stem["pool2"] = pool()                                             # 192 x 28 x 28
        self.stem = nn.Sequential(stem)
        chs = 192
        for name, (ch1x1, red3, ch3, red_dbl, dbl, kind, proj, stride) in _MODULES.items():
            module = BNInceptionModule(chs, ch1x1, red3, ch3, red_dbl, dbl, kind, proj, conv, stride)
            self.add_module(f"inception{name}", module)
            chs = module.out_chs
        # 3b: 320 x 28 x 28, 3c: 576 x 14 x 14, 4d: 608 x 14 x 14, 4e: 1056 x 7 x 7, 5b: 1024 x 7 x 7
        r = 2 if small_input else 8
        self.feature_info = [FeatureInfo(192, r // 2, "stem.conv2"), FeatureInfo(320, r, "inception3b"),
                             FeatureInfo(608, 2 * r, "inception4d"), FeatureInfo(1024, 4 * r, "inception5b")]
        self.num_features = chs
        self.head = ClassifierHead(chs, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming-normal (fan-out) convolutions, batch norm 1/0, linear N(0, 0.01) with bias 0: the paper gives
        no scheme; this is torchvision's for its batch-norm networks."""
        torchvision_init(self, linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)                                                   # 192 x 28 x 28
        x = self.inception3c(self.inception3b(self.inception3a(x)))       # 576 x 14 x 14
        x = self.inception4b(self.inception4a(x))                          # 576 x 14 x 14
        x = self.inception4e(self.inception4d(self.inception4c(x)))       # 1056 x 7 x 7
        return self.inception5b(self.inception5a(x))                       # 1024 x 7 x 7


@register_model(family="inception", paper=PAPER, channels_last=True,
                notes="Figure 5: separable 7x7 first layer, double 3x3 branches, no auxiliary classifiers")
def inception_v2(**kwargs) -> BNInception:
    """BN-Inception (Inception v2) as in the paper's Figure 5: batch norm after every convolution, no dropout,
    no auxiliary classifiers; 11.28M parameters for 1000 classes."""
    return BNInception(**kwargs)
