"""Every run, whatever its kind: :func:`fit` trains a config, :meth:`Run.open` reads a run directory back.

Importing this module registers the built-in kinds of run (classifier, transfer, autoencoder, segmenter), so
that any run directory opens and any config.yaml loads. A new kind is a package of its own that registers
itself (:func:`cnnlab.train.register_kind`) and is imported here.
"""

from pathlib import Path

from . import ae, classify, segment, transfer  # noqa: F401  (registration of the kinds)
from ._io import existing_dir
from .errors import CnnlabError
from .experiments import write_study_report_of
from .report import write_report
from .train import Run, RunConfig, fit
from .train.rundir import lock_dir, unlock_dir


def load_config(path) -> RunConfig:
    """A config.yaml of any kind of run, as the config class of its kind (reusable with :func:`fit`)."""
    return RunConfig.load(path)


def write_any_report(path) -> Path:
    """Rebuild the ``report.html`` of a run directory or of an experiment directory; returns its path. A
    directory that a cnnlab process is still writing is refused in one line: its process writes the report
    when it ends, and one written meanwhile would show a run half done."""
    path = existing_dir(path, "run or experiment directory")
    if (path / "experiment.json").is_file():
        what, write = "experiment directory", write_study_report_of
    elif (path / "config.yaml").is_file():
        what, write = "run directory", lambda p: write_report(Run.open(p))
    else:
        raise CnnlabError(f"'{path}' is neither a run directory (config.yaml) nor an experiment directory "
                          f"(experiment.json)")
    lock = lock_dir(path, what)
    try:
        return write(path)
    finally:
        unlock_dir(lock)


__all__ = ["Run", "RunConfig", "fit", "load_config", "write_any_report"]
