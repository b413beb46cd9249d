"""cnnlab: understand, train and reuse convolutional networks.

>>> import cnnlab
>>> model = cnnlab.create_model("resnet18", num_classes=10, in_chans=1, small_input=True)
>>> cnnlab.conv_output_shape((224, 224, 3), kernel=3, filters=32)
(222, 222, 32)
>>> result = cnnlab.fit(cnnlab.ClassifierConfig(model="lenet5", data="digits"))  # doctest: +SKIP
>>> cnnlab.Run.open(result.run_dir).evaluate("test")["accuracy"]                 # doctest: +SKIP
"""

import importlib

from .errors import CnnlabError  # (no torch: the command line handles Ctrl-C before torch loads)

__version__ = "0.1.0"

# The public names load on first use (PEP 562), so `import cnnlab` and the command line start without
# importing torch; `cnnlab.create_model` and `from cnnlab import create_model` work as usual, and so do the
# subpackages (`cnnlab.explain.class_activation_maps` after a plain `import cnnlab`).
_PACKAGES = ("ae", "classify", "data", "experiments", "explain", "inspect", "models", "nn", "report", "segment",
             "train", "transfer", "viz")
_EXPORTS = {
    "conv_output_shape": ".inspect", "pool_output_shape": ".inspect", "summary": ".inspect",
    "Classifier": ".models", "create_model": ".models", "list_models": ".models",
    "load_torchvision_weights": ".models", "load_weights_file": ".models", "model_meta": ".models",
    "register_model": ".models", "init_weights": ".nn.init",
    "Run": ".run", "fit": ".run", "load_config": ".run",
    "cpu_description": "._machine", "native_bf16": "._machine", "native_fp16": "._machine",
    "keep_freed_memory": "._machine",
    "release_freed_memory": "._machine",
    "ClassifierConfig": ".classify", "TransferConfig": ".transfer", "AEConfig": ".ae", "SegmentConfig": ".segment",
}

__all__ = ["CnnlabError", "__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    if name in _PACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'cnnlab' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
