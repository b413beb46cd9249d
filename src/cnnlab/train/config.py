"""The training configuration: one typed, flat record, saved as ``config.yaml`` in every run directory.

A saved config is reusable as it is (``cnnlab train --config runs/x/config.yaml``): options given on the
command line override the file, which overrides the defaults.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml

from ..errors import CnnlabError

TRANSFER_MODES = ("feature-extraction", "fine-tune", "partial", "incremental")


@dataclass
class TransferConfig:
    """How a run reuses a trained model (``cnnlab transfer``); saved in config.yaml under ``transfer:``."""

    source: str = ""                         # a cnnlab run directory or checkpoint, or a torchvision weights file
    mode: str = "fine-tune"                  # feature-extraction | fine-tune | partial | incremental
    backbone_lr: float = 0.1                 # backbone learning rate = lr x this (fine-tune, partial, incremental)
    head_epochs: int = 0                     # fine-tune warm start: train only the head for this many epochs
    freeze_stages: int = 2                   # partial: freeze the first K stages of feature_info
    bn: str = "frozen"                       # trainable batch norm: frozen (inference mode) | train
    cache: str = "auto"                      # feature-extraction: auto | memory | disk | off
    adapt_channels: str = "auto"             # first conv for other channels: auto | sum | repeat
    memory: int = 20                         # incremental: rehearsal exemplars per old class (0: none)
    distill: float = 0.0                     # incremental: weight of distillation from the old model
    compare_naive: bool = True               # incremental: also train without mitigation, in RUN/naive

    def validate(self) -> None:
        choices = {"mode": TRANSFER_MODES, "bn": ("frozen", "train"), "cache": ("auto", "memory", "disk", "off"),
                   "adapt_channels": ("auto", "sum", "repeat")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise CnnlabError(f"transfer {key} must be one of {', '.join(allowed)}, got '{getattr(self, key)}'")
        if not self.source:
            raise CnnlabError("transfer needs a source: --from RUN_DIR, CHECKPOINT or WEIGHTS_FILE")
        if not self.backbone_lr >= 0:
            raise CnnlabError(f"backbone_lr must not be negative, got {self.backbone_lr}")
        for key in ("head_epochs", "freeze_stages", "memory"):
            if getattr(self, key) < 0:
                raise CnnlabError(f"{key} must not be negative, got {getattr(self, key)}")
        if self.distill < 0:
            raise CnnlabError(f"distill must not be negative, got {self.distill}")


@dataclass
class TrainConfig:
    # what to train, on what
    model: str = "lenet5"
    data: str = "digits"
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"small_input": true}
    init: str | None = None                  # weight-init scheme (cnnlab.nn.init_weights)
    image_size: int | None = None            # resize images to this (default: what the model needs)
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    # optimisation
    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3                         # peak learning rate (after warm-up), for the batch size given
    optimizer: str = "adam"                  # sgd | adam | adamw
    momentum: float = 0.9                    # SGD
    nesterov: bool = False                   # SGD
    weight_decay: float = 0.0                # the optimiser's (decoupled for AdamW)
    l1: float = 0.0                          # L1 penalty on conv/linear weights, added to the loss
    l2: float = 0.0                          # L2 penalty on conv/linear weights, added to the loss
    scheduler: str = "cosine"                # none | step | cosine | onecycle
    warmup_epochs: float = 0.0
    step_size: int = 10                      # step schedule: epochs between decays
    gamma: float = 0.1                       # step schedule: decay factor
    grad_clip: float | None = None           # max gradient norm
    # loss and regularisation
    loss: str = "auto"                       # auto | ce | bce  (auto: bce for two classes)
    label_smoothing: float = 0.1
    dropout: float | None = None             # override the model's dropout rate
    aux_weight: float = 0.3                  # GoogLeNet's auxiliary losses
    augment: bool = True
    early_stopping: int = 0                  # patience in epochs (0 = off); restores the best weights
    monitor: str = "val_loss"                # val_loss | val_acc
    # run
    seed: int = 0
    device: str = "auto"                     # auto | cpu | cuda | mps
    precision: str = "fp32"                  # fp32 | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = False
    threads: int | None = None
    quiet: bool = False
    tensorboard: bool = False
    run_dir: str | None = None
    transfer: TransferConfig | None = None   # set by `cnnlab transfer`: start from a trained model

    def validate(self) -> TrainConfig:
        try:
            return self._validate()
        except TypeError:  # e.g. "epochs: many" in a config file
            bad = {f.name: getattr(self, f.name) for f in fields(self)}
            raise CnnlabError(f"a config value has the wrong type: {bad}") from None

    def _validate(self) -> TrainConfig:
        choices = {"optimizer": ("sgd", "adam", "adamw"), "scheduler": ("none", "step", "cosine", "onecycle"),
                   "loss": ("auto", "ce", "bce"), "monitor": ("val_loss", "val_acc"),
                   "device": ("auto", "cpu", "cuda", "mps"), "precision": ("fp32", "bf16", "fp16")}
        for key, allowed in choices.items():
            value = getattr(self, key)
            if value not in allowed and not (key == "device" and str(value).startswith("cuda:")):
                raise CnnlabError(f"{key} must be one of {', '.join(allowed)}, got '{value}'")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}
        for key, value in positive.items():
            if not value > 0:
                raise CnnlabError(f"{key} must be positive, got {value}")
        for key in ("weight_decay", "l1", "l2", "label_smoothing", "warmup_epochs", "early_stopping"):
            if getattr(self, key) < 0:
                raise CnnlabError(f"{key} must not be negative, got {getattr(self, key)}")
        for key in ("threads", "step_size", "grad_clip"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise CnnlabError(f"{key} must be positive, got {value}")
        if not 0 <= self.momentum < 1:
            raise CnnlabError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise CnnlabError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise CnnlabError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs})")
        if self.warmup_epochs and self.scheduler == "onecycle":
            raise CnnlabError("the onecycle schedule has its own warm-up; drop warmup_epochs")
        if self.label_smoothing >= 1:
            raise CnnlabError(f"label_smoothing must be below 1, got {self.label_smoothing}")
        if self.transfer is not None:
            self.transfer.validate()
            if self.transfer.head_epochs and self.transfer.head_epochs >= self.epochs:
                raise CnnlabError(f"head_epochs ({self.transfer.head_epochs}) must be fewer than epochs "
                                  f"({self.epochs})")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CnnlabError(f"{source}: unknown option(s) {', '.join(unknown)}")
        transfer = values.get("transfer")
        if isinstance(transfer, dict):
            names = {f.name for f in fields(TransferConfig)}
            bad = sorted(set(transfer) - names)
            if bad:
                raise CnnlabError(f"{source}: unknown transfer option(s) {', '.join(bad)}")
            values = {**values, "transfer": TransferConfig(**transfer)}
        elif transfer is not None:
            raise CnnlabError(f"{source}: transfer must be a mapping of option: value")
        return cls(**values)

    def save(self, path: str | os.PathLike) -> None:
        from .checkpoint import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        if not os.path.isfile(path):
            raise CnnlabError(f"config file '{path}' does not exist")
        try:
            with open(path) as f:
                values = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise CnnlabError(f"config file '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(values, dict):
            raise CnnlabError(f"config file '{path}' must hold a mapping of option: value")
        return cls.from_dict(values, str(path))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
