"""LeNet-5.

Paper: LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document Recognition",
Proc. IEEE 86(11), 1998.

Layout (32x32 input): C1 conv 5x5 -> 6x28x28, S2 2x2 subsampling -> 6x14x14, C3 conv 5x5 -> 16x10x10,
S4 -> 16x5x5, C5 conv 5x5 -> 120x1x1, F6 fully connected 84, output 10.

Faithful: the 32x32 input (the paper pads 28x28 MNIST digits to 32x32), the scaled tanh
``1.7159 * tanh(2x/3)``, average-pool subsampling, C5 as a convolution (its kernels cover its 5x5 input, so
it is computed as the matrix product it is there: :class:`~cnnlab.nn.WholeInputConv2d`), the paper's
initialisation ``U(-2.4 / F_in, 2.4 / F_in)``. Simplified, as in most modern reimplementations: C3 connects to all six
S2 maps (the paper's sparse connection table has 1,516 instead of 2,416 weights), S2/S4 have no trainable
coefficient and bias, and the output layer is linear (logits for softmax cross-entropy) instead of
Euclidean RBF units. ``act="relu", pool="max"`` gives the common modern variant; ``act`` takes any name of
:data:`cnnlab.nn.ACT_LAYERS` (``"tanh"`` is the paper's scaled tanh) and ``batch_norm=True`` adds batch
normalisation after C1, C3 and C5 (Ioffe & Szegedy 2015, not in the paper), for experiments that vary one
thing at a time.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import CnnlabError
from ..nn.act import ScaledTanh, get_act_layer
from ..nn.conv import ConvNormAct, WholeInputConv2d
from ..nn.head import ClassifierHead
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition"


_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(Classifier):
    """LeNet-5. ``small_input=True`` pads C1 by 2 so that 28x28 images go in unpadded."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        act: str = "tanh",
        pool: str = "avg",
        small_input: bool = False,
        drop_rate: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if pool not in _POOLS:
            raise CnnlabError(f"pool must be one of {list(_POOLS)}, got {pool!r}")
        act_layer = ScaledTanh if act == "tanh" else get_act_layer(act)  # the paper's tanh is the scaled one
        pool_layer = _POOLS[pool]
        size = 28 if small_input else 32
        self.in_chans, self.small_input = in_chans, small_input
        self.default_input_size = self.min_input_size = (in_chans, size, size)
        self.fixed_input_size = True
        self.input_padding = 0 if small_input else 2  # the paper pads 28x28 digits to 32x32
        conv = dict(norm_layer=nn.BatchNorm2d if batch_norm else None, act_layer=act_layer)
        self.features = nn.Sequential(
            OrderedDict(
                c1=ConvNormAct(in_chans, 6, 5, padding=2 if small_input else 0, **conv),  # 6 x 28 x 28
                s2=pool_layer(2, 2),                                                      # 6 x 14 x 14
                c3=ConvNormAct(6, 16, 5, padding=0, **conv),                              # 16 x 10 x 10
                s4=pool_layer(2, 2),                                                      # 16 x 5 x 5
                c5=ConvNormAct(16, 120, 5, padding=0, conv_layer=WholeInputConv2d, **conv),  # 120 x 1 x 1
            )
        )
        self.feature_info = [
            FeatureInfo(6, 2, "features.s2"),
            FeatureInfo(16, 4, "features.s4"),
            FeatureInfo(120, 4, "features.c5"),
        ]
        self.num_features = 120
        self.head = ClassifierHead(120, num_classes, hidden=(84,), act_layer=act_layer,  # F6, output
                                   drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """The paper's scheme: weights and biases from U(-2.4 / F_in, 2.4 / F_in), F_in = fan-in (batch norm,
        when asked for, starts at weight 1 and bias 0)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
                if m.bias is not None:
                    nn.init.uniform_(m.bias, -2.4 / fan_in, 2.4 / fan_in)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_model(family="lenet", paper=PAPER, channels_last=True)
def lenet5(**kwargs) -> LeNet5:
    """LeNet-5 (32x32 grayscale input, 10 classes by default; ``act``, ``pool``, ``batch_norm``, ``small_input``)."""
    return LeNet5(**kwargs)
