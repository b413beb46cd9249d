"""Experiments: one file per study, each training many runs with the engine and writing a directory with
results.csv, summary.json, table.txt and plots (see :mod:`cnnlab.experiments._study`)."""

from ._study import write_study_report_of
from .depth import QUICK as DEPTH_QUICK
from .depth import DepthResult, DepthSettings, run_depth_experiment
from .efficiency import QUICK as EFFICIENCY_QUICK
from .efficiency import EfficiencyResult, EfficiencySettings, run_efficiency_experiment
from .transfer import DEFAULT_TARGETS, ExperimentResult, TransferSettings, run_transfer_experiment

__all__ = [
    "DEFAULT_TARGETS", "DEPTH_QUICK", "EFFICIENCY_QUICK", "DepthResult", "DepthSettings", "EfficiencyResult",
    "EfficiencySettings", "ExperimentResult", "TransferSettings", "run_depth_experiment", "run_efficiency_experiment",
    "run_transfer_experiment", "write_study_report_of",
]
