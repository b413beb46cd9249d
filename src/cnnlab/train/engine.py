"""The training loop. ``fit(config)`` reads top to bottom: set up, then for each epoch train, validate,
checkpoint and maybe stop early; then test, plot and report.

The loop knows two protocols and no kind of run: a :class:`Recipe` says what is built and trained (a new
classifier, a transfer, an autoencoder, a segmentation network: each kind's package provides its own), and
its task (:class:`Task`) says what a batch means, what is optimised and how a split is measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from .._io import read_json_object
from .._machine import cpu_description, keep_freed_memory, release_freed_memory
from .._options import ignored, without_ignored
from ..errors import CnnlabError
from . import distributed
from .checkpoint import read_metadata
from .config import RunConfig
from .kinds import get_kind
from .layout import match_state_layout, resolve_channels_last
from .precision import BF16_GAIN, autocast, measure_precision, measures_precision, resolve_precision, runs_natively
from .rundir import RunDir, saved_config
from .setup import build_optimizer, check_step_fits, compiled, lr_factor, penalty, resolve_device, set_determinism


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite."""


class Task(Protocol):
    """What the loop asks of a kind's task (see :class:`cnnlab.classify.ClassificationTask`)."""

    def inputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's input and the loss's target for a training batch (e.g. a corrupted input and the clean
        target, for denoising)."""

    def loss(self, output: Any, target: torch.Tensor) -> torch.Tensor: ...

    def batch_stats(self, output: Any, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sums over a training batch, averaged per image into ``train_<key>``: tensors on the device, which the
        loop adds up without reading them (see :func:`train_one_epoch`)."""

    def evaluation(self) -> Task:
        """The task that validation and test use (a training-only loss term drops out)."""

    def evaluate(self, model: nn.Module, loader, device: torch.device, precision: str = "fp32",
                 channels_last: bool = False) -> dict:
        """The metrics of a split, ``loss`` among them."""

    def record(self, val: dict) -> dict:
        """The validation columns of metrics.csv (``val_loss`` among them)."""

    def format_record(self, record: dict) -> str:
        """The validation part of the per-epoch line."""


@dataclass
class FitResult:
    run_dir: Path
    history: list[dict]
    test: dict
    model: nn.Module
    extra: dict = dataclasses.field(default_factory=dict)  # what a recipe adds to results.json


# a resumed run's meta.json that cannot be read: it only records the run (the checkpoints hold what resuming needs)
RESUME_DAMAGED = ("the run directory is damaged; delete that file to continue the run without its record of the "
                  "earlier sessions")
SYNC_EVERY = 50  # steps between the loop's reads of device values (the finiteness check, the progress bar's loss)


