"""The architecture zoo. Importing this package registers every model."""

from . import (  # noqa: F401  (registration)
    alexnet,
    bn_inception,
    densenet,
    efficientnet,
    fractalnet,
    googlenet,
    inception,
    inception_resnet,
    lenet,
    mobilenet,
    pyramidnet,
    residual_attention,
    resnet,
    resnet_cifar,
    vgg,
    wide_resnet_cifar,
    xception,
    zfnet,
)
from ._base import Classifier, FeatureInfo, ModelMeta
from ._factory import check_model_arguments, create_model
from ._registry import list_models, model_meta, register_model
from ._torchvision import (
    LoadResult,
    classifier_keys,
    load_torchvision_weights,
    load_weights_file,
    read_state_dict,
)
from .googlenet import InceptionOutputs

__all__ = [
    "Classifier", "FeatureInfo", "InceptionOutputs", "LoadResult", "ModelMeta", "check_model_arguments",
    "classifier_keys", "create_model", "list_models", "load_torchvision_weights", "load_weights_file", "model_meta",
    "read_state_dict", "register_model",
]
