"""Checkpoint I/O. Every write is atomic (temporary file in the same folder, fsync, ``os.replace``), so a
crash or a kill while saving leaves the previous file intact, never a half-written one.

A run's ``checkpoints/`` folder holds, after each epoch:

- ``last.safetensors``: the weights, with the run's metadata (kind, model, classes, preprocessing, epoch) as
  a JSON string. It is written last: it is what makes an epoch's checkpoint complete;
- ``best.safetensors``: the weights of the best epoch so far (a hard link to ``last`` when that epoch was
  the best: the bytes are written once);
- ``state.pt``: what resuming needs besides the weights (optimiser, scheduler, scaler, RNG, epoch, history),
  ``torch.save`` read back with ``weights_only=True``. The state of the epoch before is kept as
  ``state.prev.pt`` until the new weights are in place, so a kill between the two writes still leaves a
  state that matches the weights.

The weights are stored once per checkpoint (and never inside ``state.pt``). A checkpoint is written after every
epoch, unless writing them has taken more than a tenth of the training time so far: then the epochs that take
less time than a write (a head over cached features, a tiny model) are checkpointed every few epochs instead,
so that saving never dominates a run. The last epoch is always written, and the best weights of an epoch left
unwritten are kept in memory until the next write. A kill loses at most the epochs since the last write, and
a resumed run replays them exactly.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_link, atomic_write, not_a_file
from ..errors import CnnlabError


def save_weights(path: str | os.PathLike, model: torch.nn.Module, metadata: dict[str, Any]) -> None:
    tensors = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: _save_tensors(tensors, metadata, tmp))


def _save_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, Any], path: str) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata={"cnnlab": json.dumps(metadata)})


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The cnnlab metadata of a weights file, without reading its tensors."""
    return _open(path, tensors=False)[1]


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the cnnlab metadata of a ``.safetensors`` file."""
    return _open(path, tensors=True)


def _open(path, tensors: bool):
    from safetensors import safe_open

    if not os.path.isfile(path):
        raise not_a_file(path, "checkpoint")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {}).get("cnnlab", "{}"))
            out = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except Exception:  # a corrupt file, a torch.save file, text: one line for all
        raise CnnlabError(f"'{path}' is not a readable cnnlab checkpoint (a .safetensors file a cnnlab run wrote)"
                          ) from None
    return out, meta


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise CnnlabError(f"training state '{path}' does not exist; is this a cnnlab run directory?")
    with warnings.catch_warnings(record=True) as notices:  # a corrupt file's come before its error ("Detected
        warnings.simplefilter("always")                      # pickle protocol 16"): only a readable file's stay
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a corrupt file fails in many ways (and with an upgrade notice): one line for all
            raise CnnlabError(f"'{path}' is not a readable training state (corrupt, or not written by cnnlab)"
                              ) from None
    for notice in notices:
        warnings.warn_explicit(notice.message, notice.category, notice.filename, notice.lineno)
    if not isinstance(state, dict) or "epoch" not in state:
        raise CnnlabError(f"'{path}' is not a cnnlab training state")
    return state


BUDGET = 0.1  # the share of the training time that writing checkpoints may take before epochs are skipped


class Checkpoints:
    """The ``checkpoints/`` folder of a run: a complete, consistent resume point after every epoch written."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.last = folder / "last.safetensors"
        self.best = folder / "best.safetensors"
        self.state = folder / "state.pt"
        self.previous_state = folder / "state.prev.pt"
        self.training_seconds = self.writing_seconds = 0.0
        self.pending_best: tuple[int, dict[str, torch.Tensor]] | None = None  # an unwritten best epoch's weights

    def end_epoch(self, epoch: int, model: torch.nn.Module, meta: dict[str, Any], state, improved: bool,
                  seconds: float, final: bool = False) -> bool:
        """Write the checkpoint of ``epoch``, which just ended (``state()`` gives its training state), if it is
        ``final`` or writing stays within the time budget; else keep its weights in memory if they are the best.
        Returns whether it was written."""
        self.training_seconds += seconds
        if not final and self.writing_seconds > BUDGET * self.training_seconds:
            if improved:
                self.pending_best = (epoch, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
            return False
        t0 = time.perf_counter()
        if not improved and self.pending_best is not None:  # the best epoch since the last write, before the
            best_epoch, weights = self.pending_best         # state that names it
            atomic_write(self.best, lambda tmp: _save_tensors(weights, {**meta, "epoch": best_epoch}, tmp))
        self.save(model, meta, state(), best=improved)
        self.pending_best = None
        self.writing_seconds += time.perf_counter() - t0
        return True

    def best_weights(self) -> dict[str, torch.Tensor]:
        """The weights of the best epoch so far (in memory if not yet written)."""
        return self.pending_best[1] if self.pending_best is not None else load_weights(self.best)[0]

    def exists(self) -> bool:
        """Whether an epoch's checkpoint was completed."""
        return self.last.is_file()

    def save(self, model: torch.nn.Module, meta: dict[str, Any], state: dict[str, Any], best: bool) -> None:
        """Write epoch ``state["epoch"]``: its state, then its weights (the commit), then ``best``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.state.is_file():
            os.replace(self.state, self.previous_state)
        save_state(self.state, state)
        save_weights(self.last, model, {**meta, "epoch": state["epoch"]})
        if best:
            atomic_link(self.last, self.best)
        self.previous_state.unlink(missing_ok=True)

    def resume(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The weights and the training state of the last completed epoch."""
        weights, meta = load_weights(self.last)
        epoch = meta.get("epoch")
        for path in (self.state, self.previous_state):
            if path.is_file():
                state = load_state(path)
                if state["epoch"] == epoch:
                    if path == self.previous_state:  # killed between the state and the weights: the
                        os.replace(path, self.state)  # previous state is the one that matches; it is state.pt again
                    self._repair_best(state, epoch)
                    return weights, state
        raise CnnlabError(f"'{self.folder}' has the weights of epoch {epoch} but no training state of that epoch; "
                          f"the run cannot continue exactly (its weights still load: cnnlab evaluate, predict)")

    def _repair_best(self, state: dict[str, Any], epoch: int) -> None:
        """A kill after the weights but before ``best`` was linked: link it now; and the state of the epoch
        before, which no longer matches anything, goes."""
        if state.get("best_epoch") == epoch and (not self.best.is_file() or
                                                 read_metadata(self.best).get("epoch") != epoch):
            atomic_link(self.last, self.best)
        self.previous_state.unlink(missing_ok=True)

    def clear_temporary(self) -> None:
        """Remove what a kill in the middle of a write left: ``.NAME.*.tmp`` (cnnlab's atomic writes), ``.tmp*``
        (safetensors' own, beside the file it saves)."""
        for stale in [*self.folder.glob(".*.tmp"), *self.folder.glob(".tmp*")]:
            stale.unlink(missing_ok=True)
