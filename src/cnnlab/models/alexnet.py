"""AlexNet.

Paper: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
NeurIPS 2012; the single-tower form of Krizhevsky, "One weird trick for parallelizing convolutional neural
networks", arXiv:1404.5997, 2014.

This is torchvision's form, so that its weights load: one tower (no grouped convolutions), 64-192-384-256-256
filters instead of 96-256-384-384-256, and no local response normalisation. Convolutions 11x11/4,
5x5, 3x3, 3x3, 3x3 with three 3x3/2 overlapping max-pools, then dropout-FC-4096 twice and the classifier.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..nn.conv import ConvNormAct, LayerFactory
from ..nn.head import ClassifierHead
from ._base import Classifier, FeatureInfo
from ._registry import register_model

PAPER = "Krizhevsky et al. 2012, ImageNet Classification with Deep Convolutional Neural Networks"


class AlexNet(Classifier):
    """AlexNet. ``small_input=True`` makes the first convolution 3x3/1 (for 28x28 or 32x32 images)."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        small_input: bool = False,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.set_input_sizes(in_chans, small_input, minimum=63, small_minimum=15)
        conv = dict(norm_layer=None, act_layer=act_layer)
        stem = (ConvNormAct(in_chans, 64, 3, 1, 1, **conv) if small_input
                else ConvNormAct(in_chans, 64, 11, 4, 2, **conv))     # 64 x 55 x 55 at 224
        self.features = nn.Sequential(
            OrderedDict(
                conv1=stem,
                pool1=nn.MaxPool2d(3, 2),                              # 64 x 27 x 27
                conv2=ConvNormAct(64, 192, 5, **conv),
                pool2=nn.MaxPool2d(3, 2),                              # 192 x 13 x 13
                conv3=ConvNormAct(192, 384, 3, **conv),
                conv4=ConvNormAct(384, 256, 3, **conv),
                conv5=ConvNormAct(256, 256, 3, **conv),
                pool5=nn.MaxPool2d(3, 2),                              # 256 x 6 x 6
            )
        )
        r = 1 if small_input else 4
        self.feature_info = [
            FeatureInfo(64, 2 * r, "features.pool1"),
            FeatureInfo(192, 4 * r, "features.pool2"),
            FeatureInfo(256, 8 * r, "features.pool5"),
        ]
        self.num_features = 256
        self.head = ClassifierHead(256, num_classes, pool_size=6, hidden=(4096, 4096), drop_rate=drop_rate,
                                   act_layer=act_layer, dropout_first=True)

    def init_weights(self) -> None:
        """torchvision's AlexNet keeps PyTorch's layer defaults."""
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_model(family="alexnet", paper=PAPER, torchvision="alexnet",
                notes="torchvision's single-tower form (64 first-layer filters, no LRN)")
def alexnet(**kwargs) -> AlexNet:
    """AlexNet (torchvision form; ``small_input`` for 28-32 px images)."""
    return AlexNet(**kwargs)
