"""What every experiment shares: its directory, its settings, and runs that survive an interruption.

```
runs/experiment-<name>-<time>/
  experiment.json   the experiment's name and settings (what --resume continues)
  runs/<run>/       one run directory per trained run (model_a/ for a source model)
  results.csv       one row per run
  summary.json      the settings and one row per group (mean and spread over seeds)
  table.txt         the summary as a text table
  *.png             the plots
  report.html       all of it on one page, with a link to each run's own report
```

An experiment that stops (Ctrl-C, a kill, a crash) continues with ``--resume DIR``: finished runs are read
back, a run with a checkpoint continues from it, and the rest train.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .._io import absolute_path, atomic_write_json, atomic_write_text, existing_dir, make_dir, read_json_object
from .._options import check, from_mapping, like
from ..data import absolute_spec
from ..errors import CnnlabError
from ..report import Table, write_study_report
from ..train import EpochEnd, Recipe, Run, RunConfig, distributed, fit
from ..train.precision import resolve_precision
from ..train.rundir import lock_dir, unlock_dir
from ..train.setup import resolve_device


class Study:
    """An experiment's directory."""

    def __init__(self, name: str, path: Path, settings: Any, resumable: bool = True) -> None:
        self.name, self.path, self.settings, self.resumable = name, path, settings, resumable
        self._lock = lock_dir(path, "experiment directory")  # released when the ``with`` block ends

    @classmethod
    def create(cls, name: str, settings: Any, run_dir: str | Path | None = None, resumable: bool = True) -> Study:
        """A new experiment directory (``run_dir``, new or empty; default ``runs/experiment-NAME-<time>``);
        ``resumable``: whether ``--resume`` can continue it (an experiment that trains nothing cannot)."""
        _one_process(name)
        check(settings, lambda key: "--" + key.replace("_", "-"))
        path = Path(run_dir).expanduser() if run_dir else \
            Path("runs") / f"experiment-{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if path.exists() and not path.is_dir():
            make_dir(path, "experiment directory", "--run-dir")  # one line: it is a file
        if path.exists() and any(path.iterdir()):
            hint = f"; continue it with --resume {path}" if _resumable(path) else ""
            raise CnnlabError(f"experiment directory '{path}' already exists and is not empty; choose another "
                              f"--run-dir{hint}")
        make_dir(path, "experiment directory", "--run-dir")
        atomic_write_json(path / "experiment.json", {"experiment": name, "settings": dataclasses.asdict(settings),
                                                     "resumable": resumable})
        return cls(name, path, settings, resumable)

    @classmethod
    def begin(cls, name: str, settings_class: type, settings: Any = None, run_dir: str | Path | None = None,
              resume: str | Path | None = None, validate: Callable[[Any], object] | None = None) -> Study:
        """What every ``run_*_experiment`` starts with: the experiment in ``resume``, with its saved settings, or a
        new directory for ``settings`` (default: ``settings_class()``) once they are checked and ``validate``
        has passed them (a dataset spec read, a model built), so that settings that cannot run create
        nothing."""
        _one_process(name)  # before the settings are checked: no use checking them under torchrun
        if resume is not None:
            return cls.resume(name, settings_class, resume)
        settings = settings or settings_class()
        check(settings, lambda key: "--" + key.replace("_", "-"))
        check_machine(settings)
        if validate is not None:
            validate(settings)
        return cls.create(name, _located(settings), run_dir)

    @classmethod
    def resume(cls, name: str, settings_class: type, path: str | Path) -> Study:
        """The experiment in ``path``, with the settings it was started with."""
        _one_process(name)
        path = existing_dir(path, "experiment directory")
        file = path / "experiment.json"
        try:
            saved = json.loads(file.read_text())
        except (OSError, ValueError):
            saved = None
        if not isinstance(saved, dict) or not isinstance(saved.get("settings"), dict):
            raise CnnlabError(f"'{path}' is not an experiment directory (no readable experiment.json with its "
                              f"settings)")
        if saved.get("experiment") != name:
            raise CnnlabError(f"'{path}' holds the experiment {saved.get('experiment')!r}, not '{name}'")
        return cls(name, path, from_mapping(settings_class, saved["settings"], f"'{file}'"))

    def run(self, name: str, config: RunConfig, on_epoch_end: Callable[[EpochEnd], None] | None = None,
            recipe: Recipe | None = None) -> Run:
        """Train ``config`` into ``runs/NAME`` (or continue it there), and return it read back; a run that
        already finished is only read. ``on_epoch_end`` and ``recipe`` (as :func:`~cnnlab.train.fit` takes
        them) measure what the engine does not; they must not change the training."""
        path = self.path / "runs" / name
        if (path / "results.json").is_file():
            return Run.open(path)
        resume = path if (path / "checkpoints" / "last.safetensors").is_file() else None
        fit(config.replace(run_dir=str(path), quiet=True), resume=resume, log=lambda *a: None,
            on_epoch_end=on_epoch_end, recipe=recipe)
        return Run.open(path)

    def __enter__(self) -> Study:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        unlock_dir(self._lock)
        self._lock = None
        if isinstance(error, (KeyboardInterrupt, BrokenPipeError)) and self.resumable:  # Ctrl-C, SIGTERM, a pipe
            error.resume = (f"cnnlab experiment {self.name}", self.path)

    def write(self, rows: list[dict], summary: dict, table: str) -> None:
        """results.csv (``rows``), summary.json (the settings and ``summary``) and table.txt."""
        self.write_csv("results.csv", rows)
        atomic_write_json(self.path / "summary.json", {"experiment": self.name,
                                                      "settings": dataclasses.asdict(self.settings), **summary})
        atomic_write_text(self.path / "table.txt", table + "\n")

    def write_csv(self, name: str, rows: list[dict]) -> None:
        """``rows`` as a CSV file ``name`` in the experiment directory, atomically (the columns: the first row's
        keys)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path / name, buf.getvalue())

    def write_report(self) -> Path:
        """``report.html``: the settings, the summary as a table, the plots and a link to each run."""
        return write_study_report_of(self.path)


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """The mean and the (population) standard deviation over seeds; one seed has a spread of 0."""
    values = list(values)
    return statistics.mean(values), statistics.pstdev(values)


def precision_setting() -> Any:
    """An experiment's ``precision``: fp32 unless asked. Its runs compare networks or settings, so they compute
    alike, and the same command gives the same table: ``auto`` chooses per run by timing the run's step (bf16
    where it measures at least 1.2x faster on a CPU with native bf16), and a step near that line goes either
    way from one run to the next."""
    return like(RunConfig, "precision", "fp32",
                help="precision of every run (fp32: the runs compute alike, and the same command gives the same "
                     "table; auto chooses per run by timing its step)")


def percent_spread(summary: dict, key: str, digits: int = 2) -> str:
    """``summary[key_mean]`` in percent, with ``± summary[key_std]`` where it spreads over seeds: one seed's
    spread of 0 is not a measured one."""
    mean = f"{100 * summary[key + '_mean']:.{digits}f}"
    return mean + (f" ± {100 * summary[key + '_std']:.{digits}f}" if summary["seeds"] > 1 else "")


def mean_curve(curves: Iterable[Sequence[float]]) -> list[float]:
    """The mean over seeds of curves of equal length, point by point."""
    return [statistics.mean(v) for v in zip(*curves, strict=True)]


def _one_process(name: str) -> None:
    """Refuse to start or continue an experiment in a process of a distributed job, before anything is written."""
    if distributed.from_env().distributed:
        raise CnnlabError(f"the {name} experiment runs its runs in one process; start it without torchrun")


def _cell(key: str, value: Any) -> str:
    if value is None:  # nothing to measure: a target no seed reached, say
        return "-"
    if isinstance(value, float):
        share = ("accuracy" in key or "error" in key) and abs(value) <= 1  # fractions, shown as percentages
        return f"{100 * value:.2f}%" if share else f"{value:.4g}"
    return str(value)


def _resumable(path: Path) -> bool:
    """Whether the experiment directory ``path`` can be continued with ``--resume`` (one of an experiment that
    trains nothing, as efficiency, cannot)."""
    if not (path / "experiment.json").is_file():
        return False
    try:
        saved = json.loads((path / "experiment.json").read_text())
    except (OSError, ValueError):
        return True  # damaged: --resume says so
    return not isinstance(saved, dict) or saved.get("resumable", True) is not False


def check_machine(settings: Any) -> None:
    """The device and precision ``settings`` ask for, resolved now: one this machine lacks (``--device cuda``
    without a GPU) is one line before the experiment's directory exists (the runs resolve them only as they
    start, and the directory left behind could neither be resumed nor reused)."""
    if hasattr(settings, "device"):
        device = resolve_device(settings.device)
        if hasattr(settings, "precision"):
            resolve_precision(settings.precision, device)


def write_study_report_of(path: str | Path) -> Path:
    """Rebuild an experiment directory's ``report.html`` from its ``experiment.json`` and ``summary.json``."""
    path = existing_dir(path, "experiment directory")
    damaged = "the experiment directory is damaged"
    saved = read_json_object(path / "experiment.json", damaged)
    if not saved:
        raise CnnlabError(f"'{path}' is not an experiment directory (no readable experiment.json)")
    if not (path / "summary.json").is_file():
        raise CnnlabError(f"experiment '{path}' has not finished (no summary.json); " + (
            f"continue it with --resume {path}" if _resumable(path) else "run it again in another --run-dir, or "
                                                                         "delete it"))
    summary = read_json_object(path / "summary.json", damaged)
    rows = summary.get("summary") or []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CnnlabError(f"'{path / 'summary.json'}' holds no table of the experiment's results; {damaged}")
    settings = saved.get("settings")
    seeds = settings.get("seeds") if isinstance(settings, dict) else None
    table = _printed_table(path / "table.txt")
    if table is None:  # the table the command printed is gone or edited: every value of summary.json instead
        header = list(dict.fromkeys(k for r in rows for k in r))
        if isinstance(seeds, list) and len(seeds) == 1:  # one seed's spread of 0 is not a measured one
            header = [k for k in header if not k.endswith("_std")]
        spread = any(k.endswith("_std") for k in header)
        table = Table(header, [[_cell(k, r.get(k, "")) for k in header] for r in rows],
                      "one row per group" + (": mean and spread (population standard deviation) over seeds"
                                             if spread else "") + "; -: none (e.g. a target not reached)")
    runs = sorted(p for p in (path / "runs").iterdir() if p.is_dir()) if (path / "runs").is_dir() else []
    name = saved.get("experiment", "?")
    shown = dict(settings) if isinstance(settings, dict) else {}
    if isinstance(summary.get("cpu"), str):  # an experiment that times: where it measured
        shown["measured on"] = ", ".join([summary["cpu"], *(f"{summary[k]} {w}" for k, w in (
            ("threads", "threads"), ("device", "device")) if summary.get(k) is not None)])
    return write_study_report(path, f"experiment {name}", shown, table, sorted(path.glob("*.png")), runs)


