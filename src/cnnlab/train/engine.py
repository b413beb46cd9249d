"""The training loop. ``fit(config)`` reads top to bottom: set up, then for each epoch train, validate,
checkpoint and maybe stop early; then test, plot and report.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import CnnlabError
from .checkpoint import load_state, load_weights, save_state, save_weights
from .config import TrainConfig
from .rundir import RunDir
from .setup import (
    build_model,
    build_optimizer,
    load_data,
    loaders,
    lr_factor,
    make_task,
    penalty,
    prepare_data,
    resolve_device,
    set_determinism,
)
from .tasks import ClassificationTask, topk_correct


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite."""


@dataclass
class FitResult:
    run_dir: Path
    history: list[dict]
    test: dict
    model: nn.Module
    extra: dict = dataclasses.field(default_factory=dict)  # what a recipe adds to results.json


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def train_one_epoch(model, loader, task, optimizer, scheduler, config, device, scaler, progress) -> dict:
    model.train()
    total_loss, seen, stats = 0.0, 0, {}
    for step, (x, y) in enumerate(loader):
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x, y = task.inputs(x, y)  # e.g. a corrupted input and the clean target (denoising)
        with _autocast(device, config.precision):
            out = model(x)
            loss = task.loss(out, y)
        reg = penalty(model, config.l1, config.l2)
        if reg is not None:
            loss = loss + reg
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"the loss became {loss.item()} at batch {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        n = len(y)
        total_loss += loss.item() * n
        for key, value in task.batch_stats(out, y).items():
            stats[key] = stats.get(key, 0) + value
        seen += n
        progress(step + 1, total_loss / seen)
    return {"train_loss": total_loss / seen, **{f"train_{k}": v / seen for k, v in stats.items()}}


@torch.no_grad()
def evaluate(model, loader, task: ClassificationTask, device: torch.device, precision: str = "fp32",
             channels_last: bool = False) -> dict:
    """Loss, top-1 (and top-5 with more than 5 classes) accuracy and the confusion matrix of a split.

    The loss is the plain cross-entropy (no label smoothing), comparable across runs.
    """
    task = dataclasses.replace(task, label_smoothing=0.0)
    model.eval()
    total_loss, correct, correct5, seen = 0.0, 0, 0, 0
    k = task.num_classes
    confusion = torch.zeros(k, k, dtype=torch.long)
    for x, y in loader:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, precision):
            out = model(x)
            loss = task.loss(out, y)
        n = len(y)
        total_loss += loss.item() * n
        probs = task.probabilities(out)
        pred = probs.argmax(1)
        correct += int((pred == y).sum())
        if k > 5:
            correct5 += topk_correct(probs, y, 5)
        confusion += torch.bincount((y * k + pred).cpu(), minlength=k * k).reshape(k, k)
        seen += n
    if seen == 0:
        raise CnnlabError("cannot evaluate on an empty split")
    result = {"loss": total_loss / seen, "accuracy": correct / seen, "count": seen}
    if k > 5:
        result["top5"] = correct5 / seen
    result["confusion_matrix"] = confusion.tolist()
    return result


class _Progress:
    """A tqdm bar per epoch, only on a terminal and without --quiet."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None

    def start(self, epoch: int, epochs: int, total: int):
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"epoch {epoch}/{epochs}", leave=False, file=sys.stderr)
        return self

    def __call__(self, done: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _improved(config: TrainConfig, val: dict, best: float | None) -> tuple[bool, float]:
    score = val["loss"] if config.monitor == "val_loss" else -val["accuracy"]
    return best is None or score < best, score


@dataclass
class EpochEnd:
    """What an ``on_epoch_end`` callback sees after each epoch's checkpoint is written."""

    epoch: int
    record: dict
    model: nn.Module
    loaders: dict
    task: ClassificationTask
    device: torch.device

    def evaluate(self, split: str) -> dict:
        """The task's metrics of the model on a split (accuracy for a classifier, PSNR for an autoencoder,
        IoU for segmentation)."""
        return self.task.evaluation().evaluate(self.model, self.loaders[split], self.device)


