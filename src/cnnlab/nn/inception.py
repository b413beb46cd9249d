"""The Inception module and GoogLeNet's auxiliary classifier (Szegedy et al. 2015, "Going Deeper with
Convolutions"), and :class:`Branches`, the parallel-branches container every later Inception module is made of."""

from __future__ import annotations

import torch
from torch import nn

from .conv import LayerFactory


def out_channels(module: nn.Module, in_chs: int) -> int:
    """The channels ``module`` gives for ``in_chs`` input channels: a block's ``out_chs`` or a convolution's
    ``out_channels``, the last such of a sequence, or ``in_chs`` for what keeps the channels (pooling)."""
    if hasattr(module, "out_chs"):
        return module.out_chs
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if isinstance(module, nn.Sequential):
        for m in module:
            in_chs = out_channels(m, in_chs)
        return in_chs
    return in_chs


class Branches(nn.Module):
    """Parallel branches applied to the same input, their outputs concatenated along channels: the shape of
    every Inception module since Szegedy et al. 2015.

    Branches are given by keyword, in the order of concatenation (which is also the order of their parameters).
    A branch may itself end in :class:`Branches`: Inception v3's "expanded filter bank" splits a branch into a
    1x3 and a 3x1 convolution side by side. ``out_chs`` is the sum of the branches' channels.
    """

    def __init__(self, in_chs: int, **branches: nn.Module) -> None:
        super().__init__()
        for name, branch in branches.items():
            self.add_module(name, branch)
        self.in_chs = in_chs
        self.out_chs = sum(out_channels(b, in_chs) for b in branches.values())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


class SplitConv(Branches):
    """A 1x3 and a 3x1 convolution side by side on the same input, ``out_chs`` each (Inception v3's "expanded
    filter bank" on the coarsest grid, Szegedy et al. 2016, Figure 7; Inception v4's module C)."""

    def __init__(self, in_chs: int, out_chs: int, conv: LayerFactory) -> None:
        super().__init__(in_chs, a=conv(in_chs, out_chs, (1, 3)), b=conv(in_chs, out_chs, (3, 1)))


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

    final = "fc2"  # the layer that ``reset`` replaces

    def __init__(self, in_chs: int, num_classes: int, conv: LayerFactory, drop_rate: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = conv(in_chs, 128, 1)
        self.flatten = nn.Flatten(1)
        self.fc1 = nn.Linear(2048, 1024)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(1024, num_classes)

    def reset(self, num_classes: int) -> None:
        ref = self.fc2.weight
        self.fc2 = nn.Linear(1024, num_classes).to(device=ref.device, dtype=ref.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.conv(self.pool(x)))  # N x 2048
        return self.fc2(self.drop(self.act(self.fc1(x))))
