"""Training on several processes with PyTorch's own engine: DistributedDataParallel (DDP) in processes that
``torchrun`` starts (or ``cnnlab train --nproc N``, which starts them the same way, through torch's elastic
launcher).

One process per device (a GPU, or a share of the CPU cores). Every process builds the same model from the same
seed, DDP averages the gradients across them after each backward pass, and each trains on its own shard of the
training split: the global batch is ``nproc x --batch-size``. What the engine does with that:

- **data**: the training loader of each process yields only its shard of the epoch's shuffle (the same
  permutation everywhere, every ``world``-th image from the process's rank on), so together the processes see
  each image once per epoch, as one process would with the global batch; ``set_epoch`` reshuffles every epoch.
- **batch norm**: on CUDA the layers become ``SyncBatchNorm`` (statistics over the global batch); on a CPU
  (gloo has no SyncBatchNorm) DDP broadcasts rank 0's buffers before each forward pass, so the running
  statistics every process evaluates and saves with are rank 0's.
- **rank 0 speaks for the job**: it writes the run directory (config, checkpoints, metrics, report), validates,
  decides early stopping and logs; the others train and stay silent. What they need of the run directory (the
  checkpoint to resume from) rank 0 reads and sends them: they never read it, so other machines need no shared
  filesystem.

This module is the only place that knows about process groups; with one process every function here is the
identity, and the loop runs exactly as before.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import shlex
import signal
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from .._machine import available_cores
from ..errors import CnnlabError

PEER_EXIT = 75  # the exit code of a process stopped because another process of the job stopped
LAUNCH_DIR = "CNNLAB_LAUNCH_DIR"  # set by launch(): where rank 0 leaves the run's path for the launcher's message


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in the job (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    owns_group: bool = False  # this process initialised the process group, so ends it

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    try:
        return int(text) if text else default
    except ValueError:
        raise CnnlabError(f"environment variable {name}={text!r} is not a number (torchrun sets it)") from None


_alone = 0  # > 0 inside alone(): fit trains in this process only, whatever the environment says


def from_env() -> Ranks:
    """The ranks torchrun gives this process (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``)."""
    if _alone:
        return Ranks()
    world = _env_int("WORLD_SIZE", 1)
    return Ranks(_env_int("RANK", 0), world, _env_int("LOCAL_RANK", 0), _env_int("LOCAL_WORLD_SIZE", world))


@contextlib.contextmanager
def alone():
    """Train in this process only (a run that rank 0 trains for itself inside a distributed job, e.g. a
    baseline for its report): no collective, no peer waits for it."""
    global _alone
    _alone += 1
    try:
        yield
    finally:
        _alone -= 1


_joined = False  # whether this process has joined its job's process group (see said_by_the_node)


def said_by_the_node(ranks: Ranks) -> bool:
    """Whether another process of this node says the error this one met: true for an error met before the
    process joined its job's group (in checking the command line, the data spec, the node's files), which
    every process of a node meets alike, in all but the node's first process (local rank 0). So torchrun's
    processes print bad input once per node (a node without the data still says so), not once each."""
    return not _joined and ranks.local_rank != 0


def start(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the job torchrun started (gloo on a CPU, nccl on CUDA) and return this process's ranks and device
    (``cuda:LOCAL_RANK`` on CUDA). One process: nothing to join, the device as given."""
    ranks = from_env()
    if not ranks.distributed:
        return ranks, device
    backend = _backend(device)
    if device.type == "cuda":
        # every process of the node checks the node's count, not only its own GPU: a process that has one would
        # otherwise wait in the rendezvous for the one that has not, until torchrun killed it (30 s seen on a
        # one-GPU machine); this way they all stop at once, and the node's first process says why. A launcher
        # that does not say how many processes a node runs (LOCAL_WORLD_SIZE) leaves each to its own GPU.
        gpus = torch.cuda.device_count()
        if os.environ.get("LOCAL_WORLD_SIZE") and ranks.local_world > gpus:
            raise CnnlabError(f"{ranks.local_world} processes on this node need a GPU each, and the node has "
                              f"{gpus}; start at most that many processes per node (--nproc_per_node), or add "
                              f"--device cpu")
        if ranks.local_rank >= gpus:
            raise CnnlabError(f"process {ranks.local_rank} of this node has no GPU: the node has {gpus}; start at "
                              f"most that many processes per node")
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        # torch.distributed.nn's functions take ``group=group.WORLD`` as a default, evaluated when it is first
        # imported (DDP imports it, through the compiler): imported after the group exists, they hold it for good,
        # destroy_process_group cannot free it, and its gloo threads outlive the run into the interpreter's exit,
        # where a process could abort ("terminate called without an active exception", SIGABRT). Imported first,
        # their default is None. (By importlib: an import statement would make ``torch`` a local name here.)
        importlib.import_module("torch.distributed.nn")

        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        _stop_with_the_launcher()
    global _joined
    _joined = True
    return Ranks(ranks.rank, ranks.world, ranks.local_rank, ranks.local_world, owns), device