def train_one_epoch(model, loader, task, optimizer, scheduler, config, device, scaler, progress,
                    sync_every: int = SYNC_EVERY, ranks: distributed.Ranks | None = None) -> dict:
    """One pass over ``loader``. The loss sums, the task's batch statistics and the finiteness check stay on the
    device: the host reads them every ``sync_every`` steps and at the end of the epoch, so that a GPU is never
    made to wait for the host between steps. A loss that is not finite ends training at the next read, naming
    its batch (the steps after it ran on a diverged model; the last checkpoint, of an earlier epoch, is good).
    With ``ranks`` of a distributed job, the sums and the check are over every process."""
    model.train()
    total_loss = torch.zeros((), device=device, dtype=torch.float32 if device.type == "mps" else torch.float64)
    bad_step = torch.full((), -1, dtype=torch.long, device=device)  # the first step with a non-finite loss
    bad_loss = torch.zeros((), device=device)
    stats: dict[str, torch.Tensor] = {}
    seen = steps = 0

    def check(done: int) -> None:
        anywhere = distributed.all_sum([(bad_step >= 0).float()], ranks)[0]  # in any process of a job
        if anywhere.item():
            if bad_step.item() < 0:
                raise TrainingDiverged("the loss became NaN or infinite in another process")
            raise TrainingDiverged(f"the loss became {bad_loss.item()} at batch {bad_step.item() + 1}")
        progress(done, (total_loss / seen).item())

    for step, (x, y) in enumerate(loader):
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x, y = task.inputs(x, y)
        with autocast(device, config.precision):
            out = model(x)
            loss = task.loss(out, y)
        reg = penalty(model, config.l1, config.l2)
        if reg is not None:
            loss = loss + reg
        first = ~torch.isfinite(loss.detach()) & (bad_step < 0)
        bad_step = torch.where(first, step, bad_step)
        bad_loss = torch.where(first, loss.detach().float(), bad_loss)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        n = len(y)
        total_loss += loss.detach().to(total_loss.dtype) * n
        for key, value in task.batch_stats(out, y).items():
            stats[key] = stats[key] + value if key in stats else value
        seen, steps = seen + n, step + 1
        if steps % sync_every == 0:
            check(steps)
        else:
            progress.step(steps)
    if not seen:
        raise CnnlabError("the training split gave no batch")
    check(steps)
    # the sums over every process of a distributed job (this process's own otherwise)
    total_loss, count, *sums = distributed.all_sum([total_loss, torch.tensor(float(seen), device=device),
                                                     *stats.values()], ranks)
    seen = count.item()
    return {"train_loss": total_loss.item() / seen,
            **{f"train_{k}": float(v) / seen for k, v in zip(stats, sums, strict=True)}}


class Progress:
    """A tqdm bar per epoch, only on a terminal and without --quiet. Its count moves every step; the running
    loss, a device value, is shown when the loop reads it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None

    def start(self, epoch: int, epochs: int, total: int):
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"epoch {epoch}/{epochs}", leave=False, file=sys.stderr)
        return self

    def step(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def __call__(self, done: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _measured_precision(config: RunConfig, device: torch.device, ranks: distributed.Ranks, resumed: bool,
                        kept: dict | None, measure, log: Callable[[str], None]) -> dict | None:
    """The precision ``auto`` trains with where a run measures its step (:func:`measures_precision`:
    a CPU with native bf16), as ``{"precision", "seconds"}``; None where the precision stays as resolved.
    A run ``resumed`` from a checkpoint measures nothing: it keeps what its first session measured,
    ``kept`` (None: that session did not measure, and trained as resolved), so that it does not change
    precision midway, also where it is resumed with an option under which a run does not measure
    (``--deterministic``, ``--compile``); only a process not known to have native bf16 turns it to fp32, and
    says so.
    In a distributed job every process measures (they train side by side, on shared cores), only if every
    one can, and all take rank 0's choice."""
    if device.type != "cpu" or config.precision != "auto" or (resumed and kept is None):
        return None
    able = runs_natively(kept["precision"], device) if resumed else measures_precision(config, device)
    if ranks.distributed:  # one process without native bf16 (a mixed cluster) keeps the whole job in fp32
        able = distributed.all_sum([torch.tensor(float(able))], ranks)[0].item() == ranks.world
    if resumed:
        if not able:
            where = "a CPU of this job" if ranks.distributed else "this CPU"
            log(f"precision fp32: the run began in {kept['precision']}, which {where} does not compute natively")
        return kept if able else None
    if not able:
        return None
    precision, seconds = distributed.share(ranks, measure())
    return {"precision": precision, "seconds": seconds}


