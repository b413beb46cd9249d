"""``cnnlab experiment activations``: a non-saturating activation against saturating ones.

The claim (Krizhevsky, Sutskever & Hinton 2012, Sec. 3.1 and Fig. 1): networks with ReLUs train several times
faster than the same networks with saturating units; their four-layer CNN reached 25% training error on
CIFAR-10 six times sooner with ReLU than with tanh. The reason given by the lecture: a sigmoid's derivative is
at most 1/4 and vanishes where the unit saturates, so the gradient shrinks layer by layer on its way back.

Every run trains the same network (LeNet-5 by default; its ``act`` option swaps every activation, F6
included) with the same initialisation, data and recipe. The recipe is AlexNet's: SGD with momentum 0.9 at a
constant learning rate (no warm-up, no schedule), so that the speed of training is the activation's, not an
adaptive optimiser's. Per run the experiment records the loss curves, the epochs and seconds until the
validation accuracy first reaches ``--target``, and, after every epoch, the norm of the loss gradient with
respect to each layer's weights on one fixed validation batch (eval mode, nothing changed).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_json
from .._options import like, option
from ..classify import ClassifierConfig
from ..data import load_dataset
from ..inspect import format_table, signal_stats
from ..models import create_model
from ..nn import ACT_LAYERS
from ..train import EpochEnd, RunConfig
from ._study import Study, mean_curve, mean_std, percent_spread, precision_setting


@dataclass
class ActivationsSettings:
    """The options of ``cnnlab experiment activations`` (saved in experiment.json)."""

    acts: list[str] = option(["relu", "tanh", "sigmoid"], "activations to compare (for lenet5, tanh is the "
                             "paper's scaled tanh)", choices=tuple(ACT_LAYERS))
    model: str = option("lenet5", "the network; its activation option (lenet5's act, or act_layer) is varied",
                        metavar="NAME")
    init: str = option("xavier_uniform", "the weight-init scheme of every run (Glorot's, derived for symmetric "
                       "saturating units)", metavar="SCHEME")
    data: str = option("digits", "dataset spec", metavar="SPEC")
    seeds: list[int] = option([0, 1, 2], "seeds", low=0, high=2**32 - 1)
    epochs: int = like(RunConfig, "epochs", 20, help="epochs of every run")
    target: float = option(0.95, "validation accuracy whose first epoch and second are reported", above=0,
                           high=1)
    optimizer: str = like(RunConfig, "optimizer", "sgd")
    lr: float = like(RunConfig, "lr", 0.01)
    momentum: float = like(RunConfig, "momentum", 0.9)
    device: str = like(RunConfig, "device", "auto")
    precision: str = precision_setting()


QUICK = ActivationsSettings(acts=["relu", "sigmoid"], seeds=[0], epochs=3, target=0.5)


@dataclass
class ActivationsResult:
    path: Path
    rows: list[dict]      # one per run
    summary: list[dict]   # one per activation: mean and spread over seeds

    def table(self) -> str:
        def cell(value, fmt: str) -> str:
            return "not reached" if value is None else format(value, fmt)

        body = [[s["act"], f"{s['reached']}/{s['seeds']}", cell(s["epochs_to_target"], ".1f"),
                 cell(s["seconds_to_target"], ".2f"), f"{s['train_loss_mean']:.3f}",
                 percent_spread(s, "test_accuracy"),
                 f"{s['first_to_last_grad']:.2g}"] for s in self.summary]
        return format_table(["activation", "reached target", "epochs to target", "s to target", "final train loss",
                             "test accuracy (%)", "grad norm first/last layer"], body,
                            right=[False, True, True, True, True, True, True])


class GradientNorms:
    """``on_epoch_end``: the per-layer weight-gradient norms on the first validation batch, written to the run's
    ``gradient_norms.json`` after every epoch (so that a run continued with --resume keeps the earlier ones)."""

    def __init__(self, path: Path) -> None:
        self.file = path / "gradient_norms.json"

    def read(self) -> dict:
        try:
            return json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {"layers": [], "epochs": {}}

    def __call__(self, end: EpochEnd) -> None:
        x, y = next(iter(end.loaders["val"]))
        x, y = end.task.inputs(x.to(end.device), y.to(end.device))
        was_training = end.model.training
        end.model.eval()
        try:
            stats = signal_stats(end.model, x, y, end.task.loss)
        finally:
            end.model.train(was_training)
        saved = self.read()
        saved["layers"] = [g["name"] for g in stats.gradients]
        saved["epochs"][str(end.epoch)] = [g["grad_norm"] for g in stats.gradients]
        atomic_write_json(self.file, saved)


def run_activations_experiment(settings: ActivationsSettings | None = None, run_dir: str | Path | None = None,
                               resume: str | Path | None = None, log=print) -> ActivationsResult:
    """Train the network with every activation on every seed into a new directory, or continue ``resume``."""
    with Study.begin("activations", ActivationsSettings, settings, run_dir, resume, _validate) as study:
        return _run(study, log)


def _validate(s: ActivationsSettings) -> None:
    load_dataset(s.data, seed=0)  # a bad spec fails before any training
    for act in s.acts:  # and so does a model without the option, in one line
        create_model(s.model, init=s.init, **_config(s, act, 0).model_kwargs)


def _config(s: ActivationsSettings, act: str, seed: int) -> ClassifierConfig:
    key = "act" if s.model == "lenet5" else "act_layer"
    return ClassifierConfig(model=s.model, model_kwargs={key: act}, init=s.init, data=s.data, epochs=s.epochs,
                            optimizer=s.optimizer, lr=s.lr, momentum=s.momentum, scheduler="none", seed=seed,
                            device=s.device, precision=s.precision)


def _first(values: list[float], target: float) -> int | None:
    return next((i for i, v in enumerate(values) if v >= target), None)


def _run(study: Study, log) -> ActivationsResult:
    s = study.settings
    rows, curves, norms = [], {}, {}
    total = len(s.acts) * len(s.seeds)
    for act in s.acts:
        for seed in s.seeds:
            name = f"{act}-seed{seed}"
            path = study.path / "runs" / name
            run = study.run(name, _config(s, act, seed), on_epoch_end=GradientNorms(path))
            val = [h["val_acc"] for h in run.history]
            hit = _first(val, s.target)
            # after epoch 1; absent only if a stop fell between that epoch's checkpoint and this file's write
            first_epoch = GradientNorms(path).read()["epochs"].get("1", [])
            rows.append({"act": act, "seed": seed, "epochs_to_target": None if hit is None else hit + 1,
                         "seconds_to_target": None if hit is None else sum(h["seconds"] for h in run.history[:hit + 1]),
                         "train_loss": run.history[-1]["train_loss"], "val_accuracy": val[-1],
                         "test_accuracy": run.results["test"]["accuracy"],
                         "first_to_last_grad": first_epoch[0] / first_epoch[-1] if first_epoch and first_epoch[-1]
                         else float("nan")})
            curves.setdefault(act, []).append([h["train_loss"] for h in run.history])
            if first_epoch:
                norms.setdefault(act, []).append(first_epoch)
            reached = "not reached" if hit is None else f"epoch {hit + 1}"
            log(f"[{len(rows)}/{total}] {name}: target {reached}, test accuracy "
                f"{100 * rows[-1]['test_accuracy']:.2f}%")
    summary = []
    for act in s.acts:
        rs = [r for r in rows if r["act"] == act]
        hits = [r for r in rs if r["epochs_to_target"] is not None]
        tests = [r["test_accuracy"] for r in rs]
        summary.append({
            "act": act, "seeds": len(rs), "reached": len(hits),
            # means over the seeds that reached the target (all of them, or the column says how many did)
            "epochs_to_target": statistics.mean(r["epochs_to_target"] for r in hits) if hits else None,
            "seconds_to_target": statistics.mean(r["seconds_to_target"] for r in hits) if hits else None,
            "train_loss_mean": statistics.mean(r["train_loss"] for r in rs),
            **dict(zip(("test_accuracy_mean", "test_accuracy_std"), mean_std(tests), strict=True)),
            "first_to_last_grad": statistics.mean(r["first_to_last_grad"] for r in rs),  # NaN if one is missing
        })
    result = ActivationsResult(study.path, rows, summary)
    study.write(rows, {"summary": summary, "target": s.target}, result.table())
    from ..viz import activations_plot

    mean_curves = {a: mean_curve(c) for a, c in curves.items()}
    mean_norms = {a: mean_curve(n) for a, n in norms.items()}
    activations_plot(mean_curves, mean_norms, study.path / "activations.png",
                     f"{s.model} on {s.data}, {s.optimizer} lr {s.lr:g} (mean over {len(s.seeds)} seed(s))")
    study.write_report()
    return result
