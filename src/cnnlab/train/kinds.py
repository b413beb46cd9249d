"""Kinds of run: a classifier, a transfer, an autoencoder, a segmentation network, ... each a package of its
own that registers a :class:`Kind` here. The engine knows only this interface, never which kinds exist: a
new kind of run is one new package, and no edit of the engine."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import CnnlabError


class Kind:
    """A kind of run: its config class, the recipe that trains it, and how a run of it is read back
    (:class:`cnnlab.train.Run` asks its kind for the model, the data and the evaluation)."""

    name: ClassVar[str]      # written as `run_kind:` in config.yaml
    config: ClassVar[type]   # its RunConfig subclass
    holds: ClassVar[str]     # what its checkpoints hold, as meta.json says: classifier, autoencoder, ...
    article: ClassVar[str]   # that in words: 'a classifier', 'an autoencoder'
    command: ClassVar[str]   # the command that trains (and resumes) it: 'cnnlab train'
    tools: ClassVar[str]     # the commands that use a trained run of it: 'cnnlab evaluate, predict'
    legacy_section: ClassVar[str | None] = None  # its section in config files from before kinds (autoencoder:)
    recipe_class: ClassVar[type]  # the Recipe that trains it
    meta_keys: ClassVar[dict[str, type]] = {"data": str}  # what its checkpoints' metadata must hold, of what type

    def check_meta(self, meta: dict, where: str) -> None:
        """One line, not a traceback later, where ``meta`` (a checkpoint's metadata, read from ``where``) lacks
        what reading a run of this kind needs (:attr:`meta_keys`): a file damaged, edited, or not a cnnlab
        checkpoint."""
        for key, kind in self.meta_keys.items():
            if not isinstance(meta.get(key), kind):
                got = "none" if key not in meta else f"a {type(meta[key]).__name__}"
                raise CnnlabError(f"the metadata of '{where}' has {got} as its '{key}' where {self.article} run's "
                                  f"checkpoint has a {kind.__name__}: the file is damaged or not such a checkpoint")

    def recipe(self):
        """A new :class:`~cnnlab.train.Recipe` that trains a run of this kind."""
        return self.recipe_class()

    # --- reading a run back (cnnlab.train.Run) ----------------------------------------------------------
    def build_model(self, meta: dict):
        """A model of the architecture ``meta`` (a checkpoint's metadata) describes, with random weights."""
        raise NotImplementedError

    def prepare(self, run, data) -> Any:
        """``data`` (loaded and split as the run was) made as the model saw it: resized, normalised; checked
        against the run's classes and channels."""
        raise NotImplementedError

    def evaluate(self, run, data, split: str, batch_size: int, device) -> dict:
        """The metrics of the run's model on a split of prepared ``data``."""
        raise NotImplementedError

    def explain_subject(self, run):
        """The run's network as :mod:`cnnlab.explain` shows it (a :class:`cnnlab.explain.views.Subject`)."""
        raise CnnlabError(f"{self.article} run has no views to explain it yet")

    def report_sections(self, run) -> list:
        """What the run's report shows besides its results, curves and configuration
        (:class:`cnnlab.report.Section` objects)."""
        return []

    def export_parts(self, run) -> dict[str, tuple[Any, tuple[int, ...]]]:
        """What ``cnnlab export`` writes: part name -> (module taking one batch tensor and returning one tensor,
        the shape of one input without the batch dimension)."""
        raise CnnlabError(f"{self.article} run cannot be exported yet")

    def result_rows(self, test: dict) -> list[tuple[str, str]]:
        """The test metrics a finished training run shows, as (name, value) rows."""
        return [(f"test {k}", f"{v:.4f}") for k, v in test.items() if isinstance(v, float)]


_kinds: dict[str, Kind] = {}


def register_kind(cls: type[Kind]) -> type[Kind]:
    """Class decorator: register a kind under ``cls.name`` (a second kind of that name is refused)."""
    if cls.name in _kinds:
        raise ValueError(f"a kind of run named '{cls.name}' is already registered")
    cls.config.run_kind = cls.name
    _kinds[cls.name] = cls()
    return cls


def get_kind(name: str) -> Kind:
    if name not in _kinds:
        known = ", ".join(sorted(_kinds)) or "none"
        raise CnnlabError(f"no kind of run named '{name}' (known: {known})")
    return _kinds[name]


def list_kinds() -> list[str]:
    return list(_kinds)
