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


AE_KINDS = ("dense", "conv", "recurrent", "denoising", "sparse", "vae")


@dataclass
class AEConfig:
    """An autoencoder (``cnnlab ae train``); saved in config.yaml under ``autoencoder:``."""

    kind: str = "conv"                       # dense | conv | recurrent | denoising | sparse | vae
    body: str | None = None                  # denoising, sparse, vae: dense | conv | recurrent (default conv;
                                             # dense for vae)
    latent_dim: int = 16                     # the bottleneck
    noise: str | None = None                 # training corruption, e.g. gaussian:0.3 (denoising's default)
    topk: int | None = None                  # sparse: keep the k largest code activations
    sparsity_l1: float = 0.0                 # sparse: L1 penalty on the code
    sparsity_kl: float = 0.0                 # sparse: KL penalty towards sparsity_target (sigmoid codes)
    sparsity_target: float = 0.05
    beta: float = 1.0                        # vae: weight of the KL term
    kl_warmup: int = 0                       # vae: epochs over which the KL weight rises from 0 to beta
    likelihood: str = "bernoulli"            # bernoulli (cross-entropy) | gaussian (squared error)
    rnn_hidden: int = 128                    # recurrent: state size
    cell: str = "gru"                        # recurrent: gru | lstm

    @property
    def architecture(self) -> str:
        """The body: the kind itself, or ``body``; by default conv, and dense for a VAE (on the small
        built-in images its samples were clearly better: 79% mean classifier confidence against 52%)."""
        if self.kind in ("dense", "conv", "recurrent"):
            return self.kind
        return self.body or ("dense" if self.kind == "vae" else "conv")

    def validate(self) -> None:
        for key, allowed in {"kind": AE_KINDS, "likelihood": ("bernoulli", "gaussian"), "cell": ("gru", "lstm"),
                             "body": (None, "dense", "conv", "recurrent")}.items():
            if getattr(self, key) not in allowed:
                shown = ", ".join(a for a in allowed if a)
                raise CnnlabError(f"autoencoder {key} must be one of {shown}, got '{getattr(self, key)}'")
        if self.body and self.kind in ("dense", "conv", "recurrent"):
            raise CnnlabError(f"--body is for denoising, sparse and vae; kind {self.kind} is itself the body")
        if self.latent_dim < 1:
            raise CnnlabError(f"latent_dim must be at least 1, got {self.latent_dim}")
        for key in ("sparsity_l1", "sparsity_kl", "beta", "kl_warmup"):
            if getattr(self, key) < 0:
                raise CnnlabError(f"{key} must not be negative, got {getattr(self, key)}")
        if not 0 < self.sparsity_target < 1:
            raise CnnlabError(f"sparsity_target must be in (0, 1), got {self.sparsity_target}")
        if self.sparsity_l1 and self.sparsity_kl:
            raise CnnlabError("choose one sparsity penalty: sparsity_l1 or sparsity_kl")


@dataclass
class SegmentConfig:
    """A segmentation encoder-decoder (``cnnlab segment train``); saved in config.yaml under ``segment:``."""

    skips: bool = True                       # U-Net-style skip connections (False: a SegNet-style plain decoder)
    depth: int = 3                           # halvings of the image in the encoder: sides divisible by 2**depth
    width: int = 16                          # channels of the first stage (doubled at every halving)

    def validate(self) -> None:
        if not isinstance(self.skips, bool):
            raise CnnlabError(f"segment skips must be true or false, got {self.skips!r}")
        if not 1 <= self.depth <= 6:
            raise CnnlabError(f"segment depth must be an integer from 1 to 6, got {self.depth}")
        if not 1 <= self.width <= 256:
            raise CnnlabError(f"segment width must be an integer from 1 to 256, got {self.width}")


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
    autoencoder: AEConfig | None = None      # set by `cnnlab ae train`: train an autoencoder
    segment: SegmentConfig | None = None     # set by `cnnlab segment train`: per-pixel classes (masks)

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
        if self.autoencoder is not None:
            self.autoencoder.validate()
            if self.transfer is not None:
                raise CnnlabError("a run is either a transfer or an autoencoder, not both")
            if self.monitor != "val_loss":
                raise CnnlabError("an autoencoder monitors val_loss (it has no accuracy)")
        if self.segment is not None:
            self.segment.validate()
            if self.transfer is not None or self.autoencoder is not None:
                raise CnnlabError("a segmentation run is neither a transfer nor an autoencoder")
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
        for key, kind in (("transfer", TransferConfig), ("autoencoder", AEConfig),
                            ("segment", SegmentConfig)):
            section = values.get(key)
            if isinstance(section, dict):
                bad = sorted(set(section) - {f.name for f in fields(kind)})
                if bad:
                    raise CnnlabError(f"{source}: unknown {key} option(s) {', '.join(bad)}")
                values = {**values, key: kind(**section)}
            elif section is not None:
                raise CnnlabError(f"{source}: {key} must be a mapping of option: value")
        return cls(**values)

    def save(self, path: str | os.PathLike) -> None:
        from .._io import atomic_write_text

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
