"""``cnnlab experiment transfer``: when does transfer learning pay off?

Model A trains on a source dataset. On each target (by default one similar to the source and one not),
three methods train with a share of the target's training labels, over several seeds: from scratch,
feature extraction (A's frozen backbone, a new head) and fine-tuning (all of A's layers, the backbone at a
tenth of the learning rate). Every method gets the same epochs, learning rate and schedule; validation and
test splits are the full ones at every budget.
"""

from __future__ import annotations

import dataclasses
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .._options import like, option
from ..classify import ClassifierConfig
from ..data import load_dataset
from ..errors import CnnlabError
from ..models import create_model
from ..train import RunConfig
from ..transfer import TransferConfig, read_source
from ._study import Study, check_machine, mean_std, percent_spread, precision_setting

DEFAULT_TARGETS = {"similar": "digits@classes=5-9", "dissimilar": "textures"}
METHODS = ("scratch", "feature-extraction", "fine-tune", "partial")


@dataclass
class TransferSettings:
    """The options of ``cnnlab experiment transfer`` (saved in experiment.json)."""

    source: str = option("digits@classes=0-4", "data model A trains on", metavar="SPEC")
    source_run: str | None = option(None, "use this trained run as model A instead of training one", flag="--from",
                                    metavar="RUN")
    targets: dict[str, str] = option(DEFAULT_TARGETS, "targets by name", cli=False)
    model: str | None = option(None, "architecture of model A and of the runs from scratch (default: lenet5, or "
                                     "the --from run's)", metavar="NAME")
    small_input: bool = option(False, "the model's small-input form (with --from: the run's own form)")
    budgets: list[float] = option([0.05, 0.1, 0.25, 0.5, 1.0], "shares of the target's training labels", above=0,
                                  high=1)
    seeds: list[int] = option([0, 1, 2], "seeds", low=0, high=2**32 - 1)
    methods: list[str] = option(["scratch", "feature-extraction", "fine-tune"], "methods to compare",
                                choices=METHODS)
    epochs: int = like(RunConfig, "epochs", 30, help="epochs of every target run")
    source_epochs: int = like(RunConfig, "epochs", 20, help="epochs of model A")
    lr: float = like(RunConfig, "lr", 3e-3)
    device: str = like(RunConfig, "device", "auto")
    precision: str = precision_setting()


QUICK = TransferSettings(budgets=[0.1, 1.0], seeds=[0], epochs=3, source_epochs=3)


@dataclass
class ExperimentResult:
    path: Path
    rows: list[dict]      # one per run
    summary: list[dict]   # one per (target, method, budget): mean and std over seeds

    def table(self) -> str:
        from ..inspect import format_table

        body = [[s["target"], s["method"], f"{100 * s['budget']:g}%", f"{s['labels_per_class']:g}",
                 percent_spread(s, "accuracy", digits=1),
                 f"{s['seconds_mean']:.2f}"] for s in self.summary]
        return format_table(["target", "method", "labels", "per class", "test accuracy (%)", "train s"], body,
                            right=[False, False, True, True, True, True])


def check_settings(s: TransferSettings) -> None:
    """Bad input fails here, before any training: target names, every dataset spec, the source run."""
    for name in s.targets:
        if not name or any(c in name for c in ":@+/"):
            raise CnnlabError(f"target name '{name}' must be a plain word (example: --target far=textures)")
    for given, spec in (*((f"--target {n}={v}", v) for n, v in s.targets.items()), (f"--source {s.source}", s.source)):
        data = load_dataset(spec, seed=0)
        if getattr(data.train, "labels", True) is None or data.num_classes < 2:
            raise CnnlabError(f"{given}: the experiment trains classifiers, and '{data.name}' has "
                              f"{'no labels' if data.train.labels is None else 'one class'}; give a labelled "
                              f"dataset of two classes or more (see cnnlab datasets)")
    check_machine(s)
    if s.source_run is None:  # model A is built here: an unknown name is one line before the directory exists
        with torch.device("meta"):
            create_model(s.model or "lenet5", **({"small_input": True} if s.small_input else {}))
    if s.source_run is not None:
        src = read_source(s.source_run)
        if src.kind != "cnnlab":
            raise CnnlabError(f"--from takes a cnnlab run (model A), not a weights file: '{s.source_run}'")
        if s.model is not None and s.model != src.model:
            raise CnnlabError(f"--model {s.model}: model A ('{s.source_run}') is a {src.model}, and the runs from "
                              f"scratch use model A's architecture; drop --model")
        presets = (TransferSettings(), QUICK)  # a value of the preset in use was not given (--quick: 3 epochs)
        given = [f"--{name.replace('_', '-')}" for name in ("source", "source_epochs", "small_input")
                 if all(getattr(s, name) != getattr(p, name) for p in presets)]
        if given:
            warnings.warn(f"{', '.join(given)} shape{'s' if len(given) == 1 else ''} the model A the experiment "
                          f"trains; with --from, model A is the run and {'this is' if len(given) == 1 else 'these are'}"
                          f" ignored", stacklevel=3)


