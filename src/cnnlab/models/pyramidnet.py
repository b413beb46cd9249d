"""PyramidNets for CIFAR: residual networks that widen a little at every unit instead of doubling per stage.

Paper: Han, Kim & Kim, "Deep Pyramidal Residual Networks", CVPR 2017.

Additive widening (the paper's Eq. 2): with ``N`` residual units in all and widening factor ``alpha``, unit
``k = 1..N`` has ``D_k = floor(16 + k * alpha / N)`` channels (``4 D_k`` out of a bottleneck unit), so the
width climbs linearly from 16 to ``16 + alpha``; the paper's recursion ``floor(D_{k-1} + alpha / N)`` is read
on the unrounded widths (rounded after each step, ``alpha / N < 1`` would never widen anything). Units are the
paper's Fig. 6(d) (:class:`~cnnlab.nn.pyramid.PyramidBlock`, :class:`~cnnlab.nn.pyramid.PyramidBottleneck`);
shortcuts are zero-padded identities, averaged 2x2 where a stage down-samples.

Layout (32x32 input), ``n`` units per stage, depth ``6 n + 2`` (basic) or ``9 n + 2`` (bottleneck):

```
conv 3x3, 16, BN                                       16 x 32 x 32
layer1: n units, widths D_1 .. D_n                     D_n x 32 x 32     (x4 for bottleneck units)
layer2: n units (the first with stride 2)              D_2n x 16 x 16
layer3: n units (the first with stride 2)              (16 + alpha) x 8 x 8
final: BN, ReLU                                        (16 + alpha) x 8 x 8
global average pooling, fully connected                num_classes
```

- ``pyramidnet110_a48``: basic units, n = 18 (N = 54), 16 -> 64 channels, 1,739,730 parameters (paper: 1.7M);
- ``pyramidnet272_a200``: bottleneck units, n = 30 (N = 90), 72 -> 864 channels, 26,049,562 parameters with
  10 classes (paper: 26.0M; 26.13M with 100 classes).

The paper's table of CIFAR results (Table 4) gives the counts; rounding each width to the nearest integer
instead of down would give 1.77M and 26.2M. The paper leaves open, and cnnlab chooses: the stem's 3x3
convolution is followed by BN and no ReLU (each unit begins with its own BN); a BN-ReLU closes the backbone
before pooling (the units' outputs are never rectified, as in pre-activation ResNets); a down-sampling
bottleneck unit strides its 3x3 convolution; the pooled shortcut rounds odd sizes up, as the strided
convolution does.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import CnnlabError
from ..nn.conv import ConvNormAct, LayerFactory, make_act
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ..nn.pyramid import PyramidBlock, PyramidBottleneck
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Han et al. 2017, Deep Pyramidal Residual Networks (CIFAR)"


def additive_widths(num_units: int, alpha: int, start: int = 16) -> list[int]:
    """The widths ``D_1 .. D_N`` of additive widening: ``floor(start + k * alpha / N)``, in integers (exact:
    the last unit has ``start + alpha`` channels, with no floating-point rounding below it)."""
    return [start + (k * alpha) // num_units for k in range(1, num_units + 1)]


class PyramidNet(Classifier):
    """An additive PyramidNet of depth ``depth`` and widening factor ``alpha`` for 32x32 images.

    Built for small images in either form: ``small_input`` is accepted for the zoo's common interface and
    changes nothing. Any input of at least 4x4 works (two stride-2 stages; odd sizes too).
    """

    def __init__(self, depth: int, alpha: int, bottleneck: bool = False, num_classes: int = 10, in_chans: int = 3,
                 drop_rate: float = 0.0, small_input: bool = True, norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        per_unit = 9 if bottleneck else 6
        if depth < 2 + per_unit or (depth - 2) % per_unit:
            raise CnnlabError(f"a PyramidNet with {'bottleneck' if bottleneck else 'basic'} units has depth "
                              f"{per_unit} n + 2 (n >= 1), got {depth}")
        self.set_input_sizes(in_chans, small_input, minimum=4, small_minimum=4, default=32, small_default=32)
        self.depth, self.alpha = depth, alpha
        n = (depth - 2) // per_unit
        block = PyramidBottleneck if bottleneck else PyramidBlock
        widths = additive_widths(3 * n, alpha)
        self.stem = ConvNormAct(in_chans, 16, 3, norm_layer=norm_layer, act_layer=None)   # 16 x 32 x 32
        chs, self.feature_info = 16, []
        for i in range(3):
            units = []
            for j in range(n):
                units.append(block(chs, widths[i * n + j], 2 if (i > 0 and j == 0) else 1, norm_layer, act_layer))
                chs = units[-1].out_chs
            self.add_module(f"layer{i + 1}", nn.Sequential(*units))
            self.feature_info.append(FeatureInfo(chs, 2**i, f"layer{i + 1}"))
        final: OrderedDict[str, nn.Module] = OrderedDict()
        if norm_layer is not None:
            final["bn"] = norm_layer(chs)
        final["act"] = make_act(act_layer)
        self.final = nn.Sequential(final)                               # (16 + alpha) [x4] x 8 x 8 at 32
        self.feature_info[-1] = FeatureInfo(chs, 4, "final")            # the map the head pools
        self.num_features = chs
        self.head = ClassifierHead(chs, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """He initialisation: Kaiming-normal (fan-out) convolutions, BN weight 1 and bias 0."""
        torchvision_init(self, conv_mode="fan_out")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.layer3(self.layer2(self.layer1(self.stem(x)))))


_reg = dict(family="pyramidnet", paper=PAPER)


@register_model(**_reg)
def pyramidnet110_a48(**kwargs) -> PyramidNet:
    """Additive PyramidNet-110, alpha = 48: 54 basic units widening 16 -> 64 (1.7M parameters)."""
    return PyramidNet(110, 48, False, **kwargs)


@register_model(**_reg, channels_last=True)  # bottlenecks: 1.19x; the basic-unit 110 0.90x (README)
def pyramidnet272_a200(**kwargs) -> PyramidNet:
    """Additive PyramidNet-272, alpha = 200: 90 bottleneck units widening 16 -> 216 (x4 = 864 out; 26.0M)."""
    return PyramidNet(272, 200, True, **kwargs)
