"""Reading a run back: :meth:`Run.open` on a run directory or one of its checkpoint files, for every kind.

Every command that uses a trained run (evaluate, predict, transfer, the autoencoder and segmentation tools,
the report) reads it here. A checkpoint file means exactly what its run directory means: its data is split
with the run's own seed and fractions, and what a tool writes goes into the run directory, never into
``checkpoints/``. A checkpoint file copied out of its run still opens: its metadata says what it needs.
"""

from __future__ import annotations

import csv
import dataclasses
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .._io import make_dir, read_json_object
from .._options import check, like, option
from ..errors import CnnlabError, EmptySplitError, TrainingSplitWarning
from .checkpoint import load_weights, read_metadata
from .config import RunConfig
from .kinds import Kind, get_kind, list_kinds
from .precision import autocast, evaluation_precision
from .rundir import in_use, saved_config
from .setup import resolve_device


@dataclass
class EvalOptions:
    """How :meth:`Run.evaluate` runs (the ``evaluate`` commands take the same options)."""

    split: str = option("test", "which split (all: every image of the dataset, unsplit, e.g. a folder held out)",
                        choices=("test", "val", "train", "all"))
    batch_size: int = option(256, "images per forward pass", low=1, high=65_536)
    device: str = like(RunConfig, "device", "auto", help="where to run")


def _article(holds: str) -> str:
    """'a classifier', 'an autoencoder': what a checkpoint holds, from its kind's registration."""
    for name in list_kinds():
        if get_kind(name).holds == holds:
            return get_kind(name).article
    return f"a {holds}"


def _unfinished(path: Path, which: str, meta: dict, config: RunConfig, kind: Kind) -> str:
    """What reading a run without results.json reads: the checkpoint so far of a run still training, or the
    last one of a run that stopped."""
    epoch = f", epoch {meta['epoch']} of {config.epochs}" if isinstance(meta.get("epoch"), int) else ""
    if in_use(path):
        return (f"'{path}' is still training (another cnnlab process is writing it): this reads its {which} "
                f"checkpoint so far{epoch}")
    return (f"'{path}' did not finish (no results.json): this reads its {which} checkpoint{epoch}; "
            f"{kind.command} --resume {path} finishes it")