def _stop_with_the_launcher(every: float = 0.5) -> None:
    """In a process that ``cnnlab ... --nproc`` started (:func:`launch`): a thread that sends this process SIGTERM
    when the launcher is gone (its parent changes: killed outright, SIGKILL, so that it could stop nothing).
    The processes then stop as on SIGTERM, their checkpoints kept, instead of training on unseen and holding
    the run's lock. (Polled, not Linux's PR_SET_PDEATHSIG, which fires when the thread that started the process
    ends, whichever thread of the launcher that was.)"""
    if _launch_dir() is None:
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="cnnlab-launcher-watch", daemon=True).start()


def _backend(device: torch.device) -> str:
    """The process-group backend for ``device``: nccl on CUDA, gloo on a CPU; one line for any other."""
    if device.type not in ("cuda", "cpu"):
        raise CnnlabError(f"distributed training runs on CUDA (nccl) or the CPU (gloo), not on {device.type}; "
                          f"add --device cpu")
    return "nccl" if device.type == "cuda" else "gloo"


def stop(ranks: Ranks, failed: bool = False) -> None:
    """End the process group this process began, once every process is done with it: rank 0 tests and writes the
    report after the last epoch, and a process that ended its part of the group meanwhile could abort as it
    exited ("terminate called without an active exception", SIGABRT; seen under load). Not after a failure:
    ending it would make the other processes fail on their own (a lost peer) before the launcher sees this
    one's exit; exiting ends it anyway."""
    if ranks.owns_group and dist.is_initialized() and not failed:
        try:
            dist.barrier()
        except RuntimeError as e:  # rank 0 failed after the last epoch: its own exit says why
            peer = peer_failure(e, ranks)
            if peer is None:
                raise
            raise peer from None
        dist.destroy_process_group()


def share(ranks: Ranks, value=None):
    """Rank 0's ``value`` (any picklable object), on every process."""
    if not ranks.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def agreed(ranks: Ranks):
    """A step every process takes alike (loading the data, building the model), after which the processes agree
    on how it went, so that bad input that every process meets is said once. A :class:`CnnlabError` in any
    process becomes the job's: the first failed process's line, raised on every process (rank 0 says it, with
    ``process K of N:`` when it came from another; the others stay silent). A process that failed otherwise (a
    bug: its traceback is its own) stops the others as a lost peer. One process: the step as it is."""
    if not ranks.distributed:
        yield
        return
    outcome, failure = None, None
    try:
        yield
    except CnnlabError as e:
        outcome, failure = ("error", str(e)), e
    except Exception as e:  # not a signal (KeyboardInterrupt, Terminated): those stop at once
        outcome, failure = ("crash", type(e).__name__), e
    outcomes = [None] * ranks.world
    dist.all_gather_object(outcomes, outcome)
    failed = [(rank, o) for rank, o in enumerate(outcomes) if o is not None]
    if not failed:
        return
    rank, (what, text) = failed[0]
    if rank == ranks.rank and (what == "crash" or rank == 0):
        raise failure
    if what == "crash":
        error = CnnlabError(f"process {rank} of {ranks.world} failed ({text}; its own error is above)")
        error.peer = True
    else:
        error = CnnlabError(text if rank == 0 else f"process {rank} of {ranks.world}: {text}")
        error.relayed = not ranks.main
    raise error from None


