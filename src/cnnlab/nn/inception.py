"""The Inception module and GoogLeNet's auxiliary classifier (Szegedy et al. 2015, "Going Deeper with
Convolutions")."""

from __future__ import annotations

import torch
from torch import nn

from .conv import LayerFactory


class InceptionModule(nn.Module):
    """Four parallel branches concatenated along channels.

    ``1x1`` | ``1x1 reduce -> 3x3`` | ``1x1 reduce -> kxk`` | ``3x3 max-pool -> 1x1 projection``.
    The 1x1 reductions keep the expensive 3x3 and kxk convolutions cheap. ``big_kernel`` is 5 in the
    paper; torchvision's GoogLeNet uses 3 there (a known slip kept for weight compatibility).

    Output channels: ``ch1x1 + ch3x3 + ch5x5 + pool_proj``.
    """

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        conv: LayerFactory,
        big_kernel: int = 5,
    ) -> None:
        super().__init__()
        self.branch1 = conv(in_chs, ch1x1, 1)
        self.branch2 = nn.Sequential(conv(in_chs, ch3x3red, 1), conv(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(conv(in_chs, ch5x5red, 1), conv(ch5x5red, ch5x5, big_kernel))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), conv(in_chs, pool_proj, 1)
        )
        self.out_chs = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([b(x) for b in branches], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier attached to an intermediate stage; used only while training.

    Paper: 5x5/3 average pool (14x14 -> 4x4 at 224 input), 1x1 conv to 128, FC 1024, dropout 0.7, FC.
    An adaptive 4x4 pool gives the same result at 224 and keeps working on smaller inputs.
    """

    def __init__(self, in_chs: int, num_classes: int, conv: LayerFactory, drop_rate: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = conv(in_chs, 128, 1)
        self.flatten = nn.Flatten(1)
        self.fc1 = nn.Linear(2048, 1024)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.conv(self.pool(x)))  # N x 2048
        return self.fc2(self.drop(self.act(self.fc1(x))))
