"""The blocks of the Residual Attention Network (Wang et al., "Residual Attention Network for Image
Classification", CVPR 2017): the pre-activation bottleneck residual unit it is built of, the soft-mask branch
and the Attention Module that combines a trunk with a mask by attention residual learning,
``H(x) = (1 + M(x)) * T(x)``."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from .conv import LayerFactory, make_act


def _norm_act_conv(in_chs: int, out_chs: int, kernel_size: int, stride: int = 1,
                   norm_layer: LayerFactory | None = nn.BatchNorm2d,
                   act_layer: LayerFactory = nn.ReLU) -> nn.Sequential:
    """``norm -> act -> conv``, the pre-activation order; the convolution has a bias only without a norm layer
    (the norm layers that follow it in the network would cancel one)."""
    parts = OrderedDict(bn=norm_layer(in_chs)) if norm_layer is not None else OrderedDict()
    parts["act"] = make_act(act_layer)
    parts["conv"] = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2,
                              bias=norm_layer is None)
    return nn.Sequential(parts)


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck residual unit, the "residual unit" of the Residual Attention Network.

    ``BN-ReLU-1x1 (out/4) -> BN-ReLU-3x3 (out/4, stride) -> BN-ReLU-1x1 (out)``, plus the input: the order of
    He, Zhang, Ren & Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016, which Wang et al. use. Where
    the shape changes, the shortcut is a strided 1x1 convolution of the *pre-activated* input (the first
    BN-ReLU is shared by both paths); elsewhere it is the identity, so nothing but the sum touches it.
    Sub-modules: ``preact`` (BN-ReLU), ``conv1``, then ``conv2`` and ``conv3`` (each BN-ReLU-conv), ``shortcut``.
    """

    expansion = 4

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        mid = out_chs // self.expansion
        self.preact = nn.Sequential(OrderedDict(bn=norm_layer(in_chs))) if norm_layer is not None else \
            nn.Sequential()
        self.preact.add_module("act", make_act(act_layer))
        bias = norm_layer is None  # a conv bias only where no norm layer shifts its output
        self.conv1 = nn.Conv2d(in_chs, mid, 1, bias=bias)
        self.conv2 = _norm_act_conv(mid, mid, 3, stride, norm_layer, act_layer)
        self.conv3 = _norm_act_conv(mid, out_chs, 1, 1, norm_layer, act_layer)
        self.shortcut = nn.Conv2d(in_chs, out_chs, 1, stride, bias=bias) \
            if stride != 1 or in_chs != out_chs else None
        self.in_chs, self.out_chs = in_chs, out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.preact(x)
        identity = x if self.shortcut is None else self.shortcut(a)
        return self.conv3(self.conv2(self.conv1(a))) + identity


def _units(n: int, chs: int, norm_layer: LayerFactory | None, act_layer: LayerFactory) -> nn.Sequential:
    return nn.Sequential(*(PreActBottleneck(chs, chs, 1, norm_layer, act_layer) for _ in range(n)))


class SoftMaskBranch(nn.Module):
    """The soft-mask branch: a bottom-up, top-down hourglass ending in a sigmoid, ``M(x)`` in (0, 1).

    Down: ``depth`` times a 3x3/2 max-pool followed by ``r`` residual units. Up: ``r`` residual units at each
    resolution, then an interpolation to the next larger size. Each intermediate resolution passes its
    down-path output through one more residual unit (the skip connection) and adds it to what comes up
    from below. The lowest resolution thus has ``2r`` units in a row, as in the paper's Fig. 3. Last comes
    the interpolation back to the input's size and ``BN-ReLU-1x1 conv-BN-ReLU-1x1 conv-sigmoid`` (C -> C
    channels, no bias, as in the authors' released model).

    Args:
        chs: channels (kept throughout).
        depth: number of max-pools (the paper: 3, 2, 1 in stages 1, 2, 3 of the ImageNet networks).
        r: residual units between adjacent pooling layers.
        mode: ``"bilinear"`` (the paper's linear interpolation) or ``"nearest"``.

    The max-pools pad by 1, so a map of side ``n`` becomes ``ceil(n / 2)``: every size down to 1x1 pools,
    and each interpolation goes to the exact size of the map it is added to, odd sizes included.
    """

    def __init__(self, chs: int, depth: int, r: int = 1, mode: str = "bilinear",
                 norm_layer: LayerFactory | None = nn.BatchNorm2d, act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"the soft-mask branch needs at least one down-sampling, got depth={depth}")
        if mode not in ("bilinear", "nearest"):
            raise ValueError(f"up-sampling mode must be 'bilinear' or 'nearest', got '{mode}'")
        self.depth, self.mode = depth, mode
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(3, 2, padding=1), *_units(r, chs, norm_layer, act_layer))
            for _ in range(depth))
        self.skip = nn.ModuleList(PreActBottleneck(chs, chs, 1, norm_layer, act_layer) for _ in range(depth - 1))
        self.up = nn.ModuleList(_units(r, chs, norm_layer, act_layer) for _ in range(depth))
        self.out = nn.Sequential(OrderedDict(
            conv1=_norm_act_conv(chs, chs, 1, norm_layer=norm_layer, act_layer=act_layer),
            conv2=_norm_act_conv(chs, chs, 1, norm_layer=norm_layer, act_layer=act_layer),
            sigmoid=nn.Sigmoid(),
        ))

    def _upsample(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        align = False if self.mode == "bilinear" else None
        return F.interpolate(x, size=like.shape[-2:], mode=self.mode, align_corners=align)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        downs = []
        y = x
        for down in self.down:                              # C x H x W -> ... -> C x H/2^depth x W/2^depth
            y = down(y)
            downs.append(y)
        for level in reversed(range(self.depth)):           # level 0 is the first pooled size, H/2
            y = self.up[level](y)
            if level > 0:                                   # back to the next larger pooled size, plus the skip
                y = self._upsample(y, downs[level - 1]) + self.skip[level - 1](downs[level - 1])
        return self.out(self._upsample(y, x))               # C x H x W, in (0, 1)


class AttentionModule(nn.Module):
    """The Attention Module: ``p`` residual units, then a trunk branch and a soft-mask branch side by side,
    combined, then ``p`` more units.

    Trunk: ``t`` residual units, ``T(x)``. Mask: :class:`SoftMaskBranch`, ``M(x)`` in (0, 1). Attention
    residual learning (the paper's Eq. 3) gives ``H(x) = (1 + M(x)) * T(x)``: the mask can only amplify trunk
    features, never erase them, so stacking modules does not shrink the features the way ``M(x) * T(x)``
    ("naive attention learning", ``residual=False``, the paper's NAL baseline) does.
    """

    def __init__(self, chs: int, depth: int, p: int = 1, t: int = 2, r: int = 1, mode: str = "bilinear",
                 residual: bool = True, norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        self.residual = residual
        self.pre = _units(p, chs, norm_layer, act_layer)
        self.trunk = _units(t, chs, norm_layer, act_layer)
        self.mask = SoftMaskBranch(chs, depth, r, mode, norm_layer, act_layer)
        self.post = _units(p, chs, norm_layer, act_layer)
        self.in_chs = self.out_chs = chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        trunk, mask = self.trunk(x), self.mask(x)
        return self.post((1 + mask) * trunk if self.residual else mask * trunk)
