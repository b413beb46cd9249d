"""Every run, whatever its kind: :func:`fit` trains a config, :meth:`Run.open` reads a run directory back.

Importing this module registers the built-in kinds of run (classifier, transfer, autoencoder, segmenter), so
that any run directory opens and any config.yaml loads. A new kind is a package of its own that registers
itself (:func:`cnnlab.train.register_kind`) and is imported here.
"""

from . import ae, classify, segment, transfer  # noqa: F401  (registration of the kinds)
from .train import Run, RunConfig, fit


def load_config(path) -> RunConfig:
    """A config.yaml of any kind of run, as the config class of its kind (reusable with :func:`fit`)."""
    return RunConfig.load(path)


__all__ = ["Run", "RunConfig", "fit", "load_config"]
