"""The modules of Inception v3 (Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016).

The paper's design principles, one per module: factorise big convolutions into smaller ones (a 5x5 into two
3x3, Figure 5), into asymmetric ones (a 7x7 into 1x7 then 7x1, Figure 6), widen the coarsest grid with
side-by-side 1x3 and 3x1 convolutions (Figure 7), and shrink the grid with a strided convolution next to a
strided pool instead of a pool alone (Figure 10), so that the representation is never squeezed.

The letters A-E name the modules as the released network (and torchvision) does, so that weights line up.
That network keeps one 5x5 branch in module A next to the two-3x3 branch. Every convolution is
``conv(in, out, kernel, stride, padding)``, a conv-BN-ReLU factory; ``padding=None`` keeps the size.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from .conv import LayerFactory
from .inception import Branches, SplitConv


class InceptionV3Stem(nn.Sequential):
    """The stem, 299 x 299 x 3 -> 35 x 35 x 192: ``3x3/2, 3x3, 3x3 pad, 3x3/2 max-pool, 1x1, 3x3, 3x3/2 max-pool``
    (the paper's Table 1, as released). Inception-ResNet-v2's released network has the same stem.

    ``small_input=True``: the first convolution at stride 1 and no max-pools (a total stride of 1).
    """

    def __init__(self, in_chans: int, conv: LayerFactory, small_input: bool = False) -> None:
        pool = nn.Identity if small_input else lambda: nn.MaxPool2d(3, 2)
        super().__init__(OrderedDict(
            conv1a=conv(in_chans, 32, 3, 1 if small_input else 2, 0),  # 32 x 149 x 149
            conv2a=conv(32, 32, 3, 1, 0),                              # 32 x 147 x 147
            conv2b=conv(32, 64, 3),                                    # 64 x 147 x 147
            pool1=pool(),                                              # 64 x 73 x 73
            conv3b=conv(64, 80, 1),                                    # 80 x 73 x 73
            conv4a=conv(80, 192, 3, 1, 0),                             # 192 x 71 x 71
            pool2=pool(),                                              # 192 x 35 x 35
        ))
        self.out_chs = 192


class InceptionV3A(Branches):
    """35x35 grid: ``1x1`` | ``1x1 -> 5x5`` | ``1x1 -> 3x3 -> 3x3`` | ``3x3 avg-pool -> 1x1``.

    Output channels: ``64 + 64 + 96 + pool_chs``.
    """

    def __init__(self, in_chs: int, pool_chs: int, conv: LayerFactory) -> None:
        super().__init__(
            in_chs,
            branch1x1=conv(in_chs, 64, 1),
            branch5x5=nn.Sequential(conv(in_chs, 48, 1), conv(48, 64, 5)),
            branch3x3dbl=nn.Sequential(conv(in_chs, 64, 1), conv(64, 96, 3), conv(96, 96, 3)),
            branch_pool=nn.Sequential(nn.AvgPool2d(3, 1, 1), conv(in_chs, pool_chs, 1)),
        )


class InceptionV3B(Branches):
    """Grid reduction 35 -> 17 (Figure 10): ``3x3/2`` | ``1x1 -> 3x3 -> 3x3/2`` | ``3x3/2 max-pool``.

    Output channels: ``384 + 96 + in_chs``.
    """

    def __init__(self, in_chs: int, conv: LayerFactory) -> None:
        super().__init__(
            in_chs,
            branch3x3=conv(in_chs, 384, 3, 2, 0),
            branch3x3dbl=nn.Sequential(conv(in_chs, 64, 1), conv(64, 96, 3), conv(96, 96, 3, 2, 0)),
            branch_pool=nn.MaxPool2d(3, 2),
        )


class InceptionV3C(Branches):
    """17x17 grid, 7x7 convolutions factorised into 1x7 and 7x1 (Figure 6 with n = 7):
    ``1x1`` | ``1x1 -> 1x7 -> 7x1`` | ``1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7`` | ``3x3 avg-pool -> 1x1``, the inner
    convolutions ``mid_chs`` wide. Output channels: 768.
    """

    def __init__(self, in_chs: int, mid_chs: int, conv: LayerFactory) -> None:
        c = mid_chs
        super().__init__(
            in_chs,
            branch1x1=conv(in_chs, 192, 1),
            branch7x7=nn.Sequential(conv(in_chs, c, 1), conv(c, c, (1, 7)), conv(c, 192, (7, 1))),
            branch7x7dbl=nn.Sequential(conv(in_chs, c, 1), conv(c, c, (7, 1)), conv(c, c, (1, 7)),
                                       conv(c, c, (7, 1)), conv(c, 192, (1, 7))),
            branch_pool=nn.Sequential(nn.AvgPool2d(3, 1, 1), conv(in_chs, 192, 1)),
        )


class InceptionV3D(Branches):
    """Grid reduction 17 -> 8: ``1x1 -> 3x3/2`` | ``1x1 -> 1x7 -> 7x1 -> 3x3/2`` | ``3x3/2 max-pool``.

    Output channels: ``320 + 192 + in_chs``.
    """

    def __init__(self, in_chs: int, conv: LayerFactory) -> None:
        super().__init__(
            in_chs,
            branch3x3=nn.Sequential(conv(in_chs, 192, 1), conv(192, 320, 3, 2, 0)),
            branch7x7x3=nn.Sequential(conv(in_chs, 192, 1), conv(192, 192, (1, 7)), conv(192, 192, (7, 1)),
                                      conv(192, 192, 3, 2, 0)),
            branch_pool=nn.MaxPool2d(3, 2),
        )


class InceptionV3E(Branches):
    """8x8 grid, the expanded filter bank (Figure 7): ``1x1`` | ``1x1 -> (1x3 | 3x1)`` |
    ``1x1 -> 3x3 -> (1x3 | 3x1)`` | ``3x3 avg-pool -> 1x1``. Output channels: ``320 + 768 + 768 + 192 = 2048``.
    """

    def __init__(self, in_chs: int, conv: LayerFactory) -> None:
        super().__init__(
            in_chs,
            branch1x1=conv(in_chs, 320, 1),
            branch3x3=nn.Sequential(conv(in_chs, 384, 1), SplitConv(384, 384, conv)),
            branch3x3dbl=nn.Sequential(conv(in_chs, 448, 1), conv(448, 384, 3), SplitConv(384, 384, conv)),
            branch_pool=nn.Sequential(nn.AvgPool2d(3, 1, 1), conv(in_chs, 192, 1)),
        )


class InceptionV3Aux(nn.Module):
    """The auxiliary classifier on the 17x17 grid (Section 7: in v3 it acts as a regulariser, with batch norm).

    ``5x5/3 average pool -> 1x1 conv (128) -> 5x5 conv (768) -> global average pool -> linear``. At 17x17 and
    larger it pools as the paper does; a smaller map (the small-input form, or inputs under 299 px) is pooled
    to 5x5 adaptively, so that the 5x5 convolution always fits.
    """

    final = "fc"  # the layer that ``reset`` replaces

    def __init__(self, in_chs: int, num_classes: int, conv: LayerFactory) -> None:
        super().__init__()
        self.conv0 = conv(in_chs, 128, 1)
        self.conv1 = conv(128, 768, 5, padding=0)
        self.fc = nn.Linear(768, num_classes)

    def reset(self, num_classes: int) -> None:
        ref = self.fc.weight
        self.fc = nn.Linear(768, num_classes).to(device=ref.device, dtype=ref.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] >= 17 and x.shape[-1] >= 17:
            x = F.avg_pool2d(x, kernel_size=5, stride=3)
        else:
            x = F.adaptive_avg_pool2d(x, 5)
        x = self.conv1(self.conv0(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
