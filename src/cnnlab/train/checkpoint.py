"""Checkpoint I/O. Every write is atomic (temporary file in the same folder, fsync, ``os.replace``), so a
crash or a kill while saving leaves the previous file intact, never a half-written one.

- weights: ``.safetensors`` with the run's metadata (model, classes, preprocessing) as a JSON string;
- training state (optimiser, scheduler, RNG, epoch, history, and the weights again so that one file is
  always a consistent resume point): ``torch.save``, read back with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from .._io import atomic_write
from ..errors import CnnlabError


def save_weights(path: str | os.PathLike, model: torch.nn.Module, metadata: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"cnnlab": json.dumps(metadata)}))


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    if not os.path.isfile(path):
        raise CnnlabError(f"checkpoint '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {}).get("cnnlab", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise CnnlabError(f"'{path}' is not a readable cnnlab checkpoint: {str(e).splitlines()[0][:200]}") from None
    return tensors, meta


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise CnnlabError(f"training state '{path}' does not exist; is this a cnnlab run directory?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CnnlabError(f"'{path}' is not a readable training state: {str(e).splitlines()[0][:200]}") from None
