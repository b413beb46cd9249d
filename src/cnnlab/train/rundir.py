"""The run directory: everything a later command needs is read from here.

```
runs/<model>-<data>-<time>/
  config.yaml          resolved configuration (reusable with --config)
  meta.json            model name and arguments, classes, preprocessing (also inside each checkpoint)
  metrics.csv          one row per epoch
  results.json         final test metrics, e.g. {"test": {"accuracy": ..., "loss": ...}}
  checkpoints/         best.safetensors, last.safetensors, state.pt (optimiser, scheduler, RNG, epoch)
  plots/               learning_curves.png, confusion_matrix.png
  report.html          the run on one page
  tensorboard/         with --tensorboard
```
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write_text
from ..errors import CnnlabError
from .checkpoint import load_weights
from .config import TrainConfig

_PLAIN = (bool, int, float, str, type(None))


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<model>-<data>-<time>``: a built-in dataset keeps its name and options (``shapes_size_64``), a
    file format its path's last part (``folder:~/pets`` -> ``pets``)."""
    name, _, rest = config.data.partition(":")
    data = name if not rest else f"{name}_{rest}" if "=" in rest else (Path(rest).name or name)
    data = re.sub(r"[^A-Za-z0-9_.-]+", "_", data).strip("_")
    return Path("runs") / f"{config.model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.best_path = path / "checkpoints" / "best.safetensors"
        self.last_path = path / "checkpoints" / "last.safetensors"
        self.state_path = path / "checkpoints" / "state.pt"
        self._writer = None
        self._created = False

    @classmethod
    def open(cls, config: TrainConfig, resume: str | Path | None) -> RunDir:
        if resume is not None:
            path = Path(resume)
            if not (path / "checkpoints" / "state.pt").is_file():
                raise CnnlabError(f"'{resume}' is not a cnnlab run directory with a checkpoint to resume")
            for stale in (*path.glob(".*.tmp"), *(path / "checkpoints").glob(".*.tmp")):  # left by a kill
                stale.unlink(missing_ok=True)
            return cls(path)
        path = Path(config.run_dir) if config.run_dir else default_run_dir(config)
        if path.exists() and any(path.iterdir()):
            raise CnnlabError(f"run directory '{path}' already exists and is not empty; choose another --run-dir "
                              f"or continue it with --resume {path}")
        return cls(path)

    def meta(self, config: TrainConfig, data, preprocess, task, model) -> dict[str, Any]:
        kwargs = {k: v for k, v in config.model_kwargs.items() if isinstance(v, _PLAIN)}
        kwargs.update(in_chans=data.channels, num_classes=task.num_outputs)
        if config.dropout is not None:
            kwargs.setdefault("drop_rate", config.dropout)
        return {"kind": "classifier", "model": config.model, "model_kwargs": kwargs, "classes": data.classes,
                "binary": task.binary, "preprocess": preprocess.to_dict(), "data": config.data,
                "splits": {k: len(v) for k, v in data.splits().items()}}

    def start(self, config: TrainConfig, meta: dict) -> None:
        self._created = not self.path.exists()
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.save_config(config)
        atomic_write_text(self.path / "meta.json", json.dumps(meta, indent=2))

    def save_config(self, config: TrainConfig) -> None:
        """Write config.yaml as the run now stands (on resume: the new epochs, learning rate, ...)."""
        config.replace(run_dir=str(self.path)).save(self.path / "config.yaml")

    def discard_if_empty(self) -> bool:
        """Remove a run that ended before its first checkpoint: it can be neither resumed nor reused.

        Only what this run wrote goes; a directory the user made beforehand stays (empty)."""
        if self.state_path.exists():
            return False
        import shutil

        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._created:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            for child in self.path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
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

    def finish(self, history, test, classes, train_seconds, stopped_early, config, extra=None) -> None:
        from ..report import write_report
        from ..viz import confusion_matrix_plot, learning_curves_plot

        self._write_metrics(history)
        results = {
            "test": {k: v for k, v in test.items() if k != "confusion_matrix"},
            **({"confusion_matrix": test["confusion_matrix"]} if "confusion_matrix" in test else {}),
            "classes": classes,
            "epochs": len(history), "stopped_early": stopped_early, "train_seconds": round(train_seconds, 3),
            "best_val": min(h["val_loss"] for h in history) if config.monitor == "val_loss"
            else max(h["val_acc"] for h in history),
            **(extra or {}),
        }
        atomic_write_text(self.path / "results.json", json.dumps(results, indent=2))
        learning_curves_plot(history, self.path / "plots" / "learning_curves.png", f"{config.model} on {config.data}")
        if "confusion_matrix" in test:
            confusion_matrix_plot(test["confusion_matrix"], classes, self.path / "plots" / "confusion_matrix.png")
        write_report(self.path)
        if self._writer is not None:
            self._writer.close()


def final_checkpoint(run: Path) -> str:
    """The checkpoint a run's own test results were computed with: ``best`` after early stopping (which
    restores the best weights), else ``last``."""
    try:
        config = TrainConfig.load(run / "config.yaml")
    except CnnlabError:
        return "best"
    return "best" if config.early_stopping else "last"


def run_kind(meta: dict) -> str:
    """'a classifier', 'an autoencoder', 'a segmentation network': what a checkpoint's metadata says it holds."""
    return {"classifier": "a classifier", "autoencoder": "an autoencoder", "segmenter": "a segmentation network"
            }.get(meta.get("kind", "classifier"), f"a {meta.get('kind')}")


def read_run_checkpoint(path: str | Path, which: str | None = None) -> tuple[dict, dict, Path]:
    """The weights and metadata of a run directory's checkpoint (``best``, ``last``, or None for the one
    the run ended with: see :func:`final_checkpoint`), or of a checkpoint file; and the file read."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CnnlabError(f"run directory or checkpoint '{path}' does not exist")
    if path.is_dir():
        file = path / "checkpoints" / f"{which or final_checkpoint(path)}.safetensors"
        if not file.is_file():
            raise CnnlabError(f"'{path}' is not a cnnlab run directory (no checkpoints/{file.name})")
    else:
        file = path
    state, meta = load_weights(file)
    return state, meta, file


def load_run_model(path: str | Path, which: str | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild a run's model from its checkpoint and return it with its metadata.

    ``which`` is ``best``, ``last``, or None for the weights the run ended with (those of its
    results.json: see :func:`final_checkpoint`).
    """
    from ..models import create_model

    state, meta, file = read_run_checkpoint(path, which)
    if "model" not in meta:
        raise CnnlabError(f"'{file}' has no cnnlab metadata; is it a cnnlab checkpoint?")
    if meta.get("kind", "classifier") != "classifier":
        raise CnnlabError(f"'{path}' holds {run_kind(meta)}, not a classifier; use the cnnlab ae or "
                          f"cnnlab segment commands for it")
    model = create_model(meta["model"], **meta["model_kwargs"])
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CnnlabError(f"checkpoint '{file}' does not fit {meta['model']}: {str(e).splitlines()[-1].strip()}"
                          ) from None
    return model.eval(), meta
