"""Building blocks of cnnlab's architectures and the weight-initialisation schemes."""

from .act import ACT_LAYERS, get_act_layer
from .conv import NORM_LAYERS, ConvNormAct, DepthwiseSeparableConv, WholeInputConv2d, get_norm_layer, same_padding
from .dense import DenseBlock, DenseLayer, NormActConv, Transition
from .head import ClassifierHead
from .inception import InceptionAux, InceptionModule
from .init import SCHEMES as INIT_SCHEMES
from .init import init_weights, parse_init
from .mobile import InvertedResidual
from .residual import BasicBlock, Bottleneck

__all__ = [
    "ACT_LAYERS", "NORM_LAYERS", "BasicBlock", "Bottleneck", "ClassifierHead", "ConvNormAct", "DenseBlock",
    "DenseLayer", "DepthwiseSeparableConv", "INIT_SCHEMES", "InceptionAux", "InceptionModule", "InvertedResidual",
    "NormActConv", "Transition", "WholeInputConv2d", "get_act_layer", "get_norm_layer", "init_weights", "parse_init",
    "same_padding",
]
