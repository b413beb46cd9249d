"""``cnnlab experiment regularization``: what each regulariser does to a network trained on few labels.

The lecture's claims: a network with more weights than training images overfits (training accuracy near 100%,
validation accuracy well below it), and each regulariser narrows that gap in its own way: dropout (Srivastava
et al. 2014) trains an ensemble of thinned networks; an L2 penalty shrinks the weights, an L1 penalty drives
many of them to zero (sparse weights); batch normalisation (Ioffe & Szegedy 2015) regularises through its
batch statistics; data augmentation makes more training images; early stopping keeps the weights of the epoch
with the best validation loss.

Every run trains the same network, LeNet-5 in its modern form (ReLU, max-pooling, He initialisation: the
paper's tiny uniform init is made for its scaled tanh and leaves a ReLU LeNet near chance for epochs; 62k
weights), on a small
training subset (``digits@labels=20``: 20 images per class, 200 in all; validation and test splits stay
whole), with cnnlab's default optimiser and schedule. The baseline has no regulariser at all: no dropout, no
penalty, no batch norm, no augmentation, no early stopping and no label smoothing. Each variant adds one (its
strength is a setting), and ``all`` adds every one. Per run: the accuracy on the training images (evaluated in
eval mode, so dropout and augmentation do not lower it), on validation and on test; the gap between the first
two; the L2 norm of the conv and linear weights and the share of them near zero (``|w| < --zero``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .._options import like, option
from ..classify import ClassifierConfig
from ..data import load_dataset
from ..inspect import format_table
from ..train import RunConfig
from ._study import Study, mean_std, percent_spread, precision_setting

VARIANTS = ("none", "dropout", "l1", "l2", "batchnorm", "augment", "early_stopping", "all")


@dataclass
class RegularizationSettings:
    """The options of ``cnnlab experiment regularization`` (saved in experiment.json)."""

    variants: list[str] = option(list(VARIANTS), "regularisers to compare, each alone ('all' combines them)",
                                 choices=VARIANTS)
    data: str = option("digits@labels=20", "dataset spec; the few-label subset is the point", metavar="SPEC")
    seeds: list[int] = option([0, 1, 2], "seeds", low=0, high=2**32 - 1)
    epochs: int = like(RunConfig, "epochs", 60, help="epochs of every run")
    dropout: float = option(0.5, "dropout rate of the dropout variant (after F6, before the output layer)", above=0,
                            below=1)
    # 2.5e-4 * sum(w^2) has the gradient 5e-4 * w: the weight decay of AlexNet, VGG and ResNet
    l1: float = like(RunConfig, "l1", 1e-5, help="L1 penalty of the l1 variant (times the sum of |w|)")
    l2: float = like(RunConfig, "l2", 2.5e-4, help="L2 penalty of the l2 variant (times the sum of w^2)")
    patience: int = option(10, "early_stopping variant: epochs without a better validation loss", low=1,
                           high=100_000)
    zero: float = option(1e-3, "a weight counts as near zero when |w| is below this", above=0, high=1)
    device: str = like(RunConfig, "device", "auto")
    precision: str = precision_setting()


QUICK = RegularizationSettings(variants=["none", "l1", "l2", "batchnorm", "early_stopping"], seeds=[0], epochs=8,
                               patience=2)


@dataclass
class RegularizationResult:
    path: Path
    rows: list[dict]      # one per run
    summary: list[dict]   # one per variant: mean and spread over seeds

    def table(self) -> str:
        pct = percent_spread
        body = [[s["variant"], pct(s, "train_accuracy"), pct(s, "val_accuracy"), pct(s, "gap"),
                 pct(s, "test_accuracy"), f"{s['weight_norm_mean']:.2f}", f"{100 * s['near_zero_mean']:.1f}",
                 f"{s['epochs_mean']:.0f}"] for s in self.summary]
        return format_table(["regulariser", "train acc (%)", "val acc (%)", "gap (pts)", "test acc (%)",
                             "weight L2 norm", "weights near 0 (%)", "epochs"], body,
                            right=[False] + [True] * 7)


def _config(s: RegularizationSettings, variant: str, seed: int) -> ClassifierConfig:
    on = VARIANTS[1:-1] if variant == "all" else (variant,)
    return ClassifierConfig(
        model="lenet5", model_kwargs={"act": "relu", "pool": "max", "batch_norm": "batchnorm" in on},
        init="kaiming_normal",
        data=s.data, epochs=s.epochs, seed=seed, device=s.device, precision=s.precision, label_smoothing=0.0,
        dropout=s.dropout if "dropout" in on else 0.0, l1=s.l1 if "l1" in on else 0.0,
        l2=s.l2 if "l2" in on else 0.0, augment="augment" in on,
        early_stopping=s.patience if "early_stopping" in on else 0)


def weight_stats(model: nn.Module, zero: float) -> tuple[float, float]:
    """The L2 norm of all conv and linear weights (no biases, no norm layers: what the penalties act on) and the
    share of them with ``|w| < zero``."""
    weights = torch.cat([m.weight.detach().flatten() for m in model.modules()
                         if isinstance(m, (nn.Conv2d, nn.Linear))])
    return weights.norm().item(), (weights.abs() < zero).float().mean().item()


def run_regularization_experiment(settings: RegularizationSettings | None = None,
                                  run_dir: str | Path | None = None, resume: str | Path | None = None,
                                  log=print) -> RegularizationResult:
    """Train every variant on every seed into a new directory, or continue the one in ``resume``."""
    with Study.begin("regularization", RegularizationSettings, settings, run_dir, resume,
                     lambda s: load_dataset(s.data, seed=0)) as study:  # a bad spec fails before any training
        return _run(study, log)


def _run(study: Study, log) -> RegularizationResult:
    s = study.settings
    rows, total = [], len(s.variants) * len(s.seeds)
    for variant in s.variants:
        for seed in s.seeds:
            name = f"{variant}-seed{seed}"
            run = study.run(name, _config(s, variant, seed))
            train = run.evaluate("train")["accuracy"]
            val = run.evaluate("val")["accuracy"]
            norm, near_zero = weight_stats(run.model, s.zero)
            rows.append({"variant": variant, "seed": seed, "train_accuracy": train, "val_accuracy": val,
                         "gap": train - val, "test_accuracy": run.results["test"]["accuracy"],
                         "weight_norm": norm, "near_zero": near_zero, "epochs": len(run.history)})
            log(f"[{len(rows)}/{total}] {name}: train {100 * train:.2f}%, val {100 * val:.2f}%, test "
                f"{100 * rows[-1]['test_accuracy']:.2f}%")
    summary = []
    for variant in s.variants:
        rs = [r for r in rows if r["variant"] == variant]
        entry = {"variant": variant, "seeds": len(rs)}
        for key in ("train_accuracy", "val_accuracy", "gap", "test_accuracy", "weight_norm", "near_zero", "epochs"):
            entry[key + "_mean"], entry[key + "_std"] = mean_std(r[key] for r in rs)
        summary.append(entry)
    result = RegularizationResult(study.path, rows, summary)
    study.write(rows, {"summary": summary}, result.table())
    from ..viz import regularization_plot

    regularization_plot(summary, study.path / "regularization.png",
                        f"LeNet-5 (ReLU, max-pool, He init) on {s.data}, {s.epochs} epochs "
                        f"(mean over {len(s.seeds)} seed(s))")
    study.write_report()
    return result
