"""Everything the loop needs, built from a config: device, data, model, optimiser, schedule."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import torch
from torch import nn

from ..data import ImageData, load_dataset
from ..data.loader import Augment, InMemoryLoader
from ..data.prepare import Preprocess, channel_stats, input_geometry
from ..data.streaming import StreamingData, StreamingLoader
from ..errors import CnnlabError
from ..models import create_model
from .config import TrainConfig
from .tasks import ClassificationTask


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CnnlabError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CnnlabError("--device mps was asked for but MPS is not available; use --device cpu or auto")
    return torch.device(name)


def set_determinism(config: TrainConfig) -> None:
    if config.threads:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def build_model(config: TrainConfig, in_chans: int, num_outputs: int) -> nn.Module:
    kwargs = dict(config.model_kwargs)
    for key, value in (("in_chans", in_chans), ("num_classes", num_outputs)):
        if key in kwargs and kwargs[key] != value:
            raise CnnlabError(f"model_kwargs sets {key}={kwargs[key]} but the data needs {value}")
        kwargs[key] = value
    if config.dropout is not None:
        kwargs.setdefault("drop_rate", config.dropout)
    model = create_model(config.model, init=config.init, **kwargs)
    if config.dropout is not None:  # also the dropouts a builder does not expose as drop_rate
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = config.dropout
    return model


def make_task(data: ImageData, config: TrainConfig) -> ClassificationTask:
    if data.train.labels is None:
        raise CnnlabError(f"dataset '{data.name}' has no labels, so it cannot train a classifier; "
                          f"it is for autoencoders")
    if data.num_classes < 2:
        raise CnnlabError(f"dataset '{data.name}' has {data.num_classes} class; a classifier needs at least 2")
    binary = config.loss == "bce" or (config.loss == "auto" and data.num_classes == 2)
    if binary and data.num_classes != 2:
        raise CnnlabError(f"--loss bce needs a two-class dataset; '{data.name}' has {data.num_classes} classes")
    return ClassificationTask(data.num_classes, binary, config.label_smoothing, config.aux_weight)


def prepare_data(config: TrainConfig, model: nn.Module, data):
    """Resize/pad every split to the model's input and normalise with the training split's statistics.

    Streamed data keeps its files; its statistics come from up to 512 training images.
    """
    size, pad = input_geometry(model, data.image_size, config.image_size)
    geo = Preprocess(size, pad, [0.0] * data.channels, [1.0] * data.channels)
    if isinstance(data, StreamingData):
        from ..data import decode_image

        sample = []
        for f in data.train.files[:512]:
            try:
                sample.append(geo.geometry(decode_image(f, data.channels).unsqueeze(0)))
            except Exception:
                continue
        if not sample:
            raise CnnlabError(f"no readable image among the first training files of '{data.name}'")
        return data, Preprocess(size, pad, *channel_stats(torch.cat(sample)))
    data = data.map(geo.geometry)
    mean, std = channel_stats(data.train.images)
    pre = Preprocess(size, pad, mean, std)
    return data.map(pre.normalise), pre


def default_augment(height: int, flip_ok: bool, enabled: bool) -> Augment | None:
    """Random crop after padding by an eighth of the side, and horizontal flips where they keep the meaning."""
    return Augment(crop_pad=max(1, height // 8), hflip=flip_ok) if enabled else None


def loaders(data, config: TrainConfig, device: torch.device, preprocess: Preprocess | None = None) -> dict:
    if isinstance(data, StreamingData):
        return {split: StreamingLoader(files, data.channels, preprocess, config.batch_size, device,
                                       shuffle=split == "train",
                                       augment=default_augment(preprocess.size[0], data.flip_ok,
                                                               config.augment and split == "train"),
                                       seed=config.seed)
                for split, files in data.splits().items()}
    out = {}
    for split, s in data.splits().items():
        x, y = s.images.to(device), s.labels.to(device)
        train = split == "train"
        out[split] = InMemoryLoader(x, y, config.batch_size if train else max(256, config.batch_size),
                                    shuffle=train,
                                    augment=default_augment(data.image_size[0], data.flip_ok, config.augment and train),
                                    seed=config.seed)
    return out


def load_data(config: TrainConfig) -> ImageData:
    return load_dataset(config.data, seed=config.seed, val_fraction=config.val_fraction,
                        test_fraction=config.test_fraction)


def build_optimizer(config: TrainConfig, model: nn.Module, groups: list[dict] | None = None
                    ) -> torch.optim.Optimizer:
    """The configured optimiser over the trainable parameters, or over ``groups`` (each a dict with
    ``params`` and optionally its own ``lr``, as torch.optim takes them)."""
    params = [p for p in model.parameters() if p.requires_grad] if groups is None else \
        [p for g in groups for p in g["params"]]
    if config.nesterov and config.optimizer != "sgd":
        raise CnnlabError("--nesterov applies to --optimizer sgd only")
    if config.optimizer == "sgd":
        cls, kwargs = torch.optim.SGD, dict(momentum=config.momentum, nesterov=config.nesterov)
    else:
        cls, kwargs = (torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW), {}
    # The fused kernels update every parameter in one pass: on a CPU, Adam's step on ResNet-18 drops from
    # ~33 ms to ~9 ms, a third more images per second at 32x32 (benchmarks/train_throughput.py).
    device = params[0].device.type if params else "cpu"
    fused = device in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return cls(params if groups is None else groups, lr=config.lr, weight_decay=config.weight_decay, fused=fused,
               **kwargs)


def lr_factor(config: TrainConfig, steps_per_epoch: int):
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
