"""The configuration of a transfer run (``cnnlab transfer``): a classifier's options and where it starts from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .._io import absolute_path
from .._options import like, option
from ..classify import ClassifierConfig
from ..errors import CnnlabError
from ..train import RunConfig

MODES = ("feature-extraction", "fine-tune", "partial", "incremental")


@dataclass
class TransferConfig(ClassifierConfig):
    """A classifier that starts from a trained model; the architecture comes from the source."""

    model_required: ClassVar[bool] = False  # a cnnlab source names it (TransferRecipe.prepare)

    model: str | None = option(None, "architecture (default: the source's; needed for a torchvision file)",
                               metavar="NAME", fixed=True)
    source: str = option("", "a cnnlab run directory or checkpoint, or a torchvision weights file (needs --model)",
                         flag="--from", metavar="SOURCE", fixed=True)
    mode: str = option("fine-tune", "how to transfer", choices=MODES, fixed=True)
    backbone_lr: float = option(0.1, "backbone learning rate = --lr x this", low=0, high=10,
                                applies=("mode", ("fine-tune", "partial", "incremental")))
    head_epochs: int = option(0, "fine-tune warm start: train only the head for this many epochs first", low=0,
                              high=100_000, applies=("mode", ("fine-tune",)), fixed=True)
    freeze_stages: int = option(2, "partial: freeze the first K stages (see 'cnnlab summary MODEL')", low=0,
                                high=100, applies=("mode", ("partial",)), fixed=True)
    bn: str = option("frozen", "batch norm of trainable backbone layers: frozen keeps the source's statistics, "
                               "train follows the target's batches", choices=("frozen", "train"),
                     applies=("mode", ("fine-tune", "partial", "incremental")), fixed=True)
    cache: str = option("auto", "feature-extraction: where the frozen backbone's features are cached (auto: in "
                                "memory, on disk above 2 GiB; off: the backbone runs every epoch)",
                        choices=("auto", "memory", "disk", "off"), applies=("mode", ("feature-extraction",)))
    adapt_channels: str = option("auto", "first convolution for other image channels: sum (RGB to gray), "
                                         "repeat (gray to RGB), auto (whichever fits)",
                                 choices=("auto", "sum", "repeat"), fixed=True)
    memory: int = option(20, "incremental: rehearsal exemplars kept per old class (0: none)", low=0,
                         high=1_000_000, applies=("mode", ("incremental",)), fixed=True)
    distill: float = option(0.0, "incremental: weight of distillation from the old model (0: none)", low=0,
                            high=100, applies=("mode", ("incremental",)), fixed=True)
    compare_naive: bool = option(True, "incremental: also train without mitigation, in RUN/naive, and compare",
                                 applies=("mode", ("incremental",)))
    # the general defaults: a dataset's training defaults were measured training a classifier from scratch
    epochs: int = like(RunConfig, "epochs", RunConfig.epochs)
    batch_size: int = like(RunConfig, "batch_size", RunConfig.batch_size)
    lr: float = like(RunConfig, "lr", RunConfig.lr)
    augment: bool = like(RunConfig, "augment", RunConfig.augment)

    @property
    def name(self) -> str:
        return self.model or "transfer"

    def located(self) -> TransferConfig:
        return super().located().replace(source=absolute_path(self.source)) if self.source else super().located()

    def validate(self, name=lambda key: key) -> TransferConfig:
        if not self.source:
            raise CnnlabError("a transfer needs a source: --from RUN_DIR, CHECKPOINT or WEIGHTS_FILE")
        super().validate(name)
        if self.head_epochs and self.mode == "fine-tune" and self.head_epochs >= self.epochs:  # else: ignored
            raise CnnlabError(f"{name('head_epochs')} ({self.head_epochs}) must be fewer than {name('epochs')} "
                              f"({self.epochs})")
        return self
