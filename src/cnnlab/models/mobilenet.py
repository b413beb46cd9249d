"""MobileNet v1, v2 and v3.

Papers: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", arXiv:1704.04861, 2017 (v1); Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018 (v2); Howard et al., "Searching for MobileNetV3", ICCV 2019 (v3).

v1 replaces every convolution after the stem by a depthwise separable one (depthwise 3x3 + pointwise 1x1);
the width multiplier ``width_mult`` (the paper's alpha) thins every layer. v2 stacks inverted residual
blocks with linear bottlenecks and ReLU6. v3 keeps v2's block and adds what an architecture search found:
5x5 depthwise kernels in places, squeeze-and-excitation gates, the hard swish ``x * relu6(x + 3) / 6`` in the
deeper half (cheaper than swish), and a head that pools before its last wide layer.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..nn.conv import ConvNormAct, DepthwiseSeparableConv, LayerFactory
from ..nn.head import ClassifierHead
from ..nn.init import torchvision_init
from ..nn.mobile import InvertedResidual
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER_V1 = "Howard et al. 2017, MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications"
PAPER_V2 = "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks"
PAPER_V3 = "Howard et al. 2019, Searching for MobileNetV3"

# v1 (paper Table 1): output channels and stride of each depthwise separable layer, grouped in stages.
_V1_STAGES = (((64, 1),), ((128, 2), (128, 1)), ((256, 2), (256, 1)),
              ((512, 2),) + ((512, 1),) * 5, ((1024, 2), (1024, 1)))
# v2 (paper Table 2): expansion t, channels c, repeats n, first stride s.
_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))


# v3 (paper Tables 1 and 2): depthwise kernel, expanded width, output channels, squeeze-and-excitation,
# activation (RE: ReLU, HS: hard swish), stride; then the last 1x1 convolution's width and the head's.
_V3_LARGE = ((3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
             (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
             (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
             (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
             (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1))
_V3_SMALL = ((3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
             (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
             (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
             (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1))
_V3 = {"large": (_V3_LARGE, 960, 1280), "small": (_V3_SMALL, 576, 1024)}
_V3_NORM = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without going more than 10% below ``v`` (MobileNet v2)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class _MobileNet(Classifier):
    """Shared parts: the family's initialisation and a plain stem-stages forward."""

    stem: nn.Module
    stages: nn.Sequential

    def init_weights(self) -> None:
        """torchvision's MobileNet scheme: Kaiming-normal (fan-out) convolutions, N(0, 0.01) linear."""
        torchvision_init(self, conv_mode="fan_out", nonlinearity="leaky_relu", linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def _sizes(self, in_chans: int, small_input: bool, width_mult: float = 1.0) -> None:
        if width_mult <= 0:
            from ..errors import CnnlabError

            raise CnnlabError(f"width_mult must be positive, got {width_mult}")
        self.set_input_sizes(in_chans, small_input)


class MobileNetV1(_MobileNet):
    """MobileNet v1. ``small_input=True`` makes the stem and the first strided layer stride 1.

    ``full_conv=True`` builds the paper's baseline of Table 4 ("Conv MobileNet"): the same network with a full
    3x3 convolution where v1 has a depthwise separable one (29.3M parameters and 4,866M multiply-adds at 224,
    against 4.2M and 569M).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        drop_rate: float = 0.0,
        small_input: bool = False,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        full_conv: bool = False,
    ) -> None:
        super().__init__()
        self._sizes(in_chans, small_input, width_mult)
        chs = int(32 * width_mult)
        self.stem = ConvNormAct(in_chans, chs, 3, 1 if small_input else 2, norm_layer=norm_layer,
                                act_layer=act_layer)
        reduction = 1 if small_input else 2
        stages, self.feature_info = [], []
        for i, stage in enumerate(_V1_STAGES):
            blocks = []
            for out, stride in stage:
                if small_input and i == 1:
                    stride = 1
                out = int(out * width_mult)
                if full_conv:
                    blocks.append(ConvNormAct(chs, out, 3, stride, norm_layer=norm_layer, act_layer=act_layer))
                else:
                    blocks.append(DepthwiseSeparableConv(chs, out, stride, norm_layer=norm_layer,
                                                         act_layer=act_layer))
                chs, reduction = out, reduction * stride
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(chs, reduction, f"stages.{i}"))
        self.stages = nn.Sequential(*stages)                   # 1024 x 7 x 7 at 224
        self.num_features = chs
        self.head = ClassifierHead(chs, num_classes, drop_rate=drop_rate)
        self.init_weights()


class MobileNetV2(_MobileNet):
    """MobileNet v2. ``small_input=True`` makes the stem and the first stride-2 stage stride 1."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        drop_rate: float = 0.2,
        small_input: bool = False,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU6,
    ) -> None:
        super().__init__()
        self._sizes(in_chans, small_input, width_mult)
        chs = make_divisible(32 * width_mult)
        self.stem = ConvNormAct(in_chans, chs, 3, 1 if small_input else 2, norm_layer=norm_layer,
                                act_layer=act_layer)
        reduction = 1 if small_input else 2
        stages, self.feature_info = [], []
        for i, (t, c, n, s) in enumerate(_V2_SETTINGS):
            if small_input and i == 1:
                s = 1
            out = make_divisible(c * width_mult)
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(chs, out, s if j == 0 else 1, t, norm_layer, act_layer))
                chs = out
            reduction *= s
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(FeatureInfo(chs, reduction, f"stages.{i}"))
        last = make_divisible(1280 * max(1.0, width_mult))
        stages.append(ConvNormAct(chs, last, 1, norm_layer=norm_layer, act_layer=act_layer))
        self.feature_info.append(FeatureInfo(last, reduction, f"stages.{len(stages) - 1}"))
        self.stages = nn.Sequential(*stages)                   # 1280 x 7 x 7 at 224
        self.num_features = last
        self.head = ClassifierHead(last, num_classes, drop_rate=drop_rate)
        self.init_weights()