def all_sum(tensors: list[torch.Tensor], ranks: Ranks | None) -> list[torch.Tensor]:
    """The element-wise sums of ``tensors`` over every process of ``ranks`` (the tensors themselves with one
    process, or None)."""
    if ranks is None or not ranks.distributed:
        return tensors
    flat = torch.stack([t.to(torch.float64) for t in tensors])
    dist.all_reduce(flat)
    return [f.to(t.dtype) for f, t in zip(flat, tensors, strict=True)]


def replicate(module: nn.Module, ranks: Ranks, device: torch.device, current: nn.Module | None = None) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel (``module`` itself with one process). DDP averages the
    gradients only of the parameters that were trainable when it was built: ``current``, the wrapper of an
    earlier epoch, is reused while the same parameters train, and replaced when a recipe froze or unfroze some
    (a transfer's warm start)."""
    if not ranks.distributed:
        return module
    trainable = tuple(p.requires_grad for p in module.parameters())
    if current is not None and getattr(current, "cnnlab_trainable", None) == trainable:
        return current
    if not any(trainable):
        raise CnnlabError("nothing in the model trains, so there are no gradients for the processes to share")
    if device.type == "cuda":
        module = _sync_batch_norm(module)
    # (DDP's default syncs rank 0's buffers, batch norm's running statistics, before every forward pass; every
    # trainable parameter must get a gradient in every step, so a view freezes what it never reaches, unless a
    # model declares that its steps skip parameters (drop-path): DDP then finds them after each forward pass)
    unused = any(getattr(m, "skips_parameters", False) for m in module.modules())
    wrapped = nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                                  find_unused_parameters=unused)
    wrapped.cnnlab_trainable = trainable
    return wrapped


def _sync_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with every batch-norm layer that learns statistics replaced by a SyncBatchNorm (statistics over
    the global batch). A layer kept in inference mode (its ``train`` replaced on the instance, as a transfer's
    frozen backbone does) stays as it is: its statistics never change, and converting it would lose that."""
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and "train" not in child.__dict__:
            setattr(module, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
        else:
            _sync_batch_norm(child)
    return module


def shard(loader, ranks: Ranks):
    """The training loader of this process: its shard of every epoch (``loader`` itself with one process)."""
    return loader.sharded(ranks.rank, ranks.world) if ranks.distributed else loader


def peer_failure(e: BaseException, ranks: Ranks) -> CnnlabError | None:
    """The one-line error for a collective that failed because another process of the job stopped (it was
    killed, or failed on its own), or None for any other exception."""
    if not ranks.distributed or isinstance(e, CnnlabError) or not isinstance(e, RuntimeError):
        return None
    text = str(e)
    if not isinstance(e, dist.DistError) and not any(k in text.lower() for k in ("gloo", "nccl", "connection")):
        return None
    # its first line, cut at a word (gloo's run on for hundreds of characters)
    first = textwrap.shorten(text.strip().splitlines()[0], 160, placeholder=" ...") if text.strip() else \
        type(e).__name__
    error = CnnlabError(f"another process of the distributed job stopped, so process {ranks.rank} of "
                        f"{ranks.world} cannot go on ({first})")
    error.peer = True
    return error


# --- the launcher -------------------------------------------------------------------------------------------

def announce(ranks: Ranks, command: str, path: Path) -> None:
    """Rank 0 of a job that :func:`launch` started: tell the launcher which run the job writes, so that its
    message, if a process fails, says how to continue it."""
    folder = _launch_dir()
    if ranks.main and folder is not None:
        (folder / "run.json").write_text(json.dumps({"command": command, "path": str(path)}))


def check_launch(nproc: int, device: torch.device, threads: int | None = None) -> None:
    """Refuse, before any process starts, a job this machine cannot run: more CUDA processes than GPUs, more
    CPU processes than the cores this process may use (each needs a core of its own: processes that share
    one wait on each other at every step), ``threads`` per process that together need more cores, or a device
    that has no process-group backend."""
    _backend(device)
    check_threads(threads, nproc)
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise CnnlabError(f"--nproc {nproc} on CUDA needs a GPU per process; this machine has "
                          f"{torch.cuda.device_count()}")
    if device.type == "cpu" and nproc > available_cores():
        raise CnnlabError(f"--nproc {nproc} on the CPU needs a core per process; this process may use "
                          f"{available_cores()} (use --nproc {available_cores()} or fewer)")


def check_threads(threads: int | None, processes: int) -> None:
    """``--threads`` in each of ``processes`` processes on this machine must fit the cores this process may use:
    threads beyond them wait on one another at every step."""
    cores = available_cores()
    if threads and processes > 1 and threads * processes > cores:
        raise CnnlabError(f"--threads {threads} in each of {processes} processes is {threads * processes} threads "
                          f"on the {cores} CPU cores this process may use; use --threads {max(1, cores // processes)}"
                          f" or leave it out (each process then takes its share of the cores)")


def report_error(ranks: Ranks, message: str) -> bool:
    """A process other than rank 0 that failed on its own (not because rank 0 did, which rank 0 says): leave its
    one line for the launcher to print. False when no launcher started this job (torchrun: print it)."""
    folder = _launch_dir()
    if folder is None:
        return False
    (folder / f"error-{ranks.rank}.txt").write_text(message)
    return True


def told(ranks: Ranks, message: str | None = None) -> None:
    """In a job :func:`launch` started: rank 0 has told the user why it stopped (``message`` None); or another
    process leaves rank 0's error, relayed to it (``message``), for the launcher to say should rank 0 be stopped
    before it could. Whichever process exits first, the job's failure is then said once: the launcher stops the
    others as soon as one fails, and rank 0, stopped that way or aborting as its process group is torn down, was
    reported as a process that failed ("process 1 of 2 exited with code 2"), a second line after its own."""
    folder = _launch_dir()
    if folder is None:
        return
    if message is None and ranks.main:
        (folder / "told").write_text("")
    elif message is not None and not ranks.main:
        (folder / "relayed.txt").write_text(message)


def scratch_dir() -> Path | None:
    """A folder for a process's temporary files that the launcher of this job removes when the job ends (None
    under torchrun: the system's temporary folder then)."""
    return _launch_dir()


