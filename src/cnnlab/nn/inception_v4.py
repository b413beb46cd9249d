"""The modules of Inception v4 (Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning", AAAI 2017, Figures 3-8).

Uniform modules per grid size, as the paper's Figure 9 stacks them: the stem (Figure 3), Inception-A on the
35x35 grid (Figure 4), Inception-B on 17x17 (Figure 5), Inception-C on 8x8 (Figure 6), and the two reduction
modules between them (Figures 7 and 8). Convolutions without a "V" in the figures keep the size; "V" ones
(valid) have no padding. Average pools average over the window's pixels inside the image only
(``count_include_pad=False``). ``conv(in, out, kernel, stride, padding)`` is a conv-BN-ReLU factory.
"""

from __future__ import annotations

from torch import nn

from .conv import LayerFactory
from .inception import Branches, SplitConv


def _avg_pool() -> nn.AvgPool2d:
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False)


class InceptionV4Stem(nn.Sequential):
    """Figure 3: 299 x 299 x 3 -> 35 x 35 x 384, three times a step where a pool and a convolution (or two
    convolution towers) run side by side and are concatenated.

    ``stride=1`` makes the first convolution and the first and third side-by-side steps stride 1 (the
    small-input form).
    """

    def __init__(self, in_chans: int, conv: LayerFactory, stride: int = 2) -> None:
        s = stride
        super().__init__(
            conv(in_chans, 32, 3, s, 0),                                   # 32 x 149 x 149
            conv(32, 32, 3, 1, 0),                                         # 32 x 147 x 147
            conv(32, 64, 3),                                               # 64 x 147 x 147
            Branches(64, pool=nn.MaxPool2d(3, s), conv=conv(64, 96, 3, s, 0)),          # 160 x 73 x 73
            Branches(160,                                                  # 192 x 71 x 71
                     branch0=nn.Sequential(conv(160, 64, 1), conv(64, 96, 3, 1, 0)),
                     branch1=nn.Sequential(conv(160, 64, 1), conv(64, 64, (1, 7)), conv(64, 64, (7, 1)),
                                           conv(64, 96, 3, 1, 0))),
            Branches(192, conv=conv(192, 192, 3, s, 0), pool=nn.MaxPool2d(3, s)),       # 384 x 35 x 35
        )
        self.out_chs = 384


class InceptionV4A(Branches):
    """Figure 4, 35x35: ``1x1`` | ``1x1 -> 3x3`` | ``1x1 -> 3x3 -> 3x3`` | ``avg-pool -> 1x1``; 4 x 96 = 384."""

    def __init__(self, in_chs: int, conv: LayerFactory) -> None:
        super().__init__(
            in_chs,
            branch0=conv(in_chs, 96, 1),
            branch1=nn.Sequential(conv(in_chs, 64, 1), conv(64, 96, 3)),
            branch2=nn.Sequential(conv(in_chs, 64, 1), conv(64, 96, 3), conv(96, 96, 3)),
            branch3=nn.Sequential(_avg_pool(), conv(in_chs, 96, 1)),
        )


class ReductionA(Branches):
    """Figure 7, 35 -> 17: ``3x3/2 (n)`` | ``1x1 (k) -> 3x3 (l) -> 3x3/2 (m)`` | ``3x3/2 max-pool``.

    The filter counts k, l, m, n are the paper's Table 1 (Inception-v4: 192, 224, 256, 384; Inception-ResNet-v2:
    256, 256, 384, 384). Output channels: ``n + m + in_chs``.
    """

    def __init__(self, in_chs: int, k: int, l: int, m: int, n: int, conv: LayerFactory) -> None:  # noqa: E741
        super().__init__(
            in_chs,
            branch0=conv(in_chs, n, 3, 2, 0),
            branch1=nn.Sequential(conv(in_chs, k, 1), conv(k, l, 3), conv(l, m, 3, 2, 0)),
            branch2=nn.MaxPool2d(3, 2),
        )


class InceptionV4B(Branches):
    """Figure 5, 17x17: ``1x1 (384)`` | ``1x1 -> 1x7 -> 7x1 (256)`` | ``1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 (256)`` |
    ``avg-pool -> 1x1 (128)``; 1024 channels."""

    def __init__(self, in_chs: int, conv: LayerFactory) -> None:
        super().__init__(
            in_chs,
            branch0=conv(in_chs, 384, 1),
            branch1=nn.Sequential(conv(in_chs, 192, 1), conv(192, 224, (1, 7)), conv(224, 256, (7, 1))),
            branch2=nn.Sequential(conv(in_chs, 192, 1), conv(192, 192, (7, 1)), conv(192, 224, (1, 7)),
                                  conv(224, 224, (7, 1)), conv(224, 256, (1, 7))),
            branch3=nn.Sequential(_avg_pool(), conv(in_chs, 128, 1)),
        )


class ReductionB(Branches):
    """Figure 8, 17 -> 8: ``1x1 -> 3x3/2 (192)`` | ``1x1 -> 1x7 -> 7x1 -> 3x3/2 (320)`` | ``3x3/2 max-pool``.

    Output channels: ``192 + 320 + in_chs``.
    """

    def __init__(self, in_chs: int, conv: LayerFactory) -> None:
        super().__init__(
            in_chs,
            branch0=nn.Sequential(conv(in_chs, 192, 1), conv(192, 192, 3, 2, 0)),
            branch1=nn.Sequential(conv(in_chs, 256, 1), conv(256, 256, (1, 7)), conv(256, 320, (7, 1)),
                                  conv(320, 320, 3, 2, 0)),
            branch2=nn.MaxPool2d(3, 2),
        )


class InceptionV4C(Branches):
    """Figure 6, 8x8: ``1x1 (256)`` | ``1x1 (384) -> (1x3 | 3x1) (2 x 256)`` |
    ``1x1 (384) -> 3x1 (448) -> 1x3 (512) -> (1x3 | 3x1) (2 x 256)`` | ``avg-pool -> 1x1 (256)``; 1536 channels.
    """

    def __init__(self, in_chs: int, conv: LayerFactory) -> None:
        super().__init__(
            in_chs,
            branch0=conv(in_chs, 256, 1),
            branch1=nn.Sequential(conv(in_chs, 384, 1), SplitConv(384, 256, conv)),
            branch2=nn.Sequential(conv(in_chs, 384, 1), conv(384, 448, (3, 1)), conv(448, 512, (1, 3)),
                                  SplitConv(512, 256, conv)),
            branch3=nn.Sequential(_avg_pool(), conv(in_chs, 256, 1)),
        )
