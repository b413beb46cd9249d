"""The configuration of a run: one typed, flat record, saved as ``config.yaml`` in every run directory.

:class:`RunConfig` holds what every run has (data, optimisation, how to run); each kind of run subclasses it
with its own fields (:class:`cnnlab.classify.ClassifierConfig`, :class:`cnnlab.ae.AEConfig`, ...), so a run
carries exactly the options it uses. Every field declares its help, choices and range beside it
(:func:`cnnlab._options.option`): the command line, the config file and the Python API are checked by the
same rules and can never disagree on names or defaults.

A saved config is reusable as it is (``cnnlab train --config runs/x/config.yaml``): options given on the
command line override the file, which overrides the defaults.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import yaml

from .._io import atomic_write_text, existing_file
from .._machine import available_cores
from .._options import applies, check, from_mapping, option, specs
from ..data import absolute_spec
from ..errors import CnnlabError
from .kinds import get_kind, list_kinds

_DEVICE = r"auto|cpu|mps|cuda(:\d+)?"


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice (plain YAML lets the last one win, silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} appears twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


@dataclass
class RunConfig:
    """What every run has. A kind of run subclasses it and registers itself (:func:`register_kind`)."""

    run_kind: ClassVar[str] = ""  # the registered kind's name, written first in config.yaml

    # data
    data: str = option("digits", "dataset spec from 'cnnlab datasets', e.g. digits, shapes:size=64, folder:PATH",
                       metavar="SPEC", fixed=True)
    image_size: int | None = option(None, "resize images to this side, by default to what the model needs", low=1,
                                    high=4096, fixed=True)
    val_fraction: float = option(0.15, "share of the data held out for validation", above=0, below=1, fixed=True)
    test_fraction: float = option(0.15, "share held out for testing; a dataset with its own test split keeps it",
                                  above=0, below=1, fixed=True)
    # optimisation
    epochs: int = option(40, "epochs to train; with --resume, the new total", low=1, high=100_000)
    batch_size: int = option(32, "images per optimiser step", low=1, high=65_536)
    lr: float = option(3e-3, "peak learning rate, after warm-up", above=0, high=10)
    # fixed: a run's optimiser state (Adam's moments, SGD's momentum buffers) does not carry over to another one
    optimizer: str = option("adam", "the optimiser", choices=("sgd", "adam", "adamw"), fixed=True)
    momentum: float = option(0.9, "SGD momentum", low=0, below=1, applies=("optimizer", ("sgd",)))
    nesterov: bool = option(False, "Nesterov momentum, with SGD", applies=("optimizer", ("sgd",)))
    weight_decay: float = option(0.0, "the optimiser's weight decay, decoupled for adamw", low=0, high=1)
    l1: float = option(0.0, "L1 penalty on conv/linear weights, added to the loss", low=0, high=1)
    l2: float = option(0.0, "L2 penalty on conv/linear weights, added to the loss", low=0, high=1)
    scheduler: str = option("cosine", "learning-rate schedule", choices=("none", "step", "cosine", "onecycle"))
    warmup_epochs: float = option(0.0, "linear warm-up epochs", low=0, high=100_000)
    step_size: int = option(10, "step schedule: epochs between decays", low=1, high=100_000,
                            applies=("scheduler", ("step",)))
    gamma: float = option(0.1, "step schedule: decay factor", above=0, high=1, applies=("scheduler", ("step",)))
    grad_clip: float | None = option(None, "clip the gradient norm to this", above=0, high=1e6)
    # regularisation
    augment: bool = option(True, "random crop, and flip where it keeps the meaning, while training")
    early_stopping: int = option(0, "stop after this many epochs without improvement, keeping the best "
                                    "weights; 0: off", low=0, high=100_000)
    monitor: str = option("val_loss", "what early stopping and the best checkpoint follow",
                          choices=("val_loss", "val_acc"), fixed=True)
    # run
    seed: int = option(0, "random seed", low=0, high=2**32 - 1, fixed=True)
    device: str = option("auto", "where to train", pattern=_DEVICE, shown="one of auto, cpu, cuda, cuda:N, mps",
                         metavar="NAME")
    precision: str = option("auto", "autocast precision; auto: bf16 (or fp16) on a CUDA GPU; on a CPU with native "
                                    "bf16, bf16 if the run's step measures 1.2x faster in it; fp32 elsewhere. bf16 or "
                                    "fp16 on a CPU without their units is refused",
                            choices=("auto", "fp32", "bf16", "fp16"))
    channels_last: bool | None = option(None, "channels-last memory format",
                                        unset="on a CPU for the models measured faster with it (the ch-last "
                                              "column of `cnnlab models`)")
    compile: bool = option(False, "torch.compile the model")
    deterministic: bool = option(False, "deterministic algorithms, for an exact resume")
    threads: int | None = option(None, "CPU threads, at most the cores available; by default PyTorch's choice", low=1,
                                 high=4096)
    quiet: bool = option(False, "no progress bar or per-epoch lines", session=True)
    tensorboard: bool = option(False, "log to RUN_DIR/tensorboard")
    run_dir: str | None = option(None, "where to write the run; by default runs/<name>-<data>-<time>", metavar="DIR",
                                 pattern=r"(?s).*\S.*", shown="a directory", fixed=True)

    @property
    def name(self) -> str:
        """What the run trains, in a word (its directory's name starts with it)."""
        return self.run_kind or "run"

    def validate(self, name=lambda key: key) -> RunConfig:
        """Check every value against its declaration, then the rules that tie options together; a problem is
        one :class:`CnnlabError` line naming the option as ``name(key)`` does."""
        check(self, name)
        if self.val_fraction + self.test_fraction >= 1:
            raise CnnlabError(f"{name('val_fraction')} and {name('test_fraction')} must leave images to train on "
                              f"(they sum to {self.val_fraction + self.test_fraction:g})")
        if self.warmup_epochs and self.epochs is not None and self.warmup_epochs >= self.epochs:
            raise CnnlabError(f"{name('warmup_epochs')} ({self.warmup_epochs:g}) must be fewer than "
                              f"{name('epochs')} ({self.epochs})")
        if self.warmup_epochs and self.scheduler == "onecycle":
            raise CnnlabError(f"the onecycle schedule has its own warm-up; drop {name('warmup_epochs')}")
        if self.threads is not None and self.threads > available_cores():  # this machine's, not the run's
            raise CnnlabError(f"{name('threads')} must be at most the {available_cores()} CPU cores this process "
                              f"may use, got {self.threads}")
        return self

    def located(self) -> RunConfig:
        """This config with the paths it names made absolute where they exist (``folder:imgs`` ->
        ``folder:/home/me/imgs``): a run's config.yaml then finds them from any working directory."""
        return self.replace(data=absolute_spec(self.data)) if self.data else self

    def defining_changes(self, saved: RunConfig) -> list[str]:
        """The options that define a run (declared ``fixed``: its data, split, seed, model, ...) on which this
        config differs from ``saved``, the run's own; continuing a run may change none of them. Paths compare
        as the places they name (``folder:imgs`` is ``folder:/home/me/imgs`` when run from ``/home/me``)."""
        mine, theirs = self.located(), saved.located()
        return [s.name for s in specs(type(self)) if s.meta.get("fixed") and s.name != "run_dir"
                and getattr(mine, s.name) != getattr(theirs, s.name, None)
                and (type(theirs) is not type(mine) or applies(theirs, s.name))]  # one it ignores: warned, dropped

    def to_dict(self) -> dict[str, Any]:
        return {"run_kind": self.run_kind, **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> RunConfig:
        """A config from a mapping (a config file's): the ``run_kind`` key picks the class when ``cls`` is
        :class:`RunConfig`; a concrete class refuses another kind's file."""
        values = dict(values)
        kind = values.pop("run_kind", None)
        if kind is None:
            kind, values = _before_kinds(values)
        if not isinstance(kind, str):
            raise CnnlabError(f"{source}: run_kind must be the name of a kind of run, got {kind!r}")
        target = get_kind(kind).config
        if cls is not RunConfig and not issubclass(target, cls):
            raise CnnlabError(f"{source} configures a {kind} run, not a {cls.run_kind} run")
        return from_mapping(target, values, source).check_read(source)

    def check_read(self, source: str) -> RunConfig:
        """What a kind checks of a config as it is read (a config file, ``source``), beyond each option's type, with
        ``source`` named in its errors; the rest waits for :meth:`validate`, once a command line has added its
        options."""
        return self

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunConfig:
        """Read a config.yaml (of this class's kind, or of any registered kind from :class:`RunConfig`)."""
        p = existing_file(path, "config file")
        try:
            values = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeys) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            mark = getattr(e, "problem_mark", None)
            if getattr(e, "problem", None) and mark is not None:  # what is wrong and where, not what was parsed
                first = f"{e.problem} (line {mark.line + 1}, column {mark.column + 1})"
            else:
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CnnlabError(f"config file '{path}' is not valid YAML: {first}") from None
        if not isinstance(values, dict):
            raise CnnlabError(f"config file '{path}' must hold a mapping of option: value")
        return cls.from_dict(values, f"config file '{path}'")

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def resolved(self, saved: RunConfig | None = None) -> RunConfig:
        """This config with what it leaves to the run (options a kind leaves unset until then, e.g. a
        classifier's dataset-dependent defaults) filled in; ``saved``, the config of a run being continued,
        fills them first. A run starts from the resolved config; config.yaml records it."""
        return self


def _before_kinds(values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A config.yaml written before kinds of run existed: one flat classifier config with a section per other
    kind (``autoencoder: {...}``, the unused ones null). Its kind is the section that is set (a kind names it as
    ``legacy_section``), and its options are that section's and the shared ones; the placeholders such a file
    carried for options its kind does not have (a model name for an autoencoder) are dropped."""
    sections = {get_kind(n).legacy_section: n for n in list_kinds() if get_kind(n).legacy_section}
    if not any(k in values for k in sections):  # a classifier's file, as one writes it by hand
        return "classifier", values
    section = next((k for k in sections if isinstance(values.get(k), dict)), None)
    kind = sections[section] if section else "classifier"
    flat = {k: v for k, v in values.items() if k not in sections} | (values[section] if section else {})
    known = {f.name for f in dataclasses.fields(get_kind(kind).config)}
    return kind, {k: v for k, v in flat.items() if k in known}