def _launch_dir() -> Path | None:
    """Where the launcher of this job (:func:`launch`) reads what its processes leave; None under torchrun."""
    folder = os.environ.get(LAUNCH_DIR)
    return Path(folder) if folder and Path(folder).is_dir() else None


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``python -m cnnlab ARGV`` in ``nproc`` processes on this machine, as ``torchrun --standalone
    --nproc_per_node NPROC -m cnnlab ARGV`` would, and return the job's exit code. A process that fails ends
    the job (the others are stopped) with one line naming it and how to continue the run."""
    import logging
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1)
    # the agent's own log of a failure or a signal: the one line below says it
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name.startswith("torch.distributed")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    with tempfile.TemporaryDirectory(prefix="cnnlab-launch-") as folder:
        os.environ[LAUNCH_DIR] = folder
        announced = Path(folder) / "run.json"
        started = time.time()
        try:
            elastic_launch(config, sys.executable)("-m", "cnnlab", *argv)
            return 0
        except ChildFailedError as e:
            return _explain_failure(e, nproc, Path(folder), started)
        except SignalException as e:  # the agent stopped the processes on SIGTERM (or SIGHUP): as one would stop
            print(f"cnnlab: {_stopped(int(e.sigval))}{_continue(announced, nproc)}", file=sys.stderr, flush=True)
            return 128 + int(e.sigval)
        finally:
            os.environ.pop(LAUNCH_DIR, None)
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
            for signum, handler in handlers.items():  # the agent installs its own (main() may run again)
                if handler is not None:
                    signal.signal(signum, handler)


def _stopped(signum: int) -> str:
    """What the job's one line says of a signal: as one process would ("interrupted", "terminated")."""
    return {int(signal.SIGINT): "interrupted", int(signal.SIGTERM): "terminated"}.get(
        signum, f"stopped by {signal.Signals(signum).name}")