def run_transfer_experiment(settings: TransferSettings | None = None, run_dir: str | Path | None = None,
                            resume: str | Path | None = None, log=print) -> ExperimentResult:
    """Run the experiment into a new directory, or continue the one in ``resume`` with its own settings."""
    if resume is not None:
        study = Study.resume("transfer", TransferSettings, resume)
    else:
        settings = settings or TransferSettings()
        check_settings(settings)
        if settings.source_run is not None:  # experiment.json, the plot and the report name model A's own data
            settings = dataclasses.replace(settings, source=read_source(settings.source_run).data or settings.source)
        study = Study.create("transfer", settings, run_dir)
    with study:
        return _run(study, log)


def _run(study: Study, log) -> ExperimentResult:
    s = study.settings
    model, kwargs = s.model or "lenet5", {"small_input": True} if s.small_input else {}
    common = dict(lr=s.lr, device=s.device, precision=s.precision, epochs=s.epochs)
    source_run = s.source_run
    if source_run is not None:  # the runs from scratch are model A's architecture, in its form
        src = read_source(source_run)
        model = src.model
        kwargs = {k: v for k, v in src.model_kwargs.items() if k not in ("in_chans", "num_classes", "drop_rate")}
    else:
        log(f"model A: {model} on {s.source} ({s.source_epochs} epochs)")
        a = study.run("model_a", ClassifierConfig(model=model, model_kwargs=kwargs, data=s.source,
                                                  **{**common, "epochs": s.source_epochs}))
        source_run = str(a.path)
        log(f"model A: test accuracy {100 * a.results['test']['accuracy']:.1f}% on its own classes")
    rows = []
    total = len(s.targets) * len(s.budgets) * len(s.seeds) * len(s.methods)
    for target, spec in s.targets.items():
        for budget in s.budgets:
            data = spec if budget >= 1 else f"{spec}@labels={budget:g}"  # a fraction: written with a point
            for seed in s.seeds:
                for method in s.methods:
                    name = f"{target}-{method}-{budget:g}-seed{seed}"
                    if method == "scratch":
                        config = ClassifierConfig(model=model, model_kwargs=kwargs, data=data, seed=seed, **common)
                    else:
                        config = TransferConfig(source=source_run, mode=method, data=data, seed=seed, **common)
                    run = study.run(name, config)
                    test = run.results["test"]
                    rows.append({"target": target, "spec": spec, "method": method, "budget": budget, "seed": seed,
                                 "train_images": run.meta["splits"]["train"], "classes": len(run.meta["classes"]),
                                 "accuracy": test["accuracy"], "loss": test["loss"],
                                 "seconds": run.results["train_seconds"]})
                    log(f"[{len(rows)}/{total}] {name}: test accuracy {100 * test['accuracy']:.1f}%")
    result = ExperimentResult(study.path, rows, _summarise(rows))
    study.write(rows, {"model_a": source_run, "summary": result.summary}, result.table())
    from ..viz import transfer_curves_plot

    transfer_curves_plot(result.summary, study.path / "accuracy_vs_labels.png",
                         f"transfer from {s.source}: test accuracy against training labels")
    study.write_report()
    return result


def _summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["target"], r["method"], r["budget"]), []).append(r)
    out = []
    for (target, method, budget), rs in groups.items():
        acc = [r["accuracy"] for r in rs]
        out.append({"target": target, "spec": rs[0]["spec"], "method": method, "budget": budget,
                    "labels_per_class": statistics.mean(r["train_images"] / r["classes"] for r in rs),
                    **dict(zip(("accuracy_mean", "accuracy_std"), mean_std(acc), strict=True)),
                    "seconds_mean": statistics.mean(r["seconds"] for r in rs), "seeds": len(rs)})
    return out
