"""``cnnlab experiment architectures``: every family of the zoo on the same data, epochs and recipe.

The lecture's ImageNet chart (as in Canziani et al. 2016) puts each architecture at its top-1 accuracy against
the operations one image costs, with the bubble's size its parameters: AlexNet cheap and weak, VGG costly, and
GoogLeNet, ResNet, DenseNet and MobileNet better for fewer operations. This experiment draws our version: one
network per family in its small-input form, trained on the same data (digits by default), for the same
epochs, with the same optimiser, schedule and seeds, each fed images of the same side (``image_size``; LeNet-5
takes only its fixed 28x28). Per network it reports the parameters, the multiply-adds of one image at the input
it trained on (counted by :func:`cnnlab.summary` in eval mode), the mean seconds per epoch on this machine,
and the test accuracy over seeds; the plot puts accuracy against multiply-adds.

Beside it, the ImageNet chart itself, from what torchvision publishes with its weight enums (top-1 accuracy,
parameters and operations; read from the installed package, nothing downloaded, nothing measured here).
torchvision's "GFLOPS" are multiply-adds counted as :func:`cnnlab.summary` counts them (resnet18: 1.814G in
both), so the two charts' horizontal axes measure the same thing.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from .._options import like, option
from ..classify import ClassifierConfig
from ..data import load_dataset
from ..errors import CnnlabError
from ..inspect import format_table, human, summary
from ..models import create_model, list_models, model_meta
from ..train import RunConfig
from ._study import Study, mean_std, percent_spread, precision_setting

# One network per family of the zoo, the family's smallest (VGG-11 in its batch-norm form, GoogLeNet in
# torchvision's); MobileNet twice, for its two papers and ideas: depthwise separable convolutions (v1) and
# inverted residuals (v2). The tests check that every registered family is here.
FAMILY_MODELS = ("lenet5", "alexnet", "vgg11_bn", "googlenet", "inception_v3", "xception", "resnet18", "resnet20",
                 "pyramidnet110_a48", "fractalnet20", "attention56", "densenet121", "mobilenet_v1", "mobilenet_v2",
                 "efficientnet_b0")


@dataclass
class ArchitecturesSettings:
    """The options of ``cnnlab experiment architectures`` (saved in experiment.json). The defaults took 19
    minutes on 2 cores of an Intel Xeon (2026-12-04): one epoch of all fifteen networks trained in about 200 s
    there, and each run adds about 2.5 s (data, test, checkpoints)."""

    models: list[str] = option(list(FAMILY_MODELS), "networks to compare, each in its small-input form",
                               choices=list_models())
    data: str = option("digits", "dataset spec (each run splits it alike)", metavar="SPEC")
    image_size: int = like(RunConfig, "image_size", 16, help="side of every network's input (LeNet-5 keeps its fixed "
                                                             "28x28)", low=4)
    seeds: list[int] = option([0, 1], "seeds", low=0, high=2**32 - 1)
    epochs: int = like(RunConfig, "epochs", 4, help="epochs of every run")
    lr: float = like(RunConfig, "lr", 1e-3)
    device: str = like(RunConfig, "device", "auto")
    precision: str = precision_setting()


QUICK = ArchitecturesSettings(models=["lenet5", "resnet20", "mobilenet_v2"], data="digits@labels=0.25", seeds=[0],
                              epochs=2)


@dataclass
class ArchitecturesResult:
    path: Path
    rows: list[dict]       # one per run
    summary: list[dict]    # one per network: mean and spread over seeds
    imagenet: list[dict]   # torchvision's published figures, one row per weights

    def table(self) -> str:
        body = []
        for s in self.summary:
            acc = percent_spread(s, "accuracy")
            body.append([s["model"], s["family"], s["input"], f"{s['params']:,}", human(s["macs"]),
                         f"{s['epoch_seconds_mean']:.1f}", acc])
        return format_table(["network", "family", "input", "parameters", "MACs/image", "s/epoch",
                             "test accuracy (%)"], body, right=[False, False, False, True, True, True, True])


def _input_size(model: str, image_size: int) -> int | None:
    """What ``image_size`` a run of ``model`` gets: None for a fixed-size model (LeNet-5 takes only its own); a
    side below the model's minimum is a one-line error, before anything trains."""
    with torch.device("meta"):
        m = create_model(model, small_input=True)
    if m.fixed_input_size:
        return None
    _, h, w = m.min_input_size
    if image_size < max(h, w):
        raise CnnlabError(f"--image-size {image_size} is too small for {model}, which needs at least {h}x{w} "
                          f"(its small-input form); use --image-size {max(h, w)} or more, or leave {model} out")
    return image_size


def run_architectures_experiment(settings: ArchitecturesSettings | None = None, run_dir: str | Path | None = None,
                                 resume: str | Path | None = None, log=print) -> ArchitecturesResult:
    """Train every network on every seed into a new directory, or continue the one in ``resume``."""
    with Study.begin("architectures", ArchitecturesSettings, settings, run_dir, resume, _validate) as study:
        return _run(study, log)


def _validate(s: ArchitecturesSettings) -> None:
    for model in s.models:
        _input_size(model, s.image_size)
    load_dataset(s.data, seed=0)  # a bad spec fails before any training


