"""GoogLeNet (Inception v1).

Paper: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015.

A stem, nine Inception modules in three groups (3a-3b, 4a-4e, 5a-5b) separated by 3x3/2 max-pools, global
average pooling, dropout and one linear layer. Two auxiliary classifiers on 4a and 4d add gradient signal
to the middle of the network while training (weight 0.3 in the loss); they exist only in training mode:
``model.train()`` returns :class:`InceptionOutputs` (logits, aux1, aux2), ``model.eval()`` returns logits.

Two forms:

- ``googlenet``: torchvision's form, so that its weights load: batch norm (eps 0.001) after every
  convolution, no local response normalisation, and a 3x3 convolution in the branch the paper calls 5x5.
- ``googlenet_paper``: faithful to the paper: convolutions with bias and no batch norm, LRN after the first
  pool and after conv3, real 5x5 convolutions, and 40% dropout before the classifier.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn

from ..errors import CnnlabError
from ..nn.conv import ConvNormAct
from ..nn.head import ClassifierHead
from ..nn.inception import InceptionAux, InceptionModule
from ..nn.init import trunc_normal_
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Szegedy et al. 2015, Going Deeper with Convolutions"

# Paper Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def renormalise_for_inception(x: torch.Tensor) -> torch.Tensor:
    """An ImageNet-normalised batch renormalised to [-1, 1] per channel, the input the Inception networks were
    trained on: torchvision's GoogLeNet and Inception v3 weights expect it (``transform_input=True``)."""
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    if x.shape[1] != 3:
        raise CnnlabError(f"transform_input renormalises RGB images; this model takes {x.shape[1]} channel(s)")
    return torch.cat([(x[:, i:i + 1] * (std[i] / 0.5)) + (mean[i] - 0.5) / 0.5 for i in range(3)], 1)


class InceptionOutputs(NamedTuple):
    """What GoogLeNet returns in training mode."""

    logits: torch.Tensor
    aux1: torch.Tensor | None
    aux2: torch.Tensor | None


class GoogLeNet(Classifier):
    """GoogLeNet. ``small_input=True`` makes the stem 3x3/1 without its first max-pool (for 28-32 px)."""

    aux_heads = ("aux1", "aux2")

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        batch_norm: bool = True,
        paper_5x5: bool = False,
        lrn: bool = False,
        drop_rate: float = 0.2,
        aux_drop_rate: float = 0.7,
        transform_input: bool = False,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        self.set_input_sizes(in_chans, small_input)
        self.aux_logits, self.transform_input = aux_logits, transform_input
        conv = functools.partial(ConvNormAct, norm_kwargs={"eps": 0.001}) if batch_norm else \
            functools.partial(ConvNormAct, norm_layer=None)
        pool = functools.partial(nn.MaxPool2d, 3, 2, ceil_mode=True)
        norm = (lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)) if lrn else nn.Identity
        stem: OrderedDict[str, nn.Module] = OrderedDict()
        if small_input:
            stem["conv1"] = conv(in_chans, 64, 3, 1)
        else:
            stem["conv1"] = conv(in_chans, 64, 7, 2, 3)               # 64 x 112 x 112
            stem["pool1"] = pool()                                    # 64 x 56 x 56
        stem["lrn1"] = norm()
        stem["conv2"] = conv(64, 64, 1)
        stem["conv3"] = conv(64, 192, 3)                              # 192 x 56 x 56
        stem["lrn2"] = norm()
        stem["pool2"] = pool()                                        # 192 x 28 x 28
        self.stem = nn.Sequential(stem)
        inception = functools.partial(InceptionModule, conv=conv, big_kernel=5 if paper_5x5 else 3)
        chs: int = 192
        for name in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
            module = inception(chs, *_MODULES[name])
            self.add_module(f"inception{name}", module)
            chs = module.out_chs
            if name == "3b":
                self.pool3 = pool()                                   # 480 x 14 x 14
            elif name == "4e":
                self.pool4 = nn.MaxPool2d(2, 2, ceil_mode=True)       # 832 x 7 x 7
        self.aux1 = InceptionAux(512, num_classes, conv, aux_drop_rate) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, conv, aux_drop_rate) if aux_logits else None
        r = 1 if small_input else 4
        self.feature_info = [FeatureInfo(192, r, "stem.conv3"), FeatureInfo(480, 2 * r, "inception3b"),
                             FeatureInfo(832, 4 * r, "inception4e"), FeatureInfo(1024, 8 * r, "inception5b")]
        self.num_features = chs                                       # 1024 x 7 x 7 at 224
        self.head = ClassifierHead(chs, num_classes, drop_rate=drop_rate)
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's scheme: N(0, 0.01) for conv and linear, truncated at +-2 (200 standard deviations: in
        effect not truncated), BN 1/0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        return renormalise_for_inception(x) if self.transform_input else x

    def _features(self, x: torch.Tensor, with_aux: bool):
        x = self.stem(self._transform_input(x))
        x = self.pool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)                                       # 512 x 14 x 14
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))   # 528 x 14 x 14
        aux2 = self.aux2(x) if with_aux else None
        x = self.pool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))                     # 1024 x 7 x 7
        return x, aux1, aux2

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x, with_aux=False)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor | InceptionOutputs:
        self.check_input(x)
        with_aux = self.training and self.aux_logits
        features, aux1, aux2 = self._features(x, with_aux)
        logits = self.forward_head(features)
        return InceptionOutputs(logits, aux1, aux2) if with_aux else logits


@register_model(family="googlenet", paper=PAPER, torchvision="googlenet", channels_last=True,
                notes="torchvision's form: batch norm, 3x3 in the '5x5' branch")
def googlenet(**kwargs) -> GoogLeNet:
    """GoogLeNet in torchvision's form (its weights load); auxiliary classifiers in training only."""
    return GoogLeNet(**kwargs)


@register_model(family="googlenet", paper=PAPER, channels_last=True,
                notes="as in the paper: no batch norm, LRN, real 5x5")
def googlenet_paper(**kwargs) -> GoogLeNet:
    """GoogLeNet as published: real 5x5 branches, LRN, no batch norm, 40% dropout."""
    kwargs = {"batch_norm": False, "paper_5x5": True, "lrn": True, "drop_rate": 0.4, **kwargs}
    return GoogLeNet(**kwargs)