class Recipe:
    """What :func:`fit` trains and how: the default builds a new model and trains all of it.

    Transfer learning (:class:`cnnlab.transfer.TransferRecipe`) overrides these hooks; the loop, the
    checkpoints, resume and the run directory stay the engine's.
    """

    def prepare(self, config: TrainConfig, resuming: bool) -> TrainConfig:
        """Complete the configuration before the run starts (it is what config.yaml records)."""
        return config

    def load_data(self, config: TrainConfig):
        return load_data(config)

    def make_task(self, data, config: TrainConfig) -> ClassificationTask:
        return make_task(data, config)

    def build_model(self, config: TrainConfig, data, task: ClassificationTask) -> nn.Module:
        return build_model(config, data.channels, task.num_outputs)

    def prepare_data(self, config: TrainConfig, model: nn.Module, data):
        """Resize/pad the splits for the model and normalise them; returns ``(data, Preprocess)``."""
        return prepare_data(config, model, data)

    def loaders(self, data, config: TrainConfig, device, preprocess) -> dict:
        """The train/val/test batch iterators over the prepared data; the default yields ``(images, labels)``
        (a segmentation recipe yields ``(images, masks)``)."""
        return loaders(data, config, device, preprocess)

    def param_groups(self, config: TrainConfig, model: nn.Module) -> list[dict] | None:
        """Parameter groups for the optimiser (each may carry its own ``lr``); None: one group."""
        return None

    def start_epoch(self, model: nn.Module, epoch: int, log) -> None:
        """Called before each training epoch (0-based), also on resume: set what trains in this epoch."""

    def train_view(self, model: nn.Module, batches: dict, config: TrainConfig, device, log) -> tuple:
        """The module and the train/val batches the loop steps through (e.g. a head over cached features)."""
        return (torch.compile(model) if config.compile else model), batches

    def meta(self, meta: dict) -> dict:
        return meta

    def finish(self, result: FitResult, run: RunDir, batches: dict, task, device, log) -> None:
        """After the test evaluation, before the report: add what the recipe measures to the run."""


