"""The training engine: ``fit(TrainConfig(...))`` trains, checkpoints and writes a run directory."""

from .config import TrainConfig
from .engine import FitResult, TrainingDiverged, evaluate, fit
from .rundir import RunDir, load_run_model
from .tasks import ClassificationTask

__all__ = ["ClassificationTask", "FitResult", "RunDir", "TrainConfig", "TrainingDiverged", "evaluate", "fit",
           "load_run_model"]