def _sessions(meta_path: Path | None, start: int, trained: bool, device: torch.device, meta: dict) -> list[dict]:
    """meta.json's ``sessions``: the epoch each session of a run began its training at, the device, precision
    and memory layout it trained in and the machine (:func:`_machine`), oldest first. A run resumed elsewhere
    may change all of them (bf16 on a GPU, continued in fp32 on a CPU); meta.json's own ``precision`` is the
    latest session's, or that of a resume that only finished a trained run (its test and results), which adds
    no session. A session that completed no epoch is listed from its start until the run is resumed, which
    replaces it. A run written before sessions were recorded lists them from its next resume on (what its
    earlier epochs ran is not known: meta.json kept only the latest precision)."""
    earlier = []
    if meta_path is not None:
        before = read_json_object(meta_path, RESUME_DAMAGED).get("sessions", [])
        earlier = [s for s in before if s["from_epoch"] <= start]
    if trained:
        return earlier
    return [*earlier, {"from_epoch": start + 1, "device": device.type, "precision": meta["precision"],
                       "channels_last": meta["channels_last"], "machine": _machine(device)}]


def _machine(device: torch.device) -> str:
    """What a session trained on, for the report beside its times: ``AMD EPYC, AVX-512, native bf16, 2 cores;
    2 threads; torch 2.14.1`` (a speed means nothing without the CPU or GPU it ran on)."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{cpu_description()}; {_count(torch.get_num_threads(), 'thread')}" if device.type == "cpu" else device.type
    return f"{where}; torch {torch.__version__}"


def _improved(monitor: str, record: dict, best: float | None) -> tuple[bool, float]:
    """Whether ``record[monitor]`` beats ``best`` (a loss or an error falls, anything else rises)."""
    if monitor not in record:
        raise CnnlabError(f"monitor '{monitor}' is not measured by this kind of run; it measures "
                          f"{', '.join(k for k in record if k.startswith('val_'))}")
    score = record[monitor] if monitor.endswith(("loss", "mse")) else -record[monitor]
    return best is None or score < best, score


@dataclass
class EpochEnd:
    """What an ``on_epoch_end`` callback sees after each epoch (and its checkpoint, when one is written)."""

    epoch: int
    record: dict
    model: nn.Module
    loaders: dict
    task: Task
    device: torch.device

    def evaluate(self, split: str) -> dict:
        """The task's metrics of the model on a split (accuracy for a classifier, PSNR for an autoencoder,
        IoU for segmentation)."""
        return self.task.evaluation().evaluate(self.model, self.loaders[split], self.device)


class Recipe:
    """What :func:`fit` builds and trains. A kind of run provides one (``Kind.recipe()``); the loop, the
    checkpoints, resume and the run directory stay the engine's."""

    def prepare(self, config: RunConfig, resuming: bool) -> RunConfig:
        """Complete the configuration before the run starts (it is what config.yaml records)."""
        return config

    def load_data(self, config: RunConfig):
        """The dataset, split by the config's seed and fractions."""
        from ..data import load_dataset

        return load_dataset(config.data, seed=config.seed, val_fraction=config.val_fraction,
                            test_fraction=config.test_fraction, image_size=config.image_size)

    def make_task(self, data, config: RunConfig) -> Task:
        raise NotImplementedError

    def build_model(self, config: RunConfig, data, task: Task) -> nn.Module:
        raise NotImplementedError

    def prepare_data(self, config: RunConfig, model: nn.Module, data):
        """Fit the splits to the model (resize, normalise); returns ``(data, Preprocess)``."""
        raise NotImplementedError

    def loaders(self, data, config: RunConfig, device, preprocess) -> dict:
        """The train/val/test batch iterators over the prepared data (each with ``set_epoch``)."""
        raise NotImplementedError

    def param_groups(self, config: RunConfig, model: nn.Module) -> list[dict] | None:
        """Parameter groups for the optimiser (each may carry its own ``lr``); None: one group."""
        return None

    def start_epoch(self, model: nn.Module, epoch: int, log) -> None:
        """Called before each training epoch (0-based), also on resume: set what trains in this epoch."""

    def train_view(self, model: nn.Module, batches: dict, config: RunConfig, device, log) -> tuple:
        """The module and the train/val batches the loop steps through (e.g. a head over cached features).
        ``config`` is the steps' own: its memory layout as resolved for this run and device, and its precision
        as resolved before the run measures its step (``auto`` on a CPU with native bf16 chooses after the view,
        by timing it: :func:`~cnnlab.train.precision.measure_precision`)."""
        return (compiled(model) if config.compile else model), batches

    def meta(self, meta: dict) -> dict:
        """Add what rebuilds the model (its architecture and arguments) to the run's metadata."""
        return meta

    def test(self, model: nn.Module, loader, task: Task, device: torch.device, precision: str,
             channels_last: bool) -> dict:
        """The test split's metrics (results.json's ``test``): the task's evaluation in the run's precision and
        memory layout."""
        return task.evaluation().evaluate(model, loader, device, precision, channels_last)

    def finish(self, result: FitResult, run: RunDir, batches: dict, task, device, log) -> None:
        """After the test evaluation, before the report: add what the recipe measures to the run."""


