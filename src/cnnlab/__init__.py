"""cnnlab: understand, train and reuse convolutional networks.

>>> import cnnlab
>>> model = cnnlab.create_model("resnet18", num_classes=10, in_chans=1, small_input=True)
>>> cnnlab.conv_output_shape((224, 224, 3), kernel=3, filters=32)
(222, 222, 32)
"""

from .errors import CnnlabError
from .inspect import conv_output_shape, pool_output_shape, summary
from .models import (
    Classifier,
    create_model,
    list_models,
    load_torchvision_weights,
    load_weights_file,
    model_meta,
    register_model,
)
from .nn.init import init_weights

__version__ = "0.1.0"

__all__ = [
    "Classifier", "CnnlabError", "conv_output_shape", "create_model", "init_weights", "list_models",
    "load_torchvision_weights", "load_weights_file", "model_meta", "pool_output_shape", "register_model",
    "summary", "__version__",
]
