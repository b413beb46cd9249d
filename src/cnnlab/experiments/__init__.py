"""Experiments: one file per study, each training many runs with the engine and writing a directory with
results.csv, summary.json, table.txt and plots (see :mod:`cnnlab.experiments._study`)."""

from ._study import write_study_report_of
from .efficiency import QUICK as EFFICIENCY_QUICK
from .efficiency import EfficiencyResult, EfficiencySettings, run_efficiency_experiment
from .transfer import DEFAULT_TARGETS, ExperimentResult, TransferSettings, run_transfer_experiment

__all__ = [
    "DEFAULT_TARGETS", "EFFICIENCY_QUICK", "EfficiencyResult", "EfficiencySettings", "ExperimentResult",
    "TransferSettings", "run_efficiency_experiment", "run_transfer_experiment", "write_study_report_of",
]