def fit(config: RunConfig, resume: str | Path | None = None, log=print,
        on_epoch_end: Callable[[EpochEnd], bool | None] | None = None, recipe: Recipe | None = None) -> FitResult:
    """Train as configured and write the run directory; ``resume`` continues the run in that directory.

    The kind of run is the config's (a :class:`~cnnlab.classify.ClassifierConfig` trains a classifier, an
    :class:`~cnnlab.ae.AEConfig` an autoencoder, ...); ``recipe`` replaces the kind's recipe.
    ``on_epoch_end(EpochEnd)`` is called after every epoch; returning True stops training there (the test
    evaluation and the report still run).

    On a CPU with glibc, the process keeps the memory a step frees for the next step
    (:func:`cnnlab.keep_freed_memory`; unless the environment configures the allocator): a setting of the
    process, which stays after the run; the free memory itself is handed back when the run ends.
    """
    if not isinstance(config, RunConfig):
        raise CnnlabError(f"fit takes a run's config, e.g. cnnlab.ClassifierConfig(model='lenet5') or "
                          f"cnnlab.load_config('config.yaml'), not a {type(config).__name__}")
    config.validate()
    resolved = config.resolved()  # options left to the run: a continued run's own values, else the defaults
    if resolved is not config:
        config = (config.resolved(saved_config(resume)) if resume is not None else resolved).validate()
    config = config.located()  # config.yaml's paths are absolute: the run continues and is read from anywhere
    kind = get_kind(config.run_kind)
    recipe = recipe if recipe is not None else kind.recipe()
    config = recipe.prepare(config, resume is not None)
    ranks, device = distributed.start(resolve_device(config.device))  # one process: rank 0 of 1, as given
    failed = True
    try:
        with contextlib.ExitStack() as stack:
            if not ranks.main:  # rank 0 speaks for the job
                stack.enter_context(warnings.catch_warnings())
                warnings.simplefilter("ignore")
                log = _silent
            result = _fit_in(config, resume, recipe, kind, log, on_epoch_end, ranks, device)
        failed = False
        return result
    finally:
        distributed.stop(ranks, failed)
        if device.type == "cpu":
            release_freed_memory()  # what the steps kept (keep_freed_memory) goes back to the system


def _check_same_classes(trained_on: list | None, now: list, data: str) -> None:
    """Refuse to continue a run on classes other than its checkpoint's: a class folder renamed or the classes
    reordered, their number the same, would load into the same head and train each output as another class."""
    if trained_on is not None and list(trained_on) != list(now):
        shown = lambda classes: ", ".join(map(str, classes[:12])) + (", ..." if len(classes) > 12 else "")  # noqa: E731
        raise CnnlabError(f"the run was trained on {len(trained_on)} classes ({shown(trained_on)}) but '{data}' now "
                          f"gives {len(now)} ({shown(now)}); continuing would train its outputs as other classes: "
                          f"give the data its classes back, or start a new run")


def _silent(*args, **kwargs) -> None:
    pass


