"""``cnnlab experiment init``: weight initialisation, depth and batch norm, seen through the signal per layer.

The claims: with all weights equal (a constant) every unit of a layer computes the same thing and gets the
same update, so the symmetry never breaks; with weights too small the activations and gradients shrink
geometrically with depth (vanishing), too large and they grow (exploding); Xavier/Glorot (2010) keeps the
variance for symmetric units, Kaiming/He (2015) for ReLUs (``std = sqrt(2 / fan)``), which is what lets deep
plain networks start training; batch normalisation (Ioffe & Szegedy 2015) re-normalises every layer and
makes the start far less sensitive to the scheme.

Each run is a plain network of the ResNet paper's CIFAR family (no shortcuts, ReLU; ``plain20``,
``plain56``, ...) with or without batch norm, initialised by a scheme of :mod:`cnnlab.nn.init`. At
initialisation, on the first validation batch, the experiment measures every activation's standard deviation
and every layer's weight-gradient norm (:func:`cnnlab.inspect.signal_stats`, on a copy of the very model the
run then trains, in train mode, as the first step sees it). Then the run trains for a few epochs with SGD and
momentum at a constant learning rate (an adaptive optimiser rescales each weight's step and would hide much of
what the scale of the initialisation does), and the experiment reports whether it trains: its final
training accuracy against chance. A run whose loss becomes infinite or NaN is reported as diverged.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_json, read_json_object
from .._options import like, option
from ..classify import ClassifierConfig, ClassifierRecipe
from ..data import load_dataset
from ..errors import CnnlabError
from ..inspect import format_table, signal_stats
from ..models import create_model
from ..train import RunConfig, TrainingDiverged
from ._study import Study, mean_curve, precision_setting

PLAIN_NETS = ("plain20", "plain32", "plain44", "plain56")


@dataclass
class InitSettings:
    """The options of ``cnnlab experiment init`` (saved in experiment.json)."""

    schemes: list[str] = option(["constant:val=0.01", "normal:std=0.01", "pytorch", "xavier_normal",
                                 "kaiming_normal:mode=fan_in"], "init schemes (cnnlab.nn.init; NAME:key=value)",
                                metavar="SCHEME")
    models: list[str] = option(["plain20", "plain56"], "plain networks: the depths compared", choices=PLAIN_NETS)
    norms: list[str] = option(["none", "batch"], "without and with batch norm", choices=("none", "batch"))
    data: str = option("digits", "dataset spec", metavar="SPEC")
    seeds: list[int] = option([0], "seeds", low=0, high=2**32 - 1)
    epochs: int = like(RunConfig, "epochs", 4, help="epochs of every run")
    lr: float = like(RunConfig, "lr", 0.01)
    momentum: float = like(RunConfig, "momentum", 0.9)
    device: str = like(RunConfig, "device", "auto")
    precision: str = precision_setting()


QUICK = InitSettings(schemes=["normal:std=0.01", "kaiming_normal:mode=fan_in"], models=["plain20"], norms=["none"],
                     data="digits@labels=0.5", epochs=2)


class AtInit(ClassifierRecipe):
    """The classifier recipe, measuring the signal on the first validation batch before the first step; the
    measurement is written to ``file`` once (a resumed run starts from a checkpoint, not from its init)."""

    def __init__(self, file: Path) -> None:
        super().__init__()
        self.file = file

    def make_task(self, data, config):
        self.task = super().make_task(data, config)
        return self.task

    def train_view(self, model, batches, config, device, log):
        if not self.file.is_file():
            x, y = next(iter(batches["val"]))
            task = self.task
            x, y = task.inputs(x.to(device), y.to(device))
            stats = signal_stats(copy.deepcopy(model).train(), x, y, task.loss)  # batch norm's statistics stay
            atomic_write_json(self.file, {"activations": stats.activations, "gradients": stats.gradients,
                                          "loss": stats.loss})
        return super().train_view(model, batches, config, device, log)


def _measured(file: Path, run: Path) -> tuple[list[dict], list[dict]]:
    """The activations and gradients :class:`AtInit` wrote to ``file`` for ``run``; one line if that file is
    missing or damaged (only the run's start writes it, so the way on is to train the run again)."""
    again = f"delete '{run}' and continue the experiment to measure that run again"
    measured = read_json_object(file, again)
    acts, grads = measured.get("activations"), measured.get("gradients")
    if not (isinstance(acts, list) and acts and isinstance(grads, list) and grads
            and all(isinstance(a, dict) and "std" in a for a in acts)
            and all(isinstance(g, dict) and "grad_norm" in g for g in grads)):
        what = "is missing" if not file.is_file() else "does not hold the measurement"
        raise CnnlabError(f"'{file}' {what} (the signal per layer at initialisation); {again}")
    return acts, grads


@dataclass
class InitResult:
    path: Path
    rows: list[dict]      # one per run
    summary: list[dict]   # one per model, norm and scheme: mean over seeds

    def table(self) -> str:
        def trains(s: dict) -> str:
            if s["diverged"]:
                return f"diverged ({s['diverged']}/{s['seeds']})"
            return f"{100 * s['train_accuracy']:.1f}% " + ("yes" if s["trains"] else "no")

        body = [[s["model"], s["norm"], s["scheme"], f"{s['act_std_first']:.3g}", f"{s['act_std_last']:.3g}",
                 f"{s['grad_first']:.3g}", f"{s['grad_last']:.3g}", trains(s)] for s in self.summary]
        return format_table(["network", "norm", "init", "act std layer 1", "act std last", "grad norm layer 1",
                             "grad norm last", "train acc, trains?"], body,
                            right=[False, False, False, True, True, True, True, True])


def run_init_experiment(settings: InitSettings | None = None, run_dir: str | Path | None = None,
                        resume: str | Path | None = None, log=print) -> InitResult:
    """Measure and train every network, norm and scheme on every seed into a new directory, or continue
    ``resume``."""
    with Study.begin("init", InitSettings, settings, run_dir, resume, _validate) as study:
        return _run(study, log)


def _validate(s: InitSettings) -> None:
    load_dataset(s.data, seed=0)  # a bad spec fails before any training
    for scheme in s.schemes:  # and so does a bad scheme
        create_model("lenet5", init=scheme)


def _config(s: InitSettings, model: str, norm: str, scheme: str, seed: int) -> ClassifierConfig:
    return ClassifierConfig(model=model, model_kwargs={"norm_layer": norm}, init=scheme, data=s.data,
                            epochs=s.epochs, optimizer="sgd", lr=s.lr, momentum=s.momentum, scheduler="none",
                            seed=seed, device=s.device, precision=s.precision)


def _run(study: Study, log) -> InitResult:
    s = study.settings
    rows, signals = [], {}
    total = len(s.models) * len(s.norms) * len(s.schemes) * len(s.seeds)
    (study.path / "signals").mkdir(exist_ok=True)
    for model in s.models:
        for norm in s.norms:
            for scheme in s.schemes:
                for seed in s.seeds:
                    name = f"{model}-{norm}-{scheme.replace(':', '-').replace('=', '')}-seed{seed}"
                    file = study.path / "signals" / f"{name}.json"
                    diverged = None
                    try:
                        run = study.run(name, _config(s, model, norm, scheme, seed), recipe=AtInit(file))
                        train_acc = run.history[-1]["train_acc"]
                        classes = len(run.results["classes"])
                    except TrainingDiverged as e:
                        diverged, train_acc, classes = str(e), float("nan"), None
                    acts, grads = _measured(file, study.path / "runs" / name)
                    rows.append({"model": model, "norm": norm, "scheme": scheme, "seed": seed,
                                 "act_std_first": acts[0]["std"], "act_std_last": acts[-1]["std"],
                                 "grad_first": grads[0]["grad_norm"], "grad_last": grads[-1]["grad_norm"],
                                 "train_accuracy": train_acc, "chance": 1 / classes if classes else float("nan"),
                                 "diverged": diverged is not None})
                    signals.setdefault((model, norm, scheme), []).append(
                        ([a["std"] for a in acts], [g["grad_norm"] for g in grads]))
                    outcome = "diverged" if diverged else f"training accuracy {100 * train_acc:.1f}%"
                    log(f"[{len(rows)}/{total}] {name}: {outcome}")
    summary = []
    for model in s.models:
        for norm in s.norms:
            for scheme in s.schemes:
                rs = [r for r in rows if (r["model"], r["norm"], r["scheme"]) == (model, norm, scheme)]
                done = [r for r in rs if not r["diverged"]]
                acc = statistics.mean(r["train_accuracy"] for r in done) if done else float("nan")
                chance = done[0]["chance"] if done else float("nan")
                summary.append({"model": model, "norm": norm, "scheme": scheme, "seeds": len(rs),
                                "diverged": len(rs) - len(done), "train_accuracy": acc,
                                # trains: clearly above chance (twice it) on the training images it saw
                                "trains": bool(done) and acc >= 2 * chance,
                                **{k: statistics.mean(r[k] for r in rs)
                                   for k in ("act_std_first", "act_std_last", "grad_first", "grad_last")}})
    result = InitResult(study.path, rows, summary)
    study.write(rows, {"summary": summary}, result.table())
    from ..viz import init_signal_plot

    curves = {key: (mean_curve(a for a, _ in runs), mean_curve(g for _, g in runs)) for key, runs in signals.items()}
    init_signal_plot(curves, study.path / "signal_per_layer.png",
                     f"at initialisation, one batch of {s.data} (ReLU plain networks)")
    study.write_report()
    return result
