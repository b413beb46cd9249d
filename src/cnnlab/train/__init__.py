"""The training engine: ``fit(config)`` trains any kind of run, checkpoints it and writes its run directory;
:class:`Run` reads a run back. The engine knows the :class:`Recipe` and :class:`Task` protocols and the
:class:`Kind` registry, never which kinds exist (they are packages of their own: classify, transfer, ae,
segment)."""

from .config import RunConfig
from .engine import EpochEnd, FitResult, Progress, Recipe, Task, TrainingDiverged, fit, train_one_epoch
from .kinds import Kind, get_kind, list_kinds, register_kind
from .precision import autocast
from .run import EvalOptions, Run
from .rundir import RunDir, default_run_dir, saved_config

__all__ = ["EpochEnd", "EvalOptions", "FitResult", "Kind", "Progress", "Recipe", "Run", "RunConfig", "RunDir",
           "Task", "TrainingDiverged", "autocast", "default_run_dir", "fit", "get_kind",
           "list_kinds", "register_kind", "saved_config", "train_one_epoch"]