def _fit_in(config, resume, recipe, kind, log, on_epoch_end, ranks, device) -> FitResult:
    """Open the run directory (rank 0; the other processes follow it, read-only) and train."""
    for text in ignored(config):
        warnings.warn(text, stacklevel=3)
    config = without_ignored(config)  # config.yaml records what the run uses
    try:
        run = _open_run(config, resume, kind, ranks)
    except RuntimeError as e:  # a process lost before the run began
        peer = distributed.peer_failure(e, ranks)
        if peer is None:
            raise
        raise peer from None
    config = config.replace(run_dir=str(run.path))  # where the run is, whatever the config said
    try:
        return _fit(config, run, resume is not None, recipe, kind, log, on_epoch_end, ranks, device)
    except BaseException as e:
        peer = distributed.peer_failure(e, ranks)
        if peer is not None:
            peer.resume = (kind.command, run.path) if ranks.main and run.checkpoints.exists() else None
            raise peer from None
        if ranks.main and run.discard_if_empty() and isinstance(e, TrainingDiverged):
            raise TrainingDiverged(f"{e}; no epoch completed, so the run directory {run.path} was removed"
                                   ) from None
        if ranks.main and run.checkpoints.exists() and (isinstance(e, TrainingDiverged) or
                                                        not isinstance(e, CnnlabError)):
            e.resume = (kind.command, run.path)  # a stop or a crash: the command line offers to continue it
        raise
    finally:
        run.release()


def _open_run(config, resume, kind, ranks) -> RunDir:
    """The run directory: rank 0 creates or reopens it and tells the others where it is, or why it failed."""
    failed = run = None
    if ranks.main:
        try:
            run = RunDir.reopen(resume) if resume is not None else RunDir.create(config)
            if resume is not None:
                changed = config.defining_changes(run.config())
                if changed:
                    raise CnnlabError(f"--resume continues the run as it was configured; it cannot change "
                                      f"{', '.join(changed)} (start a new run instead)")
                _check_processes(run, ranks)
        except CnnlabError as e:
            if run is not None:  # refused: another process may take the run
                run.release()
            failed = e
        distributed.share(ranks, ("error", str(failed)) if failed else ("run", str(run.path)))
        if failed:
            raise failed
        distributed.announce(ranks, kind.command, run.path)
    else:
        what, text = distributed.share(ranks)
        if what == "error":  # rank 0 says why
            error = CnnlabError(text)
            error.relayed = True
            raise error
        run = RunDir.follow(text)
    return run


