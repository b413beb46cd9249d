"""The run directory, as the engine writes it; :class:`cnnlab.train.Run` reads it back.

```
runs/<name>-<data>-<time>/
  config.yaml          resolved configuration, with its kind (reusable with --config)
  meta.json            what the model is and how it sees images (also inside each checkpoint)
  metrics.csv          one row per epoch
  results.json         final test metrics, e.g. {"test": {"accuracy": ..., "loss": ...}}
  checkpoints/         last.safetensors, best.safetensors, state.pt (see cnnlab.train.checkpoint)
  plots/               learning_curves.svg, confusion_matrix.svg, and what the kind adds (PNG)
  report.html          the run on one page
  tensorboard/         with --tensorboard
```
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .._io import atomic_write_json, atomic_write_text, existing_dir, make_dir
from ..errors import CnnlabError
from .checkpoint import Checkpoints
from .config import RunConfig


def data_slug(spec: str) -> str:
    """A dataset spec as a file name's part: a built-in dataset keeps its name and options (``shapes_size_64``),
    a file format its path's last part (``folder:~/pets`` -> ``pets``, ``npz:~/x/scans.npz`` -> ``scans``)."""
    import re

    name, _, rest = spec.partition(":")
    data = name if not rest else f"{name}_{rest}" if "=" in rest else (Path(rest).stem or name)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", data).strip("_")


def default_run_dir(config: RunConfig) -> Path:
    """``runs/<name>-<data>-<time>``, the data as :func:`data_slug` names it."""
    import time

    return Path("runs") / f"{config.name}-{data_slug(config.data)}-{time.strftime('%Y%m%d-%H%M%S')}"


def _claim(path: Path) -> Path:
    """Create ``path``, or ``path-2``, ``path-3``, ... if another run (started in the same second) took it."""
    make_dir(path.parent, "run directory", "--run-dir")
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
        try:
            candidate.mkdir(parents=True)  # parents: another run may just have removed an empty runs/
            return candidate
        except FileExistsError:
            continue
    raise CnnlabError(f"too many runs named '{path}'; choose a --run-dir")


_held: dict[int, Path] = {}  # the directories this process has locked, by descriptor


