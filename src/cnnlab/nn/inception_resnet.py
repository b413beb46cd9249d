"""The residual Inception blocks of Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning", AAAI 2017, Figures 16-19).

Each block is an Inception module whose concatenated branches a linear 1x1 convolution (with a bias, no batch
norm) brings back to the input's width, added to the input as a residual: ``y = act(x + scale * F(x))``. The
paper found networks with more than about 1,000 filters "die" early in training unless the residual is scaled
down by 0.1-0.3 before the addition (Section 3.3, Figure 20); the released network uses 0.17, 0.10 and 0.20 for
the 35x35, 17x17 and 8x8 blocks. ``conv(in, out, kernel, stride, padding)`` is a conv-BN-ReLU factory.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import LayerFactory, make_act
from .inception import Branches


class ResidualInception(nn.Module):
    """``y = act(x + scale * up(branches(x)))``, ``up`` a 1x1 convolution with bias to ``in_chs`` channels.

    ``act_layer=None`` leaves the sum linear (the network's last block, before its final 1x1 convolution).
    """

    def __init__(self, branches: Branches, scale: float, act_layer: LayerFactory | None = nn.ReLU) -> None:
        super().__init__()
        self.branches = branches
        self.up = nn.Conv2d(branches.out_chs, branches.in_chs, 1)
        self.scale = scale
        self.act = make_act(act_layer) if act_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.scale * self.up(self.branches(x)))

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


class InceptionResNetA(ResidualInception):
    """Figure 16, 35x35: ``1x1 (32)`` | ``1x1 -> 3x3 (32)`` | ``1x1 -> 3x3 (48) -> 3x3 (64)``, then 1x1 to
    ``in_chs``."""

    def __init__(self, in_chs: int, conv: LayerFactory, scale: float = 0.17) -> None:
        super().__init__(Branches(
            in_chs,
            branch0=conv(in_chs, 32, 1),
            branch1=nn.Sequential(conv(in_chs, 32, 1), conv(32, 32, 3)),
            branch2=nn.Sequential(conv(in_chs, 32, 1), conv(32, 48, 3), conv(48, 64, 3)),
        ), scale)


class InceptionResNetB(ResidualInception):
    """Figure 17, 17x17: ``1x1 (192)`` | ``1x1 (128) -> 1x7 (160) -> 7x1 (192)``, then 1x1 to ``in_chs``."""

    def __init__(self, in_chs: int, conv: LayerFactory, scale: float = 0.10) -> None:
        super().__init__(Branches(
            in_chs,
            branch0=conv(in_chs, 192, 1),
            branch1=nn.Sequential(conv(in_chs, 128, 1), conv(128, 160, (1, 7)), conv(160, 192, (7, 1))),
        ), scale)


class InceptionResNetC(ResidualInception):
    """Figure 19, 8x8: ``1x1 (192)`` | ``1x1 (192) -> 1x3 (224) -> 3x1 (256)``, then 1x1 to ``in_chs``."""

    def __init__(self, in_chs: int, conv: LayerFactory, scale: float = 0.20,
                 act_layer: LayerFactory | None = nn.ReLU) -> None:
        super().__init__(Branches(
            in_chs,
            branch0=conv(in_chs, 192, 1),
            branch1=nn.Sequential(conv(in_chs, 192, 1), conv(192, 224, (1, 3)), conv(224, 256, (3, 1))),
        ), scale, act_layer)


class InceptionResNetReductionB(Branches):
    """Figure 18, 17 -> 8: ``1x1 -> 3x3/2 (384)`` | ``1x1 -> 3x3/2 (288)`` | ``1x1 -> 3x3 (288) -> 3x3/2 (320)``
    | ``3x3/2 max-pool``. Output channels: ``384 + 288 + 320 + in_chs``."""

    def __init__(self, in_chs: int, conv: LayerFactory) -> None:
        super().__init__(
            in_chs,
            branch0=nn.Sequential(conv(in_chs, 256, 1), conv(256, 384, 3, 2, 0)),
            branch1=nn.Sequential(conv(in_chs, 256, 1), conv(256, 288, 3, 2, 0)),
            branch2=nn.Sequential(conv(in_chs, 256, 1), conv(256, 288, 3), conv(288, 320, 3, 2, 0)),
            branch3=nn.MaxPool2d(3, 2),
        )