class MobileNetV3(_MobileNet):
    """MobileNet v3, ``size`` ``"large"`` or ``"small"``. Stages are the runs of blocks at one resolution.
    ``small_input=True`` makes the stem and the first strided block stride 1.

    Batch norm uses eps 0.001 and momentum 0.01, as the reference implementation does (so torchvision's
    weights give its outputs)."""

    def __init__(
        self,
        size: str = "large",
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        drop_rate: float = 0.2,
        small_input: bool = False,
        norm_layer: LayerFactory = _V3_NORM,
    ) -> None:
        super().__init__()
        if size not in _V3:
            raise ValueError(f"size must be 'large' or 'small', got {size!r}")
        self._sizes(in_chans, small_input, width_mult)
        table, last_conv, head = _V3[size]
        acts = {"RE": nn.ReLU, "HS": nn.Hardswish}
        chs = make_divisible(16 * width_mult)
        self.stem = ConvNormAct(in_chans, chs, 3, 1 if small_input else 2, norm_layer=norm_layer,
                                act_layer=nn.Hardswish)
        reduction, first_stride = (1 if small_input else 2), True
        stages, blocks, self.feature_info = [], [], []
        for k, hidden, out, se, act, stride in table:
            if stride == 2 and blocks:  # a new resolution: the blocks so far are a stage
                stages.append(nn.Sequential(*blocks))
                self.feature_info.append(FeatureInfo(chs, reduction, f"stages.{len(stages) - 1}"))
                blocks = []
            if stride == 2 and small_input and first_stride:
                stride, first_stride = 1, False
            hidden, out = make_divisible(hidden * width_mult), make_divisible(out * width_mult)
            blocks.append(InvertedResidual(chs, out, stride, hidden / chs, norm_layer, acts[act], kernel_size=k,
                                           hidden_chs=hidden, se_chs=make_divisible(hidden // 4) if se else 0))
            chs, reduction = out, reduction * stride
        last = make_divisible(last_conv * width_mult)
        blocks.append(ConvNormAct(chs, last, 1, norm_layer=norm_layer, act_layer=nn.Hardswish))
        stages.append(nn.Sequential(*blocks))
        self.feature_info.append(FeatureInfo(last, reduction, f"stages.{len(stages) - 1}"))
        self.stages = nn.Sequential(*stages)                   # 960 (large) or 576 (small) x 7 x 7 at 224
        self.num_features = last
        self.head = ClassifierHead(last, num_classes, hidden=(make_divisible(head * width_mult),),
                                   drop_rate=drop_rate, act_layer=nn.Hardswish)
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's v3 scheme: Kaiming-normal (fan-out) convolutions, N(0, 0.01) linear layers."""
        torchvision_init(self, conv_mode="fan_out", linear_std=0.01)


@register_model(family="mobilenet", paper=PAPER_V1, channels_last=True)
def mobilenet_v1(**kwargs) -> MobileNetV1:
    """MobileNet v1 (``width_mult`` = the paper's alpha; 1.0 has 4.2M parameters; ``full_conv=True``: the paper's
    baseline with full convolutions, 29.3M)."""
    return MobileNetV1(**kwargs)


@register_model(family="mobilenet", paper=PAPER_V2, torchvision="mobilenet_v2", channels_last=True)
def mobilenet_v2(**kwargs) -> MobileNetV2:
    """MobileNet v2 (``width_mult`` scales every layer; 1.0 has 3.5M parameters)."""
    return MobileNetV2(**kwargs)


@register_model(family="mobilenet", paper=PAPER_V3, torchvision="mobilenet_v3_large", channels_last=True)
def mobilenet_v3_large(**kwargs) -> MobileNetV3:
    """MobileNet v3 Large (5.5M parameters at 1.0)."""
    return MobileNetV3("large", **kwargs)


@register_model(family="mobilenet", paper=PAPER_V3, torchvision="mobilenet_v3_small", channels_last=True)
def mobilenet_v3_small(**kwargs) -> MobileNetV3:
    """MobileNet v3 Small (2.5M parameters at 1.0)."""
    return MobileNetV3("small", **kwargs)
