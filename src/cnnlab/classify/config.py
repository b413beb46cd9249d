"""The configuration of a classifier run (``cnnlab train``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .._options import option
from ..errors import CnnlabError
from ..train import RunConfig


@dataclass
class ClassifierConfig(RunConfig):
    """A classifier of the zoo trained on a dataset; every option of ``cnnlab train``."""

    model_required: ClassVar[bool] = True

    model: str | None = option("lenet5", "architecture, from 'cnnlab models'", metavar="NAME", fixed=True)
    model_kwargs: dict[str, Any] = option({}, "arguments of the model builder, e.g. {small_input: true}",
                                          cli=False, fixed=True)
    init: str | None = option(None, "weight-init scheme, e.g. kaiming_normal or normal:std=0.02", metavar="SCHEME",
                              fixed=True)
    loss: str = option("auto", "the loss: ce is softmax cross-entropy, bce binary cross-entropy on one sigmoid "
                                       "output; auto is bce for two classes, else ce",
                       choices=("auto", "ce", "bce"), fixed=True)
    label_smoothing: float = option(0.1, "label smoothing of the targets", low=0, below=1)
    dropout: float | None = option(None, "override the model's dropout rate", low=0, below=1)
    aux_weight: float = option(0.3, "weight of the auxiliary classifiers' losses (GoogLeNet, Inception v3)", low=0,
                               high=10)

    @property
    def name(self) -> str:
        return self.model or "classifier"

    def validate(self, name=lambda key: key) -> ClassifierConfig:
        super().validate(name)
        if self.model is None and self.model_required:
            raise CnnlabError(f"{name('model')} is needed: choose an architecture from 'cnnlab models'")
        if not all(isinstance(k, str) for k in self.model_kwargs):
            raise CnnlabError(f"{name('model_kwargs')} must map argument names to values")
        return self
