"""``cnnlab experiment transfer``: when does transfer learning pay off?

Model A trains on a source dataset. On each target (by default one similar to the source and one not),
three methods train with a share of the target's training labels, over several seeds: from scratch,
feature extraction (A's frozen backbone, a new head) and fine-tuning (all of A's layers, the backbone at a
tenth of the learning rate). Every method gets the same epochs, learning rate and schedule; validation and
test splits are the full ones at every budget.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_text
from ..data import load_dataset
from ..errors import CnnlabError
from ..train import TrainConfig, TransferConfig, fit
from .source import read_source

DEFAULT_TARGETS = {"similar": "digits@classes=5-9", "dissimilar": "textures"}
METHODS = ("scratch", "feature-extraction", "fine-tune", "partial")


@dataclass
class ExperimentResult:
    path: Path
    rows: list[dict]      # one per run
    summary: list[dict]   # one per (target, method, budget): mean and std over seeds

    def table(self) -> str:
        from ..inspect import format_table

        body = [[s["target"], s["method"], f"{100 * s['budget']:g}%", f"{s['labels_per_class']:g}",
                 f"{100 * s['accuracy_mean']:.1f}" + (f" ± {100 * s['accuracy_std']:.1f}" if s["seeds"] > 1 else ""),
                 f"{s['seconds_mean']:.2f}"] for s in self.summary]
        return format_table(["target", "method", "labels", "per class", "test accuracy (%)", "train s"], body,
                            right=[False, False, True, True, True, True])


def run_transfer_experiment(source: str = "digits@classes=0-4", source_run: str | None = None,
                            targets: dict[str, str] | None = None, model: str = "lenet5",
                            model_kwargs: dict | None = None, budgets=(0.05, 0.1, 0.25, 0.5, 1.0),
                            seeds=(0, 1, 2), methods=("scratch", "feature-extraction", "fine-tune"),
                            epochs: int = 30, source_epochs: int = 20, lr: float = 3e-3, device: str = "auto",
                            run_dir: str | Path | None = None, log=print) -> ExperimentResult:
    targets = dict(targets or DEFAULT_TARGETS)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise CnnlabError(f"unknown method '{bad[0]}'; methods: {', '.join(METHODS)}")
    for spec in targets.values():  # bad input fails here, before any training
        load_dataset(spec, seed=0)
    load_dataset(source, seed=0)
    if source_run is not None:
        read_source(source_run)
    path = Path(run_dir) if run_dir else Path("runs") / f"experiment-transfer-{time.strftime('%Y%m%d-%H%M%S')}"
    if path.exists() and any(path.iterdir()):
        raise CnnlabError(f"experiment directory '{path}' already exists and is not empty; choose another --run-dir")
    common = dict(lr=lr, device=device, quiet=True, epochs=epochs)
    if source_run is None:
        log(f"model A: {model} on {source} ({source_epochs} epochs)")
        a = fit(TrainConfig(model=model, model_kwargs=dict(model_kwargs or {}), data=source,
                            run_dir=str(path / "model_a"), **{**common, "epochs": source_epochs}), log=lambda *x: None)
        source_run = str(a.run_dir)
        log(f"model A: test accuracy {100 * a.test['accuracy']:.1f}% on its own classes")
    rows = []
    total = len(targets) * len(budgets) * len(seeds) * len(methods)
    for target, spec in targets.items():
        for budget in budgets:
            data = spec if budget >= 1 else f"{spec}@labels={budget:g}"  # a fraction: written with a point
            for seed in seeds:
                for method in methods:
                    name = f"{target}-{method}-{budget:g}-seed{seed}"
                    cfg = TrainConfig(model=model if method == "scratch" else None,
                                      model_kwargs=dict(model_kwargs or {}) if method == "scratch" else {},
                                      data=data, seed=seed, run_dir=str(path / "runs" / name), **common)
                    if method != "scratch":
                        cfg = cfg.replace(transfer=TransferConfig(source=source_run, mode=method))
                    r = fit(cfg, log=lambda *x: None)
                    results = json.loads((r.run_dir / "results.json").read_text())
                    rows.append({"target": target, "spec": spec, "method": method, "budget": budget, "seed": seed,
                                 "train_images": _train_images(r.run_dir),
                                 "classes": len(results["classes"]), "accuracy": r.test["accuracy"],
                                 "loss": r.test["loss"], "seconds": results["train_seconds"]})
                    log(f"[{len(rows)}/{total}] {name}: test accuracy {100 * r.test['accuracy']:.1f}%")
    summary = _summarise(rows)
    result = ExperimentResult(path, rows, summary)
    _write(result, source, source_run, targets)
    return result


def _train_images(run_dir: Path) -> int:
    return int(json.loads((run_dir / "meta.json").read_text())["splits"]["train"])


def _summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["target"], r["method"], r["budget"]), []).append(r)
    out = []
    for (target, method, budget), rs in groups.items():
        acc = [r["accuracy"] for r in rs]
        out.append({"target": target, "spec": rs[0]["spec"], "method": method, "budget": budget,
                    "labels_per_class": statistics.mean(r["train_images"] / r["classes"] for r in rs),
                    "accuracy_mean": statistics.mean(acc), "accuracy_std": statistics.pstdev(acc) if len(acc) > 1
                    else 0.0, "seconds_mean": statistics.mean(r["seconds"] for r in rs), "seeds": len(rs)})
    return out


def _write(result: ExperimentResult, source: str, source_run: str, targets: dict) -> None:
    from ..viz import transfer_curves_plot

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(result.rows[0]))
    writer.writeheader()
    writer.writerows(result.rows)
    atomic_write_text(result.path / "results.csv", buf.getvalue())
    atomic_write_text(result.path / "summary.json", json.dumps(
        {"source": source, "model_a": source_run, "targets": targets, "summary": result.summary}, indent=2))
    atomic_write_text(result.path / "table.txt", result.table() + "\n")
    transfer_curves_plot(result.summary, result.path / "accuracy_vs_labels.png",
                         f"transfer from {source}: test accuracy against training labels")
