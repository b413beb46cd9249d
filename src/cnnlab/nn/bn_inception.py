"""The blocks of BN-Inception (Inception v2): Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network
Training by Reducing Internal Covariate Shift", ICML 2015, Figure 5 and its appendix.

Two changes to GoogLeNet's module: the 5x5 branch becomes two stacked 3x3 convolutions (the same receptive
field with fewer weights), and a module may reduce the grid itself: its convolution branches end in a stride-2
3x3 and its pooling branch, a stride-2 max-pool, passes its input through without a projection (modules 3c and
4e). The first layer of the network is a separable convolution with depth multiplier 8.
"""

from __future__ import annotations

from torch import nn

from ..errors import unknown_name
from .conv import ConvNormAct, LayerFactory, same_padding
from .inception import Branches

POOLS = {"avg": "average", "max": "maximum"}


def module_pool(kind: str, stride: int = 1) -> nn.Module:
    """The pooling of a BN-Inception module's fourth branch: 3x3, padding 1, ``"avg"`` or ``"max"``.

    Padding 1 gives ``ceil(n / stride)`` outputs, as the module's 3x3 convolutions (padding 1) do, so that a
    stride-2 module's branches agree on odd sizes too (an unpadded ceil-mode pool agrees on even sizes only).
    The average counts the real pixels only (``count_include_pad=False``): the border of a map is not darkened.
    """
    if kind == "avg":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if kind == "max":
        return nn.MaxPool2d(3, stride, 1)
    raise unknown_name("pooling", kind, POOLS)


class BNInceptionModule(Branches):
    """Four parallel branches concatenated along channels (Ioffe & Szegedy 2015, Figure 5):

    ``1x1`` | ``1x1 -> 3x3`` | ``1x1 -> 3x3 -> 3x3`` ("double 3x3", in place of GoogLeNet's 5x5) |
    ``3x3 avg- or max-pool -> 1x1 projection``.

    With ``stride=2`` (modules 3c and 4e) the last 3x3 of each convolution branch and the pool have stride 2,
    there is no 1x1 branch (``ch1x1=0``), and ``pool_proj=0`` makes the pooling branch a pass-through: the
    pooled input itself, all its channels. Every convolution is ``conv(in, out, kernel, stride)``, a
    conv-BN-ReLU factory (:class:`ConvNormAct`).

    Output channels: ``ch1x1 + ch3x3 + dbl3x3 + (pool_proj or in_chs)``; size ``ceil(n / stride)``.
    """

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        dbl3x3red: int,
        dbl3x3: int,
        pool: str,
        pool_proj: int,
        conv: LayerFactory = ConvNormAct,
        stride: int = 1,
    ) -> None:
        branches: dict[str, nn.Module] = {}
        if ch1x1:
            branches["branch1x1"] = conv(in_chs, ch1x1, 1)
        branches["branch3x3"] = nn.Sequential(conv(in_chs, ch3x3red, 1), conv(ch3x3red, ch3x3, 3, stride))
        branches["branch3x3dbl"] = nn.Sequential(
            conv(in_chs, dbl3x3red, 1), conv(dbl3x3red, dbl3x3, 3), conv(dbl3x3, dbl3x3, 3, stride)
        )
        pooling = module_pool(pool, stride)
        branches["branch_pool"] = nn.Sequential(pooling, conv(in_chs, pool_proj, 1)) if pool_proj else pooling
        super().__init__(in_chs, **branches)
        self.stride = stride


class SeparableConv(nn.Sequential):
    """A separable convolution with a depth multiplier: a depthwise ``k x k`` convolution giving
    ``multiplier`` channels per input channel, then a pointwise 1x1 convolution to ``out_chs``, with norm and
    activation after the pointwise one only (the depthwise step is linear).

    BN-Inception's first layer (Ioffe & Szegedy 2015, appendix: "separable convolution with depth multiplier 8
    on the first convolutional layer"): 7x7/2 from 3 to 64 channels in ``3 * 49 * 8 + 24 * 64`` = 2,712
    weights instead of 9,408. Unlike :class:`DepthwiseSeparableConv` (MobileNet), the depthwise step widens
    the channels and has no norm or activation of its own.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int = 1,
        multiplier: int = 8,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
        norm_kwargs: dict | None = None,
    ) -> None:
        mid = in_chs * multiplier
        super().__init__()
        self.dw = nn.Conv2d(in_chs, mid, kernel_size, stride, same_padding(kernel_size), groups=in_chs, bias=False)
        self.pw = ConvNormAct(mid, out_chs, 1, norm_layer=norm_layer, act_layer=act_layer, norm_kwargs=norm_kwargs)
        self.in_chs, self.out_chs = in_chs, out_chs
