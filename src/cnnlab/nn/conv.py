"""Convolution building blocks: conv-norm-activation and the depthwise separable convolution."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

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
    ) -> None:
        if padding is None:
            padding = same_padding(kernel_size, dilation)
        if bias is None:
            bias = norm_layer is None
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = nn.Conv2d(
            in_chs, out_chs, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups,
            bias=bias,
        )
        if norm_layer is not None:
            layers["bn"] = norm_layer(out_chs, **(norm_kwargs or {}))
        if act_layer is not None:
            layers["act"] = make_act(act_layer)
        super().__init__(layers)
        self.in_chs, self.out_chs = in_chs, out_chs


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
