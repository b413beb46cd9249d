"""Experiments: one file per study, each training many runs with the engine and writing a directory with
results.csv, summary.json, table.txt and plots (see :mod:`cnnlab.experiments._study`)."""

from ._study import write_study_report_of
from .activations import QUICK as ACTIVATIONS_QUICK
from .activations import ActivationsResult, ActivationsSettings, run_activations_experiment
from .architectures import QUICK as ARCHITECTURES_QUICK
from .architectures import ArchitecturesResult, ArchitecturesSettings, run_architectures_experiment
from .depth import QUICK as DEPTH_QUICK
from .depth import DepthResult, DepthSettings, run_depth_experiment
from .efficiency import QUICK as EFFICIENCY_QUICK
from .efficiency import EfficiencyResult, EfficiencySettings, run_efficiency_experiment
from .init import QUICK as INIT_QUICK
from .init import InitResult, InitSettings, run_init_experiment
from .regularization import QUICK as REGULARIZATION_QUICK
from .regularization import RegularizationResult, RegularizationSettings, run_regularization_experiment
from .transfer import DEFAULT_TARGETS, ExperimentResult, TransferSettings, run_transfer_experiment
from .transfer import QUICK as TRANSFER_QUICK

__all__ = [
    "ACTIVATIONS_QUICK", "ARCHITECTURES_QUICK", "ActivationsResult", "ActivationsSettings", "ArchitecturesResult",
    "ArchitecturesSettings", "DEFAULT_TARGETS", "DEPTH_QUICK", "DepthResult",
    "DepthSettings", "EFFICIENCY_QUICK", "EfficiencyResult", "EfficiencySettings", "ExperimentResult", "INIT_QUICK",
    "InitResult", "InitSettings", "REGULARIZATION_QUICK", "RegularizationResult", "RegularizationSettings",
    "run_activations_experiment", "run_architectures_experiment", "run_depth_experiment",
    "run_efficiency_experiment", "run_init_experiment",
    "run_regularization_experiment", "run_transfer_experiment", "TRANSFER_QUICK", "TransferSettings",
    "write_study_report_of",
]