def _printed_table(path: Path) -> Table | None:
    """The table the experiment printed (``table.txt``, as :func:`cnnlab.inspect.format_table` writes it:
    a header, a rule of dashes per column, the rows) as a report table, the same rounding and words as on the
    terminal; None if the file is missing or not laid out so. The rule gives each column's span, so cells that
    hold spaces (``layer, 128 channels at 14x14``) are cut where the columns are."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) < 3 or not re.fullmatch(r"-+( {2}-+)*", lines[1]):
        return None
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    spans[-1] = (spans[-1][0], None)  # the last column's cells run to the line's end

    def cells(line: str) -> list[str]:
        return [line[a:b].strip() for a, b in spans]

    body = [line for line in lines[2:] if line.strip()]
    if any(re.fullmatch(r"-+( {2}-+)*", line) for line in body):  # a footer: not a layout this reads
        return None
    return Table(cells(lines[0]), [cells(line) for line in body],
                 "as the command printed it (table.txt); summary.json and results.csv hold every value unrounded")


def _located(settings: Any) -> Any:
    """The settings with the relative paths they name made absolute where they exist (a dataset spec, an option
    shown as ``SPEC``; a run, shown as ``RUN``): experiment.json then finds them from any working directory, as a
    run's config.yaml does."""
    changes = {}
    for f in dataclasses.fields(settings):
        value, shown = getattr(settings, f.name), f.metadata.get("metavar")
        if isinstance(value, str) and shown == "SPEC":
            changes[f.name] = absolute_spec(value)
        elif isinstance(value, str) and shown == "RUN":
            changes[f.name] = absolute_path(value)
    return dataclasses.replace(settings, **changes)