def _continue(announced: Path, nproc: int) -> str:
    """'; continue with: cnnlab train --resume DIR --nproc N' once rank 0 has announced its run, and while the run
    has a checkpoint to continue from (stopped in its first epoch, the run removes what it wrote, as one process
    does, and there is nothing to continue)."""
    if not announced.is_file():
        return ""
    run = json.loads(announced.read_text())
    if not (Path(run["path"]) / "checkpoints" / "last.safetensors").is_file():
        return ""
    return f"; continue with: {run['command']} --resume {shlex.quote(run['path'])} --nproc {nproc}"


def _finished(announced: Path, since: float) -> Path | None:
    """The run the job announced, if it wrote its report (the last file a run writes) at ``since`` or later."""
    if not announced.is_file():
        return None
    path = Path(json.loads(announced.read_text())["path"])
    try:
        return path if (path / "report.html").stat().st_mtime >= since else None
    except OSError:
        return None


def _explain_failure(e, nproc: int, folder: Path, started: float = math.inf) -> int:
    """The job's one line, from what each process's exit says: rank 0's bad input (it said it), another rank's own
    error (it left it in ``folder``), a process that died or failed (once the run has finished, since
    ``started``: a warning, and the job succeeded), or a signal that stopped them all."""
    announced = folder / "run.json"
    codes = {rank: f.exitcode for rank, f in e.failures.items()}
    if codes.get(0) == 2 or (folder / "told").is_file():  # bad input: rank 0 has said what was wrong
        return 2
    if (folder / "relayed.txt").is_file():  # rank 0's, relayed to the others; rank 0 was stopped before it said it
        print(f"cnnlab: error: {(folder / 'relayed.txt').read_text()}", file=sys.stderr, flush=True)
        return 2
    errors = sorted(folder.glob("error-*.txt"), key=lambda p: int(p.stem.split("-")[1]))
    if errors:
        rank = errors[0].stem.split("-")[1]
        print(f"cnnlab: error: process {rank} of {nproc}: {errors[0].read_text()}", file=sys.stderr, flush=True)
        return 2
    stops = {128 + int(s): int(s) for s in (signal.SIGINT, signal.SIGTERM)} | \
        {-int(s): int(s) for s in (signal.SIGINT, signal.SIGTERM)}
    # the cause: a process that failed on its own, not one stopped by a signal to all, by the agent (SIGTERM to
    # the survivors) or by the loss of its peer
    causes = {r: f for r, f in e.failures.items() if f.exitcode not in stops and f.exitcode != PEER_EXIT}
    if causes:
        # the first to fail; at the same time (timestamps are whole seconds), not one that aborted in the runtime
        # (SIGABRT) after losing the other
        rank, failure = min(causes.items(),
                            key=lambda kv: (kv[1].timestamp, kv[1].exitcode == -int(signal.SIGABRT), kv[0]))
        code = failure.exitcode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() \
            else f"exited with code {code}"
        finished = _finished(announced, started)
        if finished is not None:  # after the run wrote all it writes: nothing is lost, nothing to continue
            print(f"cnnlab: warning: process {rank} of {nproc} (pid {failure.pid}) {how} after the run had "
                  f"finished; its results and report are complete in {finished}", file=sys.stderr, flush=True)
            return 0
        print(f"cnnlab: error: process {rank} of {nproc} (pid {failure.pid}) {how}, so the job stopped"
              f"{_continue(announced, nproc)}", file=sys.stderr, flush=True)
        return 1
    signums = [stops[c] for c in codes.values() if c in stops]
    if signums:
        print(f"cnnlab: {_stopped(signums[0])}{_continue(announced, nproc)}", file=sys.stderr, flush=True)
        return 128 + signums[0]
    finished = _finished(announced, started)
    if finished is not None:
        print(f"cnnlab: warning: the processes of the job lost contact with one another after the run had finished; "
              f"its results and report are complete in {finished}", file=sys.stderr, flush=True)
        return 0
    print(f"cnnlab: error: the processes of the job lost contact with one another, so it stopped"
          f"{_continue(announced, nproc)}", file=sys.stderr, flush=True)
    return 1
