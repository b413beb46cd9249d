"""cnnlab: understand, train and reuse convolutional networks.

>>> import cnnlab
>>> model = cnnlab.create_model("resnet18", num_classes=10, in_chans=1, small_input=True)
>>> cnnlab.conv_output_shape((224, 224, 3), kernel=3, filters=32)
(222, 222, 32)
"""

import os

# OpenMP threads that busy-wait between parallel regions make PyTorch on a CPU shared with any other busy
# process (a second training run, a test suite) slow down by one to two orders of magnitude: measured here,
# LeNet-5 for 30 epochs on a loaded 2-core machine took 212 s with the default policy and 7.7 s passive
# (5.7 s with one thread). Set before torch is first imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .errors import CnnlabError  # noqa: E402
from .inspect import conv_output_shape, pool_output_shape, summary  # noqa: E402
from .models import (  # noqa: E402
    Classifier,
    create_model,
    list_models,
    load_torchvision_weights,
    load_weights_file,
    model_meta,
    register_model,
)
from .nn.init import init_weights  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Classifier", "CnnlabError", "conv_output_shape", "create_model", "init_weights", "list_models",
    "load_torchvision_weights", "load_weights_file", "model_meta", "pool_output_shape", "register_model",
    "summary", "__version__",
]
