"""``cnnlab experiment efficiency``: what 1x1 and depthwise separable convolutions save, on paper and on this
machine. No training: seconds.

Three ways to map ``C`` channels to ``C`` channels over a 3x3 neighbourhood, each convolution followed by batch
norm and ReLU as in the networks that use them:

- **standard**: one 3x3 convolution, ``9 C^2`` weights;
- **1x1-reduced** (Inception, Szegedy et al. 2015): a 1x1 convolution to ``C / r`` channels, then the 3x3
  one back to ``C``: ``C^2 / r + 9 C^2 / r``;
- **depthwise separable** (MobileNet, Howard et al. 2017): a 3x3 filter per channel, then a 1x1 convolution:
  ``9 C + C^2``, a share ``1/C + 1/9`` of the standard one's weights and multiply-adds.

And the paper's own comparison (Table 4): MobileNet v1 against the same network with full convolutions,
4.2M vs 29.3M parameters and 569M vs 4,866M multiply-adds at 224x224. Parameters and multiply-adds are
counted by :func:`cnnlab.summary` from the modules themselves; times are medians of repeated forward and
forward + backward passes on the device the experiment runs on.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .._machine import cpu_description
from .._options import check, like, option
from ..errors import CnnlabError
from ..inspect import format_table, human, summary
from ..models import create_model
from ..nn.conv import ConvNormAct, DepthwiseSeparableConv
from ..train import RunConfig
from ..train.setup import resolve_device
from ._study import Study


@dataclass
class EfficiencySettings:
    """The options of ``cnnlab experiment efficiency`` (saved in experiment.json)."""

    channels: int = option(256, "input and output channels of the compared layers", low=8, high=4096)
    size: int = option(28, "side of the feature map the layers run on", low=3, high=1024)
    reduce: int = option(4, "the 1x1-reduced branch first maps C channels to C / REDUCE", low=2, high=64)
    batch: int = option(32, "feature maps per timed pass of the layers", low=1, high=65_536)
    image_size: int = option(224, "image side for MobileNet v1 against its full-convolution form", low=32,
                             high=1024)
    net_batch: int = option(8, "images per timed pass of the networks", low=1, high=4096)
    repeats: int = option(7, "timed passes of each (the median is reported, after three untimed ones)", low=1,
                          high=10_000)
    device: str = like(RunConfig, "device", "auto")


QUICK = EfficiencySettings(channels=128, size=14, batch=8, image_size=64, net_batch=1, repeats=2)


@dataclass
class EfficiencyResult:
    path: Path
    rows: list[dict]   # one per layer or network
    cpu: str

    def table(self) -> str:
        body = []
        for r in self.rows:
            body.append([r["group"], r["name"], f"{r['params']:,}", human(r["macs"]), f"{r['params_ratio']:.3f}",
                         f"{r['macs_ratio']:.3f}", f"{r['forward_ms']:.2f}", f"{r['forward_ratio']:.2f}",
                         f"{r['train_ms']:.2f}", f"{r['train_ratio']:.2f}"])
        return format_table(["compared", "form", "parameters", "MACs/input", "params x", "MACs x", "forward ms",
                             "time x", "fwd+bwd ms", "time x"], body, right=[False, False] + [True] * 8)


def _layers(c: int, r: int) -> dict[str, nn.Module]:
    return {"standard 3x3": ConvNormAct(c, c, 3),
            f"1x1 to C/{r}, then 3x3 (Inception)": nn.Sequential(ConvNormAct(c, c // r, 1), ConvNormAct(c // r, c, 3)),
            "depthwise separable (MobileNet)": DepthwiseSeparableConv(c, c)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(module: nn.Module, x: torch.Tensor, repeats: int, train: bool) -> float:
    """Median milliseconds of a forward pass (eval mode, no gradients) or of a forward and backward pass
    (training mode), after three untimed passes (the first call of a shape sets up its kernels). Where ``x``
    requires a gradient, the backward pass computes it, as it does for a layer inside a network."""
    module.train(train)
    times = []
    for i in range(repeats + 3):
        _sync(x.device)
        t = time.perf_counter()
        if train:
            module(x).float().mean().backward()
            module.zero_grad(set_to_none=True)
            x.grad = None
        else:
            with torch.no_grad():
                module(x)
        _sync(x.device)
        if i >= 3:
            times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def _measure(group: str, modules: dict[str, nn.Module], shape: tuple[int, int, int], batch: int, repeats: int,
             device: torch.device, log, inside: bool = False) -> list[dict]:
    """``inside``: the modules are layers inside a network, whose backward pass also computes the gradient of
    their input (without it, the standard convolution skipped the costliest part of its backward pass, which
    the two-convolution forms still paid for their second convolution)."""
    rows = []
    x = torch.randn(batch, *shape, device=device, requires_grad=inside)
    for name, m in modules.items():
        s = summary(m.eval(), shape, device="cpu")
        m.to(device)
        rows.append({"group": group, "name": name, "params": s.total_params, "macs": s.total_macs,
                     "forward_ms": timed(m, x, repeats, train=False), "train_ms": timed(m, x, repeats, train=True)})
        log(f"{group}: {name}: {s.total_params:,} parameters, {human(s.total_macs)} MACs, "
            f"{rows[-1]['forward_ms']:.2f} / {rows[-1]['train_ms']:.2f} ms")
        m.to("cpu")
    base = rows[0]
    for r in rows:
        r.update(params_ratio=r["params"] / base["params"], macs_ratio=r["macs"] / base["macs"],
                 forward_ratio=r["forward_ms"] / base["forward_ms"], train_ratio=r["train_ms"] / base["train_ms"])
    return rows


def run_efficiency_experiment(settings: EfficiencySettings | None = None, run_dir: str | Path | None = None,
                              log=print) -> EfficiencyResult:
    """Measure the layers and the networks; write the experiment directory."""
    s = settings or EfficiencySettings()
    check(s, lambda key: "--" + key.replace("_", "-"))
    if s.channels // s.reduce < 1:
        raise CnnlabError(f"--reduce {s.reduce} leaves no channel of --channels {s.channels} for the 1x1 "
                          f"reduction; give --reduce at most {s.channels}")
    device = resolve_device(s.device)  # a device this machine lacks: one line, before the directory exists
    with Study.create("efficiency", s, run_dir, resumable=False) as study:
        cpu = cpu_description() if device.type == "cpu" else torch.cuda.get_device_name(device)
        log(f"measuring on {cpu} ({torch.get_num_threads()} threads)" if device.type == "cpu" else
            f"measuring on {cpu}")
        torch.manual_seed(0)
        c = s.channels
        rows = _measure(f"layer, {c} channels at {s.size}x{s.size}", _layers(c, s.reduce), (c, s.size, s.size),
                        s.batch, s.repeats, device, log, inside=True)
        nets = {"full convolutions": create_model("mobilenet_v1", full_conv=True),
                "depthwise separable (MobileNet v1)": create_model("mobilenet_v1")}
        rows += _measure(f"MobileNet v1 at {s.image_size}x{s.image_size}", nets, (3, s.image_size, s.image_size),
                         s.net_batch, s.repeats, device, log)
        result = EfficiencyResult(study.path, rows, cpu)
        study.write(rows, {"cpu": cpu, "threads": torch.get_num_threads(), "device": str(device), "summary": rows},
                    result.table())
        from ..viz import efficiency_plot

        efficiency_plot(rows, study.path / "efficiency.png", f"cost relative to the full convolution, on {cpu}")
        study.write_report()
        return result


__all__ = ["QUICK", "EfficiencyResult", "EfficiencySettings", "run_efficiency_experiment"]