def lock_dir(path: Path, what: str = "run directory") -> int | None:
    """Lock the directory ``path`` for this process (an exclusive ``flock`` on the directory's own descriptor,
    so no file is added), or fail in one line if another process holds it: two processes writing one run (a
    run and its ``--resume``, say) would overwrite each other's checkpoints. The lock goes with the process;
    :func:`unlock_dir` releases it sooner. None where the platform has no ``flock``."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise CnnlabError(f"{what} '{path}' is in use by another cnnlab process; wait for it to end, or choose "
                          f"another directory") from None
    _held[fd] = Path(path).resolve()
    return fd


def unlock_dir(fd: int | None) -> None:
    if fd is not None:
        _held.pop(fd, None)
        os.close(fd)


def in_use(path: str | Path) -> bool:
    """Whether another process holds the lock of directory ``path`` (:func:`lock_dir`): a run it is still
    training, say. A directory this process locked is not in use by another. False where the platform has no
    ``flock``."""
    try:
        import fcntl
    except ImportError:
        return False
    if Path(path).resolve() in _held.values():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:  # a shared lock is refused only while someone holds the exclusive one
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # (and with it the shared lock)
    return False


def saved_config(path: str | Path) -> RunConfig:
    """The config.yaml of the run directory ``path``, as its kind's config class; one line if ``path`` is not a
    run directory."""
    p = existing_dir(path, "run directory")
    if not (p / "config.yaml").is_file():
        if (p / "experiment.json").is_file():  # a run of it is what was meant, or continuing it
            try:
                name = json.loads((p / "experiment.json").read_text()).get("experiment", "NAME")
            except (ValueError, AttributeError, OSError):  # unreadable: the command still names the way
                name = "NAME"
            runs = sorted(r.name for r in (p / "runs").iterdir() if r.is_dir()) if (p / "runs").is_dir() else []
            example = f" (e.g. {p / 'runs' / runs[0]})" if runs else ""
            raise CnnlabError(f"'{path}' is an experiment directory, not a run; give one of its runs, "
                              f"{p / 'runs'}/<run>{example}, or continue it with cnnlab experiment {name} "
                              f"--resume {path}")
        raise CnnlabError(f"'{path}' is not a cnnlab run directory (no config.yaml)")
    return RunConfig.load(p / "config.yaml")


class RunDir:
    """Writes a run directory. ``created``: whether this run made the directory (so may remove it)."""

    def __init__(self, path: Path, created: bool = False) -> None:
        self.path = path
        self.created = created
        self.reopened = False  # a run continued with --resume: what it held is never removed
        self.started = False  # this process wrote the run's config.yaml and meta.json
        self.checkpoints = Checkpoints(path / "checkpoints")
        self._writer = None
        self._lock: int | None = None  # held from create/reopen until release()
        self._made_parent = False

    @classmethod
    def create(cls, config: RunConfig) -> RunDir:
        """A new run's directory: ``config.run_dir`` (new, empty, or a run that never completed an epoch, which
        starts again), or a fresh default name."""
        if not config.run_dir:
            path = default_run_dir(config)
            made_parent = not path.parent.exists()
            run = cls(_claim(path), created=True)
            run._made_parent = made_parent  # the default runs/ this run made goes with it, if left empty
            run._lock = lock_dir(run.path)
            return run
        path = Path(config.run_dir).expanduser()
        existed = path.exists()
        make_dir(path, "run directory", "--run-dir")
        run = cls(path, created=not existed)
        run._lock = lock_dir(path)  # before anything in it is judged or removed
        try:
            if existed and any(path.iterdir()):
                if not (path / "config.yaml").is_file() or run.checkpoints.exists():
                    resume = f" or continue it with --resume {path}" if run.checkpoints.exists() else ""
                    raise CnnlabError(f"run directory '{path}' already exists and is not empty; choose another "
                                      f"--run-dir{resume}")
                run.clear()  # a run that never completed an epoch (killed in its first): nothing to keep
        except BaseException:
            run.release()
            raise
        return run

    @classmethod
    def reopen(cls, path: str | Path) -> RunDir:
        """The directory of a run to continue (``--resume``)."""
        saved_config(path)  # one line if it is not a run directory
        run = cls(Path(path).expanduser())
        for folder in (run.path, run.checkpoints.folder):  # access() also sees a file system mounted read-only
            if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
                raise CnnlabError(f"'{folder}' cannot be written (a read-only file system, or its permissions); a "
                                  f"run continues where it is: copy it somewhere writable and resume the copy")
        run.reopened = True
        run._lock = lock_dir(run.path)  # a process still writing it keeps its temporary files
        for stale in run.path.rglob(".*.tmp"):  # left by a kill in the middle of a write (plots/ too)
            stale.unlink(missing_ok=True)
        run.checkpoints.clear_temporary()
        return run

    @classmethod
    def follow(cls, path: str | Path) -> RunDir:
        """The directory of a run that another process writes (rank 0 of a distributed job): read here, never
        written, locked or removed."""
        run = cls(Path(path))
        run.reopened = True
        return run

    def config(self) -> RunConfig:
        return saved_config(self.path)

    def release(self) -> None:
        """Let another process write the run (the end of :func:`~cnnlab.train.fit`)."""
        unlock_dir(self._lock)
        self._lock = None

    def clear(self, keep: tuple[str, ...] = ()) -> None:
        """Remove everything in the directory but ``keep`` (a run with no completed epoch)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for child in self.path.iterdir():
            if child.name not in keep:
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    def start(self, config: RunConfig, meta: dict) -> None:
        self.started = True
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.save_config(config)
        self.save_meta(meta)

    def save_meta(self, meta: dict) -> None:
        """Write meta.json as the run now stands (on resume: the precision and memory layout this session
        trains with)."""
        atomic_write_json(self.path / "meta.json", meta)

    def save_config(self, config: RunConfig) -> None:
        """Write config.yaml as the run now stands (on resume: the new epochs, learning rate, ...)."""
        config.replace(run_dir=str(self.path)).save(self.path / "config.yaml")

    def discard_if_empty(self) -> bool:
        """Remove a run that ended before its first checkpoint: it holds nothing to resume or to use.

        Only what this run wrote goes; a directory the user made beforehand stays (empty)."""
        if self.checkpoints.exists() or not self.path.is_dir() or (self.reopened and not self.started):
            return False
        if self.created:
            if self._writer is not None:
                self._writer.close()
            shutil.rmtree(self.path, ignore_errors=True)
            if self._made_parent:
                with contextlib.suppress(OSError):  # another run may be in it by now
                    self.path.parent.rmdir()
        else:  # a directory the user made, or a run to start again with --resume: what it was given stays
            self.clear(keep=("config.yaml", "meta.json") if self.reopened else ())
        return True

    def log_epoch(self, history: list[dict]) -> None:
        """Rewrite metrics.csv with every epoch so far (atomic), and log the newest to TensorBoard."""
        self._write_metrics(history)
        if self._writer is not None:
            record = history[-1]
            for key, value in record.items():
                if key != "epoch":
                    self._writer.add_scalar(key, value, record["epoch"])
            self._writer.flush()

    def _write_metrics(self, history: list[dict]) -> None:
        keys = list(dict.fromkeys(k for r in history for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        for r in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        atomic_write_text(self.path / "metrics.csv", buf.getvalue())

    def tensorboard(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise CnnlabError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
        self._writer = SummaryWriter(str(self.path / "tensorboard"))

    def finish(self, results: dict[str, Any], history: list[dict], title: str) -> None:
        """Write results.json, metrics.csv and the plots every run has."""
        from ..viz.charts import confusion_matrix_plot, learning_curves_plot

        self._write_metrics(history)
        atomic_write_json(self.path / "results.json", results)
        plots = self.path / "plots"
        learning_curves_plot(history, plots / "learning_curves.svg", title)
        if "confusion_matrix" in results:
            confusion_matrix_plot(results["confusion_matrix"], results["classes"], plots / "confusion_matrix.svg")
        for old in ("learning_curves.png", "confusion_matrix.png"):  # what a run written before the SVGs holds
            (plots / old).unlink(missing_ok=True)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
