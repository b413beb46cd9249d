"""Transfer learning: reuse a trained model's backbone for a new task.

Four modes, written once against the backbone/head contract so they work for every architecture:

* ``feature-extraction``: the backbone is frozen (no gradients, batch norm in inference mode); its features
  are computed once and cached, and only the head trains;
* ``fine-tune``: every layer trains, the backbone at a fraction of the head's learning rate, optionally after
  a few head-only epochs (warm start);
* ``partial``: the first K stages stay frozen, the rest trains;
* ``incremental``: new classes are added to a trained classifier, with rehearsal and/or distillation
  against forgetting.

>>> from cnnlab.train import fit
>>> from cnnlab.transfer import TransferConfig
>>> config = TransferConfig(source="runs/base", mode="feature-extraction", data="digits@classes=5-9@labels=10")
>>> result = fit(config)  # doctest: +SKIP
"""

from .config import MODES, TransferConfig
from .features import FeatureCache, HeadOnly, extract_features
from .freeze import (
    backbone_parameters,
    count_trainable,
    freeze,
    freeze_backbone,
    freeze_stages,
    head_parameters,
    param_groups,
    set_bn_frozen,
    stage_modules,
    unfreeze,
)
from .incremental import Distiller, DistillTask, accuracy_by_group, expand_classifier, incremental_data
from .kind import TransferKind
from .recipe import TransferRecipe
from .source import Source, adapt_channels, read_source, transfer_weights

__all__ = [
    "MODES", "DistillTask", "Distiller", "FeatureCache", "HeadOnly", "Source", "TransferConfig", "TransferKind",
    "TransferRecipe", "accuracy_by_group", "adapt_channels", "backbone_parameters", "count_trainable",
    "expand_classifier", "extract_features", "freeze", "freeze_backbone", "freeze_stages", "head_parameters",
    "incremental_data", "param_groups", "read_source", "set_bn_frozen", "stage_modules", "transfer_weights",
    "unfreeze",
]
