"""The configuration of a classifier run (``cnnlab train``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .._options import like, option
from ..data import train_defaults
from ..errors import CnnlabError
from ..models import check_model_arguments, list_models
from ..train import RunConfig

# The options a dataset's training defaults may set (``cnnlab.data.train_defaults``): they go together (the
# learning rate suits the batch size, the epochs the augmentation), so a run takes a dataset's set only when it
# sets none of them itself, and RunConfig's general defaults otherwise.
DATA_DEFAULTED = ("epochs", "batch_size", "lr", "augment")


def _data_defaulted(key: str) -> Any:
    """RunConfig's option ``key``, left unset (None) until the run starts: see :meth:`ClassifierConfig.resolved`."""
    def shown(value: Any) -> str:
        return ("on" if value else "off") if isinstance(value, bool) else f"{value:g}"

    data = RunConfig.data  # the default dataset's value, as the example
    own = train_defaults(data)
    example = f" ({data}: {shown(own[key])})" if key in own else ""
    return like(RunConfig, key, None, unset=f"{shown(getattr(RunConfig, key))}, or the dataset's own{example} when "
                                            f"none of --epochs, --batch-size, --lr, --augment is given")


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
    epochs: int | None = _data_defaulted("epochs")
    batch_size: int | None = _data_defaulted("batch_size")
    lr: float | None = _data_defaulted("lr")
    augment: bool | None = _data_defaulted("augment")

    @property
    def name(self) -> str:
        return self.model or "classifier"

    def resolved(self, saved: RunConfig | None = None) -> ClassifierConfig:
        """This config with the options of DATA_DEFAULTED that it leaves unset filled in: from ``saved`` (the
        config of the run being continued), else with the dataset's training defaults when it sets none of them
        (``cnnlab.data.train_defaults``), else with RunConfig's general ones."""
        unset = [k for k in DATA_DEFAULTED if getattr(self, k) is None]
        if not unset:
            return self
        if saved is not None:
            return self.replace(**{k: getattr(saved, k, None) for k in unset}).resolved()
        own = train_defaults(self.data) if len(unset) == len(DATA_DEFAULTED) else {}
        if set(own) - set(DATA_DEFAULTED):  # a dataset's registration names an option it may not set
            raise ValueError(f"the training defaults of '{self.data}' set {sorted(set(own) - set(DATA_DEFAULTED))}; "
                             f"a dataset may set only {', '.join(DATA_DEFAULTED)}")
        return self.replace(**{k: own.get(k, getattr(RunConfig, k)) for k in unset})

    def validate(self, name=lambda key: key) -> ClassifierConfig:
        super().validate(name)
        if self.model is None and self.model_required:
            raise CnnlabError(f"{name('model')} is needed: choose an architecture from 'cnnlab models'")
        if not all(isinstance(k, str) for k in self.model_kwargs):
            raise CnnlabError(f"{name('model_kwargs')} must map argument names to values")
        if self.model is not None:
            check_model_arguments(self.model, **self.model_kwargs)  # before the data loads
        return self

    def check_read(self, source: str) -> ClassifierConfig:
        # a model's arguments, with the file named; an unknown model waits for validate (a placeholder in a file
        # from before kinds of run; a model a script registers after reading the file)
        if self.model in list_models() and isinstance(self.model_kwargs, dict) and \
                all(isinstance(k, str) for k in self.model_kwargs):
            try:
                check_model_arguments(self.model, **self.model_kwargs)
            except CnnlabError as e:
                raise CnnlabError(f"{source}: {e}") from None
        return self
