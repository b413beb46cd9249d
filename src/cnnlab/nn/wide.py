"""The wide residual block (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016).

The paper's block B(3,3) is the pre-activation basic block of He et al. ("Identity Mappings in Deep Residual
Networks", ECCV 2016), made wide and given a dropout between its two convolutions (the paper's Fig. 1(d)):

``y = conv3x3(dropout(ReLU(BN(conv3x3_s(ReLU(BN(x))))))) + shortcut(x)``

with no activation after the sum: the next block's BN-ReLU (or the network's final one) comes first.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import LayerFactory, make_act, norm_or_identity


class WideBasicBlock(nn.Module):
    """The pre-activation wide block B(3,3) with dropout (the paper's Fig. 1(d)).

    ``BN -> ReLU -> conv3x3 (stride) -> BN -> ReLU -> dropout -> conv3x3``, plus the shortcut, with nothing
    after the addition. The shortcut is the identity where the shape is kept, else a 1x1 convolution with the
    block's stride (a projection: width and/or resolution change at the first block of a group).

    Where the shortcut is a projection it takes the *pre-activated* input ``ReLU(BN(x))``, the same tensor the
    first convolution takes (as the authors' code does, and He et al.'s pre-activation ResNets); an identity
    shortcut carries ``x`` itself, so the identity path from block to block stays clean.

    Args:
        in_chs, out_chs: input and output channels (``out_chs`` is the group's width, 16k, 32k or 64k).
        stride: the stride of the first 3x3 convolution and of the projection (2 to halve the resolution).
        drop_rate: the dropout between the two convolutions (the paper: 0.3 in its best runs; 0 for none).
        norm_layer: e.g. ``nn.BatchNorm2d``; ``None`` for no normalisation (the convolutions then keep a bias).
        act_layer: e.g. ``nn.ReLU``.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, drop_rate: float = 0.0,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d, act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {drop_rate}")
        self.in_chs, self.out_chs, self.stride, self.drop_rate = in_chs, out_chs, stride, drop_rate
        bias = norm_layer is None                 # a BN right after a convolution makes its bias redundant
        # without a norm layer the first activation sees x itself, which the identity shortcut still needs:
        # it must not overwrite it in place
        self.bn1 = norm_or_identity(norm_layer, in_chs)
        self.act1 = make_act(act_layer) if norm_layer is not None else act_layer()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride, padding=1, bias=bias)
        self.bn2, self.act2 = norm_or_identity(norm_layer, out_chs), make_act(act_layer)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=bias)
        self.shortcut = (nn.Conv2d(in_chs, out_chs, 1, stride, bias=bias)
                         if stride != 1 or in_chs != out_chs else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act1(self.bn1(x))                                      # the pre-activation, shared
        identity = x if self.shortcut is None else self.shortcut(a)
        y = self.conv2(self.drop(self.act2(self.bn2(self.conv1(a)))))
        return y + identity