def _fit(config: RunConfig, run: RunDir, resuming: bool, recipe: Recipe, kind, log, on_epoch_end,
         ranks: distributed.Ranks, device: torch.device) -> FitResult:
    set_determinism(config, share=ranks.local_world)
    precision = resolve_precision(config.precision, device)  # config.yaml keeps what was asked (auto), meta.json this
    step_config = config.replace(precision=precision)

    # data, task, model: bad input that every process meets is said once
    with distributed.agreed(ranks):
        distributed.check_threads(config.threads, ranks.local_world)  # (under torchrun; --nproc checks at launch)
        data = recipe.load_data(config)
        described = data.describe()  # as loaded: in memory, prepare_data resizes it to the model's input
        task = recipe.make_task(data, config)
        model = recipe.build_model(config, data, task)
        data, preprocess = recipe.prepare_data(config, model, data)
        check_step_fits(model.train(), (config.batch_size, data.channels, *preprocess.size), device)
        model.to(device)
        channels_last = resolve_channels_last(config.channels_last, model, device)  # as precision: meta.json
        step_config = step_config.replace(channels_last=channels_last)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        batches = recipe.loaders(data, config, device, preprocess)
    optimizer = build_optimizer(config, model, recipe.param_groups(config, model))
    steps = len(distributed.shard(batches["train"], ranks))  # per epoch, of this process
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    split = {"seed": config.seed, "val_fraction": config.val_fraction, "test_fraction": config.test_fraction}
    meta = recipe.meta({"kind": kind.holds, "name": config.name, "data": config.data, "split": split,
                        "classes": data.classes, "preprocess": preprocess.to_dict(), "precision": precision,
                        "channels_last": channels_last,
                        "splits": {k: len(v) for k, v in data.splits().items()}, "processes": ranks.world})
    start, history, best, best_epoch, stale, trained, before, kept = 0, [], None, 0, 0, False, 0.0, None
    if resuming and distributed.share(ranks, run.checkpoints.exists() if ranks.main else None):
        # rank 0 reads the checkpoint (repairing what a kill left) and sends it: the other processes, maybe on
        # other machines, never read the run directory
        weights, saved, trained_on = distributed.share(ranks, (*run.checkpoints.resume(), read_metadata(
            run.checkpoints.last).get("classes")) if ranks.main else None)
        _check_same_classes(trained_on, meta["classes"], config.data)
        # the settings of each parameter group as this session's options give them (--lr, --weight-decay,
        # --momentum, --nesterov may change on resume): the saved state would bring back the first session's
        asked = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        try:
            model.load_state_dict(weights)
            optimizer.load_state_dict(saved["optimizer"])
            match_state_layout(optimizer)  # saved in one memory layout, maybe continued in the other
            scheduler.load_state_dict(saved["scheduler"])
            for group, settings in zip(optimizer.param_groups, asked, strict=True):
                group.update(settings)
            scheduler.base_lrs = [settings["initial_lr"] for settings in asked]
            # the schedule counts steps: where --batch-size changed the steps per epoch, the count is converted to
            # this session's steps (the old count put a run continued with smaller batches back near its start)
            if saved.get("steps_per_epoch") and saved["steps_per_epoch"] != steps:
                scheduler.last_epoch = round(scheduler.last_epoch * steps / saved["steps_per_epoch"])
            # the rate of the next step on the schedule as it is now: a run continued with more --epochs
            # stretches its schedule, and the saved rate is the old schedule's (0 at a cosine's end)
            for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas,
                                           strict=True):
                group["lr"] = base * factor(scheduler.last_epoch)
            if saved["scaler"]:  # empty where the earlier sessions did not scale the loss (fp32, bf16): start it
                scaler.load_state_dict(saved["scaler"])
            torch.set_rng_state(saved["rng"])
        except (RuntimeError, ValueError, KeyError) as e:  # e.g. a folder dataset that gained a class since
            raise CnnlabError(f"the checkpoint of {run.path} does not fit the model and data as they are built now "
                              f"({described}): {str(e).splitlines()[-1].strip()[:200]}") from None
        start, history, best, stale = saved["epoch"], saved["history"], saved["best"], saved["stale"]
        best_epoch = saved.get("best_epoch", 0)
        before = saved.get("train_seconds", 0.0)  # the training time of the earlier sessions
        kept = saved.get("precision_measured")  # what auto chose when the run began, if it measured
        stopped = bool(config.early_stopping and stale >= config.early_stopping)
        trained = start >= config.epochs or stopped
        # finished: its results and, written last, its report (a stop between them left a run whose resume
        # was refused and whose report was missing its charts: finishing it again writes them all)
        if trained and (run.path / "results.json").is_file() and (run.path / "report.html").is_file():
            raise CnnlabError(f"the run already has {_count(start, 'epoch')}; pass a larger --epochs to continue it"
                              if start >= config.epochs else
                              f"the run stopped early after {_count(start, 'epoch')} ({config.monitor} did not "
                              f"improve for {stale}); continue it with --early-stopping 0 (or a larger patience), or "
                              f"start a new run")
        if start > config.epochs:  # stopped before its end, and asked for fewer epochs than it has trained
            raise CnnlabError(f"the run already has {_count(start, 'epoch')}, more than --epochs {config.epochs}; pass "
                              f"--epochs {start} to finish it as it is, or more to continue it")
        if trained:  # stopped after its last epoch, before its results: only those remain
            log(f"{run.path} trained its {_count(start, 'epoch')}; finishing it (test, results, report)")
        else:
            log(f"resuming {run.path} at epoch {start + 1}/{config.epochs}")
        if ranks.main:
            run.save_config(config)
            meta["sessions"] = _sessions(run.path / "meta.json", start, trained, device, meta)
            run.save_meta(meta)
    else:
        if resuming and ranks.main and any((run.path / f).is_file() for f in ("metrics.csv", "results.json")):
            raise CnnlabError(f"'{run.path}' has trained epochs but no checkpoint to continue them from (its "
                              f"checkpoints/ is gone); its results stay as they are: start a new run")
        if resuming:
            log(f"{run.path} completed no epoch: starting it again")
        if ranks.main:
            if resuming:
                run.clear()
            meta["sessions"] = _sessions(None, 0, False, device, meta)
            run.start(config, meta)
    if config.tensorboard and ranks.main:
        run.tensorboard()
    log(f"{described}; model {config.name} ({sum(p.numel() for p in model.parameters()):,} parameters) "
        f"on {device}{', channels-last' if channels_last else ''}, "
        f"input {'x'.join(map(str, (data.channels, *preprocess.size)))}"
        + (f"; {ranks.world} processes, {ranks.world * config.batch_size} images per step" if ranks.distributed
           else ""))
    t_start = time.perf_counter()  # training time includes what the view prepares (e.g. a feature cache)
    step_model, loop = recipe.train_view(model, batches, step_config, device, log)
    if device.type == "cpu":  # from here, after the data's and the view's temporaries are freed and returned:
        keep_freed_memory()  # each step reuses the memory the last one freed instead of faulting in fresh pages
    train_loader, train_model = distributed.shard(loop["train"], ranks), None
    measured = _measured_precision(config, device, ranks, start > 0, kept,
                                   lambda: measure_precision(step_model, train_loader, task, device, channels_last),
                                   log)
    if measured is not None:  # auto on a CPU with native bf16: the run's own step chose
        precision, seconds = measured["precision"], measured["seconds"]
        step_config = step_config.replace(precision=precision)
        if "bf16" in seconds:
            log(f"precision {precision}: bf16's step {seconds['fp32'] / seconds['bf16']:.2f}x as fast as fp32's "
                f"({1e3 * seconds['bf16']:.0f} ms against {1e3 * seconds['fp32']:.0f} ms, measured "
                + ("when the run began; " if kept else "here; ")
                + ("--precision fp32 keeps fp32)" if precision == "bf16" else
                   f"bf16 is taken from {BF16_GAIN}x, for the precision it costs)"))
        elif seconds:
            log("precision fp32: a step in bf16 failed here")
        meta.update(precision=precision, precision_measured={k: round(v, 6) for k, v in seconds.items()})
        if ranks.main:  # this session's record too: the precision it trains in
            meta["sessions"] = _sessions(run.path / "meta.json", start, trained, device, meta)
            run.save_meta(meta)

    progress, written = Progress(not config.quiet and ranks.main), True
    for epoch in range(start, start if trained else config.epochs):
        # dropout, noise etc.: each epoch replayable on resume (and each process drawing its own)
        torch.manual_seed(config.seed * 1_000_003 + epoch + 7_919 * ranks.rank)
        recipe.start_epoch(model, epoch, log)
        train_model = distributed.replicate(step_model, ranks, device, train_model)
        train_loader.set_epoch(epoch)
        t0, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]  # the rate the epoch begins with
        try:
            train_m = train_one_epoch(train_model, train_loader, task, optimizer, scheduler, step_config, device,
                                      scaler, progress.start(epoch + 1, config.epochs, len(train_loader)),
                                      ranks=ranks)
        except TrainingDiverged as e:
            last = f"; the last good checkpoint is {run.checkpoints.last}" if run.checkpoints.exists() else ""
            raise TrainingDiverged(f"training diverged in epoch {epoch + 1}: {e}; lower --lr or set "
                                   f"--grad-clip{last}") from None
        finally:
            progress.close()
        if not ranks.main:  # rank 0 validates, writes and decides whether to go on
            if distributed.share(ranks):
                break
            continue
        val = task.evaluation().evaluate(step_model, loop["val"], device, precision, channels_last)
        record = {"epoch": epoch + 1, **train_m, **task.record(val), "lr": lr,
                  "seconds": time.perf_counter() - t0}
        history.append(record)
        improved, score = _improved(config.monitor, record, best)
        if improved:
            best, best_epoch, stale = score, epoch + 1, 0
        else:
            stale += 1

        def state(epoch=epoch, best=best, best_epoch=best_epoch, stale=stale) -> dict:  # as this epoch ends
            return {"epoch": epoch + 1, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(), "rng": torch.get_rng_state(), "history": history, "best": best,
                    "best_epoch": best_epoch, "stale": stale, "train_seconds": before + time.perf_counter() - t_start,
                    "precision_measured": measured, "steps_per_epoch": steps}

        written = run.checkpoints.end_epoch(epoch + 1, model, meta, state, improved, record["seconds"])
        run.log_epoch(history)
        if not config.quiet:
            log(f"epoch {epoch + 1:>3}/{config.epochs}  train_loss {record['train_loss']:.4f}  "
                f"val_loss {record['val_loss']:.4f}  {task.format_record(record)}  "
                f"lr {record['lr']:.2e}  {record['seconds']:.1f}s")
        stop = False
        if config.early_stopping and stale >= config.early_stopping:
            log(f"early stopping: no improvement of {config.monitor} for {stale} epoch{'s' * (stale != 1)}")
            stop = True
        elif on_epoch_end is not None and on_epoch_end(EpochEnd(epoch + 1, record, model, batches, task, device)):
            log(f"stopped by on_epoch_end after epoch {epoch + 1}")
            stop = True
        distributed.share(ranks, stop)
        if stop:
            break
    if not ranks.main:  # the test, the results and the report are rank 0's
        return FitResult(run.path, [], {}, model)
    if history and not written:  # the epoch the run ends with is always written
        run.checkpoints.end_epoch(history[-1]["epoch"], model, meta, state, improved, 0.0, final=True)
    train_seconds = before + time.perf_counter() - t_start

    which = "best" if config.early_stopping else "last"
    if config.early_stopping:  # restore the best weights
        model.load_state_dict(run.checkpoints.best_weights())
    test = recipe.test(model, batches["test"], task, device, precision, channels_last)
    result = FitResult(run.path, history, test, model)
    recipe.finish(result, run, batches, task, device, log)
    monitored = [h[config.monitor] for h in history]
    results = {
        "test": {k: v for k, v in result.test.items() if k != "confusion_matrix"},
        **({"confusion_matrix": result.test["confusion_matrix"]} if "confusion_matrix" in result.test else {}),
        "classes": data.classes, "epochs": len(history),
        "stopped_early": bool(config.early_stopping) and len(history) < config.epochs,
        "train_seconds": round(train_seconds, 3), "checkpoint": which,
        "best_val": min(monitored) if config.monitor.endswith(("loss", "mse")) else max(monitored),
        **result.extra,
    }
    run.finish(results, history, f"{config.name} on {config.data}")
    _report(run.path)
    return result


def _count(n: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _check_processes(run: RunDir, ranks: distributed.Ranks) -> None:
    """A run continues on as many processes as it started with: its shards, its global batch and so its
    schedule depend on the number."""
    meta = run.path / "meta.json"
    before = read_json_object(meta, RESUME_DAMAGED).get("processes", 1) if meta.is_file() else ranks.world
    if before != ranks.world:
        raise CnnlabError(f"'{run.path}' was trained in {before} processes; continue it in as many: --nproc {before}"
                          if before > 1 else f"'{run.path}' was trained in one process; continue it in one "
                          f"(without --nproc or torchrun)")


def _report(path: Path) -> None:
    from ..report import write_report
    from .run import Run

    write_report(Run.open(path))