def fit(config: TrainConfig, resume: str | Path | None = None, log=print,
        on_epoch_end: Callable[[EpochEnd], bool | None] | None = None, recipe: Recipe | None = None) -> FitResult:
    """Train a classifier as configured and write its run directory; ``resume`` continues a run.

    ``on_epoch_end(EpochEnd)`` is called after every epoch; returning True stops training there (the test
    evaluation and the report still run). ``recipe`` changes what is trained (default: a new model, or the
    transfer recipe when ``config.transfer`` is set).
    """
    config.validate()
    if recipe is None:
        if config.autoencoder is not None:
            from ..ae.recipe import AERecipe

            recipe = AERecipe()
        elif config.segment is not None:
            from ..segment.recipe import SegmentRecipe

            recipe = SegmentRecipe()
        elif config.transfer is not None:
            from ..transfer import TransferRecipe

            recipe = TransferRecipe()
        else:
            recipe = Recipe()
    config = recipe.prepare(config, resume is not None)
    set_determinism(config)
    device = resolve_device(config.device)

    # data, task, model
    data = recipe.load_data(config)
    task = recipe.make_task(data, config)
    model = recipe.build_model(config, data, task)
    data, preprocess = recipe.prepare_data(config, model, data)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    batches = recipe.loaders(data, config, device, preprocess)
    optimizer = build_optimizer(config, model, recipe.param_groups(config, model))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, len(batches["train"])))
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")

    run = RunDir.open(config, resume)
    meta = recipe.meta(run.meta(config, data, preprocess, task, model))
    start, history, best, stale = 0, [], None, 0
    if resume is not None:
        state = load_state(run.state_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        start, history, best, stale = state["epoch"], state["history"], state["best"], state["stale"]
        if start >= config.epochs:
            raise CnnlabError(f"the run already has {start} epochs; pass a larger --epochs to continue it")
        log(f"resuming {run.path} at epoch {start + 1}/{config.epochs}")
        run.save_config(config)
    else:
        run.start(config, meta)
    if config.tensorboard:
        run.tensorboard()
    log(f"{data.describe()}; model {config.model} ({sum(p.numel() for p in model.parameters()):,} parameters) "
        f"on {device}, input {'x'.join(map(str, (data.channels, *preprocess.size)))}")
    t_start = time.perf_counter()  # training time includes what the view prepares (e.g. a feature cache)
    step_model, loop = recipe.train_view(model, batches, config, device, log)

    try:
        progress = _Progress(not config.quiet)
        for epoch in range(start, config.epochs):
            torch.manual_seed(config.seed * 1_000_003 + epoch)  # dropout etc.: each epoch replayable on resume
            recipe.start_epoch(model, epoch, log)
            loop["train"].set_epoch(epoch)
            t0 = time.perf_counter()
            try:
                train_m = train_one_epoch(step_model, loop["train"], task, optimizer, scheduler, config, device,
                                          scaler, progress.start(epoch + 1, config.epochs, len(loop["train"])))
            except TrainingDiverged as e:
                last = f"; the last good checkpoint is {run.last_path}" if run.last_path.exists() else ""
                raise TrainingDiverged(f"training diverged in epoch {epoch + 1}: {e}; lower --lr or set "
                                       f"--grad-clip{last}") from None
            finally:
                progress.close()
            val = task.evaluation().evaluate(step_model, loop["val"], device, config.precision, config.channels_last)
            record = {"epoch": epoch + 1, **train_m, **task.record(val), "lr": optimizer.param_groups[0]["lr"],
                      "seconds": time.perf_counter() - t0}
            history.append(record)
            improved, score = _improved(config, val, best)
            if improved:
                best, stale = score, 0
                save_weights(run.best_path, model, {**meta, "epoch": epoch + 1})
            else:
                stale += 1
            save_weights(run.last_path, model, {**meta, "epoch": epoch + 1})
            save_state(run.state_path, {
                "epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": torch.get_rng_state(),
                "history": history, "best": best, "stale": stale,
            })
            run.log_epoch(history)
            if not config.quiet:
                log(f"epoch {epoch + 1:>3}/{config.epochs}  train_loss {record['train_loss']:.4f}  "
                    f"val_loss {record['val_loss']:.4f}  {task.format_record(record)}  "
                    f"lr {record['lr']:.2e}  {record['seconds']:.1f}s")
            if config.early_stopping and stale >= config.early_stopping:
                log(f"early stopping: no improvement of {config.monitor} for {stale} epochs")
                break
            if on_epoch_end is not None and on_epoch_end(EpochEnd(epoch + 1, record, model, batches, task, device)):
                log(f"stopped by on_epoch_end after epoch {epoch + 1}")
                break
    except (TrainingDiverged, KeyboardInterrupt) as e:
        if run.discard_if_empty() and isinstance(e, TrainingDiverged):
            raise TrainingDiverged(f"{e}; no epoch completed, so the run directory {run.path} was removed"
                                   ) from None
        e.run_dir = run.path  # the command line offers `--resume` with it
        raise
    train_seconds = time.perf_counter() - t_start

    if config.early_stopping:  # restore the best weights
        model.load_state_dict(load_weights(run.best_path)[0])
    test = task.evaluation().evaluate(model, batches["test"], device, config.precision, config.channels_last)
    stopped_early = bool(config.early_stopping) and len(history) < config.epochs
    result = FitResult(run.path, history, test, model)
    recipe.finish(result, run, batches, task, device, log)
    run.finish(history, test, data.classes, train_seconds, stopped_early, config, result.extra)
    return result
