"""``cnnlab experiment depth``: plain networks against residual ones of equal depth.

The claim (He et al. 2016, Sec. 4.2 and Fig. 6): stacking more layers on a plain network makes it worse, and
not by overfitting: its *training* error rises with depth (the degradation problem), while the same stacks
with identity shortcuts get better as they get deeper. The paper's CIFAR-10 test errors: ResNet-20 8.75%,
32 7.51%, 44 7.17%, 56 6.97%, 110 6.43%; the plain 56-layer network trains worse than the plain 20-layer one.

Every run uses the same data, epochs, optimiser and schedule (cnnlab's defaults unless given); ``--data
cifar10:PATH`` runs the paper's setting for users who have its files. The experiment reports, per network and
over seeds, the final training error (on the training split, as the last epoch saw it) and the test error,
and draws the training-error curves (plain dashed, residual solid), as the paper's Fig. 6 does.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from .._options import like, option
from ..classify import ClassifierConfig
from ..data import load_dataset
from ..inspect import format_table
from ..train import RunConfig
from ._study import Study, mean_curve, mean_std, percent_spread, precision_setting

CIFAR_NETS = ("plain20", "plain32", "plain44", "plain56", "resnet20", "resnet32", "resnet44", "resnet56",
              "resnet110")


@dataclass
class DepthSettings:
    """The options of ``cnnlab experiment depth`` (saved in experiment.json)."""

    models: list[str] = option(["plain20", "plain56", "resnet20", "resnet56"], "networks to compare",
                               choices=CIFAR_NETS)
    data: str = option("digits", "dataset spec (cifar10:PATH for the paper's setting)", metavar="SPEC")
    seeds: list[int] = option([0, 1], "seeds", low=0, high=2**32 - 1)
    epochs: int = like(RunConfig, "epochs", 15, help="epochs of every run")
    lr: float = like(RunConfig, "lr", 3e-3)
    device: str = like(RunConfig, "device", "auto")
    precision: str = precision_setting()


QUICK = DepthSettings(models=["plain20", "resnet20"], data="digits@labels=0.25", seeds=[0], epochs=2)


@dataclass
class DepthResult:
    path: Path
    rows: list[dict]      # one per run
    summary: list[dict]   # one per network: mean and spread over seeds

    def table(self) -> str:
        body = [[s["model"], str(s["depth"]), "yes" if s["residual"] else "no", f"{s['params']:,}",
                 percent_spread(s, "train_error"), percent_spread(s, "test_error"), f"{s['seconds_mean']:.1f}"]
                for s in self.summary]
        return format_table(["network", "layers", "shortcuts", "parameters", "training error (%)",
                             "test error (%)", "train s"], body, right=[False, True, False, True, True, True, True])


def run_depth_experiment(settings: DepthSettings | None = None, run_dir: str | Path | None = None,
                         resume: str | Path | None = None, log=print) -> DepthResult:
    """Train every network on every seed into a new directory, or continue the one in ``resume``."""
    with Study.begin("depth", DepthSettings, settings, run_dir, resume,
                     lambda s: load_dataset(s.data, seed=0)) as study:  # a bad spec fails before any training
        return _run(study, log)


def _run(study: Study, log) -> DepthResult:
    s = study.settings
    rows, histories = [], {}
    total = len(s.models) * len(s.seeds)
    for model in s.models:
        for seed in s.seeds:
            name = f"{model}-seed{seed}"
            run = study.run(name, ClassifierConfig(model=model, data=s.data, epochs=s.epochs, lr=s.lr, seed=seed,
                                                   device=s.device, precision=s.precision))
            last = run.history[-1]
            rows.append({"model": model, "depth": int(model.removeprefix("plain").removeprefix("resnet")),
                         "residual": model.startswith("resnet"), "seed": seed,
                         "params": sum(p.numel() for p in run.model.parameters()),
                         "train_error": 1 - last["train_acc"], "test_error": 1 - run.results["test"]["accuracy"],
                         "seconds": run.results["train_seconds"]})
            histories.setdefault(model, []).append([1 - h["train_acc"] for h in run.history])
            log(f"[{len(rows)}/{total}] {name}: training error {100 * rows[-1]['train_error']:.2f}%, "
                f"test error {100 * rows[-1]['test_error']:.2f}%")
    summary = []
    for model in s.models:
        rs = [r for r in rows if r["model"] == model]
        (tr, tr_sd), (te, te_sd) = (mean_std(r[key] for r in rs) for key in ("train_error", "test_error"))
        summary.append({"model": model, "depth": rs[0]["depth"], "residual": rs[0]["residual"],
                        "params": rs[0]["params"], "train_error_mean": tr, "train_error_std": tr_sd,
                        "test_error_mean": te, "test_error_std": te_sd,
                        "seconds_mean": statistics.mean(r["seconds"] for r in rs), "seeds": len(rs)})
    result = DepthResult(study.path, rows, summary)
    study.write(rows, {"summary": summary}, result.table())
    from ..viz import depth_curves_plot

    curves = {m: mean_curve(h) for m, h in histories.items()}
    depth_curves_plot(curves, study.path / "training_error.png",
                      f"training error per epoch on {s.data} (mean over {len(s.seeds)} seed(s))")
    study.write_report()
    return result
