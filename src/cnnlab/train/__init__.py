"""The training engine: ``fit(TrainConfig(...))`` trains, checkpoints and writes a run directory."""

from .config import TrainConfig, TransferConfig
from .engine import FitResult, Recipe, TrainingDiverged, evaluate, fit
from .rundir import RunDir, load_run_model
from .tasks import ClassificationTask

__all__ = ["ClassificationTask", "FitResult", "Recipe", "RunDir", "TrainConfig", "TransferConfig", "TrainingDiverged",
           "evaluate", "fit", "load_run_model"]