def _measure(run, model: str, seed: int) -> dict:
    """One run's row: what it costs (parameters, multiply-adds of one image at its input, seconds per epoch)
    and how well it does."""
    net = run.model  # eval mode: GoogLeNet's auxiliary classifiers do not run, so their MACs do not count
    shape = (net.in_chans, *run.meta["preprocess"]["size"])
    counted = summary(net, shape)
    return {"model": model, "family": model_meta(model).family, "seed": seed, "input": "x".join(map(str, shape)),
            "params": sum(p.numel() for p in net.parameters()), "params_inference": counted.used_params,
            "macs": counted.total_macs, "epochs": len(run.history),
            "epoch_seconds": statistics.mean(h["seconds"] for h in run.history),
            "train_seconds": run.results["train_seconds"], "test_accuracy": run.results["test"]["accuracy"]}


def _run(study: Study, log) -> ArchitecturesResult:
    s = study.settings
    rows = []
    total = len(s.models) * len(s.seeds)
    for model in s.models:
        for seed in s.seeds:
            name = f"{model}-seed{seed}"
            config = ClassifierConfig(model=model, model_kwargs={"small_input": True}, data=s.data,
                                      image_size=_input_size(model, s.image_size), epochs=s.epochs, lr=s.lr,
                                      seed=seed, device=s.device, precision=s.precision)
            run = study.run(name, config)
            rows.append(_measure(run, model, seed))
            log(f"[{len(rows)}/{total}] {name}: {human(rows[-1]['macs'])} MACs, "
                f"{rows[-1]['epoch_seconds']:.1f} s/epoch, test accuracy {100 * rows[-1]['test_accuracy']:.2f}%")
    summary_rows = []
    for model in s.models:
        rs = [r for r in rows if r["model"] == model]
        accs = [r["test_accuracy"] for r in rs]
        summary_rows.append({"model": model, "family": rs[0]["family"], "input": rs[0]["input"],
                             "params": rs[0]["params"], "params_inference": rs[0]["params_inference"],
                             "macs": rs[0]["macs"],
                             "epoch_seconds_mean": statistics.mean(r["epoch_seconds"] for r in rs),
                             **dict(zip(("accuracy_mean", "accuracy_std"), mean_std(accs), strict=True)),
                             "seeds": len(rs)})
    imagenet = imagenet_reference()
    result = ArchitecturesResult(study.path, rows, summary_rows, imagenet)
    import torchvision

    study.write(rows, {"summary": summary_rows, "imagenet_reference": f"torchvision {torchvision.__version__} "
                                                                      f"weight metadata: imagenet_reference.csv"},
                result.table())
    study.write_csv("imagenet_reference.csv", imagenet)
    from ..viz import architectures_plot, imagenet_chart_plot

    architectures_plot(summary_rows, study.path / "accuracy_vs_macs.png",
                       f"test accuracy against multiply-adds on {s.data}, {s.epochs} epochs, the same recipe "
                       f"(mean over {len(s.seeds)} seed(s))", chance=1 / len(run.meta["classes"]))
    imagenet_chart_plot(chart_rows(imagenet), study.path / "imagenet_chart.png", imagenet_title())
    study.write_report()
    return result


# --- the ImageNet chart: torchvision's published figures ------------------------------------------------------

def imagenet_reference() -> list[dict]:
    """One row per torchvision classification weights with ImageNet-1K figures, from the metadata its weight
    enums ship with (``.meta``; nothing is downloaded): top-1 and top-5 accuracy (%), parameters, operations per
    image (torchvision's ``_ops``, its "GFLOPS": multiply-adds, in billions) at the crop it was evaluated at,
    and the cnnlab model of the same architecture, if the zoo has one."""
    import torchvision
    from torchvision.models import get_model_weights
    from torchvision.models import list_models as tv_models

    zoo = {model_meta(n).torchvision: n for n in list_models() if model_meta(n).torchvision}
    rows = []
    for arch in tv_models(module=torchvision.models):
        for weights in get_model_weights(arch):
            meta = weights.meta
            metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
            top1, ops = metrics.get("acc@1"), meta.get("_ops")
            if not isinstance(top1, (int, float)) or not math.isfinite(top1) or not isinstance(ops, (int, float)):
                continue
            rows.append({"architecture": arch, "weights": weights.name, "top1": top1, "top5": metrics.get("acc@5"),
                         "params": meta["num_params"], "gmacs": ops,
                         "crop": getattr(weights.transforms, "keywords", {}).get("crop_size"),
                         "cnnlab_model": zoo.get(arch, "")})
    return rows


def chart_rows(rows: list[dict]) -> list[dict]:
    """The points of the ImageNet chart: each architecture's IMAGENET1K_V1 weights, trained on ImageNet-1K
    alone, mostly with the paper's recipe (torchvision's later V2 weights use a newer recipe: resnet50 76.1% ->
    80.9%; the SWAG ones were pretrained on billions of Instagram images)."""
    return [r for r in rows if r["weights"] == "IMAGENET1K_V1"]


def imagenet_title() -> str:
    import torchvision

    return (f"ImageNet-1K: torchvision {torchvision.__version__}'s published figures for its IMAGENET1K_V1 weights "
            f"(not measured here)")
