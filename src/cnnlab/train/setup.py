"""What the loop needs for any kind of run, built from a config: device, determinism, optimiser, schedule,
penalties; and the check that a step fits in memory before the first one is taken."""

from __future__ import annotations

import logging
import math
import os
import random

import numpy as np
import torch
from torch import nn

from .. import _optim as optim
from .._machine import available_cores, available_memory
from ..errors import CnnlabError
from .config import RunConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CnnlabError(f"--device {name} was asked for but no CUDA GPU is available; use --device cpu or auto")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise CnnlabError(f"--device {name}: this machine has {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CnnlabError("--device mps was asked for but MPS is not available; use --device cpu or auto")
    return torch.device(name)


def set_determinism(config: RunConfig, share: int = 1) -> None:
    """Seed every generator and set the threads: ``config.threads``, else never more than this process's share
    of the cores it may use (``share``: the processes of a distributed job on this machine)."""
    cores = max(1, available_cores() // share)
    if config.threads:
        torch.set_num_threads(config.threads)
    elif torch.get_num_threads() > cores:
        torch.set_num_threads(cores)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def compiled(model: nn.Module) -> nn.Module:
    """``torch.compile(model)``. On a machine without a CUDA GPU, a CUDA build of PyTorch logs, as it first
    compiles, "No CUDA runtime is found, using CUDA_HOME=..." in its own log format: a note on its C++ build
    settings that concerns no CPU kernel, so that one line is dropped (a filter on that logger, nothing else)."""
    if not torch.cuda.is_available():
        logging.getLogger("torch.utils.cpp_extension").addFilter(_without_cuda_runtime_note)  # added once
    return torch.compile(model)


def _without_cuda_runtime_note(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("No CUDA runtime is found")


def build_optimizer(config: RunConfig, model: nn.Module, groups: list[dict] | None = None
                    ) -> torch.optim.Optimizer:
    """The configured optimiser over the trainable parameters, or over ``groups`` (each a dict with
    ``params`` and optionally its own ``lr``, as torch.optim takes them)."""
    params = [p for p in model.parameters() if p.requires_grad] if groups is None else \
        [p for g in groups for p in g["params"]]
    # torch.optim's own classes, less the import of the compiler that they would cost at start-up (optim.py)
    if config.optimizer == "sgd":
        cls, kwargs = optim.SGD, dict(momentum=config.momentum, nesterov=config.nesterov)
    else:
        cls, kwargs = (optim.Adam if config.optimizer == "adam" else optim.AdamW), {}
    # The fused kernels update every parameter in one pass: on a 2-core CPU, Adam's step on ResNet-18 drops from
    # 21 ms to 7 ms (README, Performance).
    device = params[0].device.type if params else "cpu"
    fused = device in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return cls(params if groups is None else groups, lr=config.lr, weight_decay=config.weight_decay, fused=fused,
               **kwargs)


def lr_factor(config: RunConfig, steps_per_epoch: int):
    """The schedule as a multiplier of the peak rate per optimiser step.

    Written as one closed-form function (rather than chained torch schedulers) so that warm-up composes with
    every schedule and the state to resume is only the step count.
    """
    total = config.epochs * steps_per_epoch
    warm = int(config.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if config.scheduler == "onecycle":  # Smith 2018: its own warm-up, lr/25 -> lr over 30%, then -> lr/1e4
            progress = step / max(1, total)
            if progress < 0.3:
                return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * progress / 0.3))
            return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (progress - 0.3) / 0.7))
        if step < warm:
            return (step + 1) / warm
        if config.scheduler == "none":
            return 1.0
        if config.scheduler == "step":
            return config.gamma ** (step // (config.step_size * steps_per_epoch))
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return 0.5 * (1 + math.cos(math.pi * progress))  # cosine

    return factor


def penalty(model: nn.Module, l1: float, l2: float) -> torch.Tensor | None:
    """L1/L2 penalties on the weights of convolutions and linear layers (not biases or norm layers)."""
    if not l1 and not l2:
        return None
    total = None
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight
            term = (l1 * w.abs().sum() if l1 else 0) + (l2 * w.square().sum() if l2 else 0)
            total = term if total is None else total + term
    return total


def step_memory(model: nn.Module, input_shape: tuple[int, ...]) -> int | None:
    """An estimate of the bytes one training step holds: every layer's output for a batch of
    ``input_shape`` (what autograd keeps for the backward pass), plus the weights, their gradients and two
    optimiser moments. Measured on one image and scaled by the batch: a real forward pass in eval mode (it
    changes no statistic) where the image is small, PyTorch's meta device (shapes only, no memory; its first use
    costs a second of imports) where one image alone could be too large. None when the model cannot run there."""
    from torch.func import functional_call

    n, *image = input_shape
    per_image = 0

    def count(module, inputs, output) -> None:
        nonlocal per_image
        for t in (output if isinstance(output, (tuple, list)) else [output]):
            if isinstance(t, torch.Tensor):
                per_image += t.numel() * 4

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    was_training = model.training
    try:
        if math.prod(image) <= 2**20:
            with torch.no_grad():
                model.eval()(torch.zeros(1, *image))
        else:
            state = {k: torch.empty_like(v, device="meta") for k, v in model.state_dict(keep_vars=True).items()}
            functional_call(model.eval(), state, (torch.empty(1, *image, device="meta"),))
    except Exception:  # a model that cannot run this way: no estimate
        return None
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return per_image * n + 16 * sum(p.numel() for p in model.parameters())


def check_step_fits(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> None:
    """Refuse, in one line, a training step that would not fit in the memory available (rather than let the
    system kill the process or the allocator fail deep inside a layer)."""
    needed, free = step_memory(model, input_shape), available_memory(device)
    if needed is None or free is None or needed <= 0.9 * free:
        return
    n, *image = input_shape
    raise CnnlabError(f"one training step needs about {needed / 2**30:.1f} GiB ({n} images of "
                      f"{'x'.join(map(str, image))}) but {free / 2**30:.1f} GiB are free on {device}; lower "
                      f"--batch-size or --image-size")