class Run:
    """A trained run: its configuration, metadata, history and results, and from them its model, its data
    (split and prepared as the run saw it) and its evaluation.

    >>> run = Run.open("runs/lenet5-digits-20261125-101500")           # doctest: +SKIP
    >>> run.evaluate("test")["accuracy"]                               # doctest: +SKIP
    """

    def __init__(self, path: Path | None, file: Path, meta: dict, config: RunConfig | None, kind: Kind) -> None:
        self.path = path            # the run directory (None for a checkpoint file outside one)
        self.file = file            # the weights file this Run's model comes from
        self.meta = meta
        self.config = config
        self.kind = kind

    @classmethod
    def open(cls, path: str | Path, checkpoint: str | None = None, holds: str | None = None) -> Run:
        """Open a run directory (its weights: ``checkpoint`` ``best`` or ``last``, by default those its results
        came from) or a checkpoint file. With ``holds`` (``classifier``, ``autoencoder``, ...), a run that holds
        another kind of model is a one-line error."""
        if holds is not None and holds not in {get_kind(k).holds for k in list_kinds()}:
            raise CnnlabError(f"holds must be one of {', '.join(sorted({get_kind(k).holds for k in list_kinds()}))}, "
                              f"got {holds!r}")
        p = Path(path).expanduser()
        if not p.exists():
            raise CnnlabError(f"run directory or checkpoint '{path}' does not exist")
        if checkpoint not in (None, "best", "last"):
            raise CnnlabError(f"checkpoint must be best or last, got {checkpoint!r}")
        if p.is_dir():
            config = saved_config(p)  # (an experiment directory: one line naming its runs)
            saved = cls._json(p / "results.json").get("checkpoint")
            if saved not in (None, "best", "last"):
                raise CnnlabError(f"'{p / 'results.json'}' names the checkpoint {saved!r}, not best or last; the run "
                                  f"directory is damaged: delete that file and finish the run again with --resume")
            which = checkpoint or saved or ("best" if config.early_stopping else "last")  # those the results came from
            file = p / "checkpoints" / f"{which}.safetensors"
            meta = read_metadata(file) if file.is_file() else cls._json(p / "meta.json")
            run_dir = p
        else:
            if checkpoint is not None:
                raise CnnlabError(f"'{path}' is a checkpoint file; --checkpoint applies to a run directory")
            file, meta = p, read_metadata(p)
            if "kind" not in meta and "model" not in meta:
                raise CnnlabError(f"'{path}' has no cnnlab metadata; is it a cnnlab checkpoint?")
            run_dir = p.parent.parent if p.parent.name == "checkpoints" and \
                (p.parent.parent / "config.yaml").is_file() else None
            config = saved_config(run_dir) if run_dir else None
        where = file if file.is_file() else run_dir / "meta.json"
        if not isinstance(meta, dict) or not meta:
            what = "" if isinstance(meta, dict) else " (not a JSON object)"
            raise CnnlabError(f"'{where}' has no cnnlab metadata{what}; is it a cnnlab checkpoint?")
        kind = get_kind(config.run_kind if config is not None else meta.get("kind", "classifier"))
        if config is not None and meta.get("kind", kind.holds) != kind.holds:  # another run's checkpoint
            raise CnnlabError(f"'{where}' holds {_article(str(meta['kind']))}, but '{run_dir}' is {kind.article} "
                              f"run (its config.yaml): the file is another run's; put this run's own back")
        if holds is not None and kind.holds != holds:  # the tool's own question first: the wrong kind of run
            raise CnnlabError(f"'{path}' holds {kind.article}, not {_article(holds)}; use {kind.tools} on it")
        kind.check_meta(meta, str(where))
        run = cls(run_dir, file, meta, config, kind)
        if p.is_dir() and file.is_file() and run.unfinished:
            warnings.warn(run.unfinished, stacklevel=2)
        return run

    @staticmethod
    def _json(path: Path) -> dict:
        return read_json_object(path, "the run directory is damaged")

    # --- what the run directory holds ---------------------------------------------------------------------
    @cached_property
    def results(self) -> dict:
        """results.json (empty until the run has finished)."""
        results = self._json(self.path / "results.json") if self.path else {}
        if not isinstance(results.get("test", {}), dict):
            raise CnnlabError(f"'{self.path / 'results.json'}' has no table of test metrics under 'test'; the run "
                              f"directory is damaged: delete that file and finish the run again with "
                              f"{self.kind.command} --resume {self.path}")
        return results

    @cached_property
    def sessions(self) -> list[dict[str, Any]]:
        """meta.json's record of the sessions the run trained in (the epoch each began at, its device, precision
        and memory layout), oldest first; ``meta`` is the checkpoint's, which may be older (the best epoch's).
        Empty for a checkpoint file."""
        if self.path is None:
            return []
        return read_json_object(self.path / "meta.json", "the run directory is damaged; delete that file to read the "
                                "run without its record of the sessions it trained in").get("sessions", [])

    @cached_property
    def history(self) -> list[dict[str, Any]]:
        """metrics.csv: one record per epoch, numbers as numbers."""
        if self.path is None or not (self.path / "metrics.csv").is_file():
            return []
        path = self.path / "metrics.csv"
        fix = "the run directory is damaged; delete that file to read the run without its per-epoch record"
        try:
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
        except (UnicodeDecodeError, csv.Error) as e:
            raise CnnlabError(f"'{path}' is not a readable CSV table ({e}); {fix}") from None
        header, *rows = rows or [[]]
        for line, row in enumerate(rows, 2):
            if row and len(row) != len(header):  # a row cut short (a full disk) or run on (a blank line is none)
                raise CnnlabError(f"'{path}' line {line} has {len(row)} values where its header names "
                                  f"{len(header)}; {fix}")
        return [{k: _number(v) for k, v in zip(header, row, strict=True)} for row in rows if row]

    @cached_property
    def unfinished(self) -> str | None:
        """None for a finished run (its results.json written), else what reading it reads, in one sentence:
        the checkpoint so far of a run still training, or the last one of a run that stopped."""
        if self.path is None or (self.path / "results.json").is_file():
            return None
        return _unfinished(self.path, self.file.stem, self.meta, self.config, self.kind)

    def result_rows(self) -> list[tuple[str, str]]:
        """The test results as (name, value) rows in the run's kind's words (``test accuracy``, ``98.15%``) and
        the number of test images; none before the run has finished."""
        test = self.results.get("test")
        if not test:
            return []
        count = [("test images", f"{test['count']:,}")] if isinstance(test.get("count"), int) else []
        return [*self.kind.result_rows(test), *count]

    def related(self) -> list[tuple[str, Path]]:
        """Other pages a reader of this run's report wants: ``(what, its report.html)`` for the experiment the
        run is part of (``EXPERIMENT/runs/NAME``), the runs it holds (an incremental run's naive baseline in
        ``naive/``) and the run that holds it. The page of a run or experiment that holds this one is written
        after this one's: it is named before it exists."""
        if self.path is None:
            return []
        here, found = self.path.resolve(), []
        above = here.parent
        if above.name == "runs" and (above.parent / "experiment.json").is_file():
            found.append((f"the experiment it is part of ({above.parent.name})", above.parent / "report.html"))
        if (above / "config.yaml").is_file():
            found.append((f"the run it is part of ({above.name})", above / "report.html"))
        return found + [(f"the run it holds: {d.name}", d / "report.html") for d in sorted(here.iterdir())
                        if d.is_dir() and (d / "config.yaml").is_file()]

    @property
    def name(self) -> str:
        return self.meta.get("name") or self.meta.get("model") or self.kind.name

    @property
    def title(self) -> str:
        return f"{self.name} on {self.meta.get('data', '?')}"

    def plots(self) -> list[Path]:
        folder = self.path / "plots" if self.path else None
        if not folder or not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix in (".png", ".svg"))

    def sections(self) -> list:
        """What the run's report shows besides its results, plots and configuration (its kind decides)."""
        return self.kind.report_sections(self)

    def output_dir(self, command: str, out: str | Path | None = None) -> Path:
        """Where a tool writes its files: ``out``, else ``RUN/<command>`` (beside ``checkpoints/``, never in
        it); created, or a one-line error (removed again, if still empty, when the command fails)."""
        if out is not None:
            return make_dir(out, "output directory", "--out", output=True)
        base = self.path if self.path is not None else self.file.parent
        return make_dir(base / command, "output directory", "--out", output=True)

    # --- the model, the data, the evaluation ---------------------------------------------------------------
    @cached_property
    def model(self):
        """The model with the run's weights, in eval mode, on the CPU."""
        if not self.file.is_file():
            trained = self.path is not None and (self.path / "metrics.csv").is_file()
            raise CnnlabError(f"'{self.path}' has no checkpoint {self.file.name}" + (
                ": it trained epochs (metrics.csv), but that file is gone from checkpoints/" if trained else
                ": the run completed no epoch"))
        state, meta = load_weights(self.file)
        model = self.kind.build_model(meta)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise CnnlabError(f"checkpoint '{self.file}' does not fit {self.name}: "
                              f"{str(e).splitlines()[-1].strip()}") from None
        return model.eval()

    @property
    def split(self) -> dict[str, Any]:
        """The seed and fractions the run split its data with."""
        if "split" in self.meta:
            return dict(self.meta["split"])
        c = self.config or RunConfig()
        return {"seed": c.seed, "val_fraction": c.val_fraction, "test_fraction": c.test_fraction}

    def dataset(self, spec: str | None = None, quiet: bool = False, whole: bool = False):
        """The run's dataset (or ``spec``), loaded, sized and split as the run did its own (``whole``: with no
        validation or test split drawn); ``quiet``: without the warnings loading it gives (skipped files: a report
        reading the data again has nothing new to say)."""
        from ..data import load_dataset

        split = {**self.split, "val_fraction": 0.0, "test_fraction": 0.0} if whole else self.split
        split["image_size"] = getattr(self.config, "image_size", None)  # folders decoded as the run decoded them
        split["budget"] = not whole  # every image once: a label budget would keep a few of the training split's
        if not quiet:
            return load_dataset(spec or self.meta["data"], **split)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_dataset(spec or self.meta["data"], **split)

    def sample(self, n: int, split: str = "test"):
        """The first ``n`` images of a split of the run's data, prepared as its model sees them (the other
        splits empty), for pictures: the rest of the dataset is not resized. In-memory data only."""
        import torch

        from ..data.streaming import StreamingData

        data = self.dataset(quiet=True)
        if isinstance(data, StreamingData):
            raise CnnlabError(f"'{data.name}' is streamed from disk; read a sample of it with its loader")
        part = data.splits()[split]
        first = part.subset(torch.arange(min(n, len(part))))
        empty = first.subset(torch.arange(0))
        return self.kind.prepare(self, dataclasses.replace(data, train=first if split == "train" else empty,
                                                           val=first if split == "val" else empty,
                                                           test=first if split == "test" else empty))

    def data(self, spec: str | None = None, whole: bool = False):
        """The run's dataset (or ``spec``) split as the run split it (``whole``: not split, every image in its
        training split, as a dataset with its own test set keeps it) and prepared as its model sees images;
        a dataset with other classes or channels is a one-line error. What loading says about the training split
        (a short label budget) was said when the run trained, and is not repeated."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrainingSplitWarning)
            return self.kind.prepare(self, self.dataset(spec, whole=whole))

    def evaluate(self, split: str = "test", data: str | None = None, batch_size: int = 256,
                 device: str = "auto") -> dict:
        """The kind's metrics of the model on a split of the run's data (or of ``data``, a dataset spec), in the
        precision the run trained and tested in where ``device`` has it (so that the test split's metrics are
        results.json's)."""
        check(EvalOptions(split, batch_size, device))
        where = resolve_device(device)
        try:
            with autocast(where, evaluation_precision(self.meta.get("precision", "fp32"), where)):
                return self.kind.evaluate(self, self.data(data, whole=split == "all"), split, batch_size, where)
        except EmptySplitError as e:
            if data is None or split == "all":
                raise
            raise EmptySplitError(f"{e}; or evaluate all its images (--split all)") from None
        finally:
            self.model.to("cpu")  # the model the other readers use stays on the CPU


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value
