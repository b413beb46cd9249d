"""The dataset registry: ``@register_dataset`` on a reader, then :func:`list_datasets` and :func:`parse_spec`
(one dataset's spec: ``digits``, ``shapes:size=64,count=500``, ``folder:PATH``).

Built-in datasets take ``key=value`` options after the colon; file formats take a path. A dataset may carry
training defaults (:func:`train_defaults`): options measured to train a classifier on it well and fast, which
a classifier run takes where its user sets none of them (as a model's pretrained config carries its input size
in timm).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CnnlabError, unknown_name
from ._base import ImageData


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    source: str
    takes_path: bool
    loader: Callable[..., ImageData]
    train_defaults: dict[str, Any] = field(default_factory=dict)  # classifier options, e.g. {"epochs": 15}


_datasets: dict[str, DatasetInfo] = {}


def register_dataset(name: str, description: str, source: str, takes_path: bool = False,
                     train_defaults: dict[str, Any] | None = None):
    """Register a reader. ``train_defaults``: classifier training options measured on this dataset (say where
    beside them); a run that sets none of them trains with these (see :func:`train_defaults`)."""
    def decorator(fn: Callable[..., ImageData]) -> Callable[..., ImageData]:
        if name in _datasets:
            raise ValueError(f"a dataset named '{name}' is already registered")
        _datasets[name] = DatasetInfo(name, description, source, takes_path, fn, dict(train_defaults or {}))
        return fn

    return decorator


def list_datasets() -> list[DatasetInfo]:
    return list(_datasets.values())


def parse_spec(spec: str) -> tuple[DatasetInfo, str | None, dict[str, str]]:
    """``"shapes:size=64"`` -> (info, None, {"size": "64"}); ``"folder:/data"`` -> (info, "/data", {})."""
    name, _, rest = spec.partition(":")
    if name not in _datasets:
        raise unknown_name("dataset", name, _datasets, "see `cnnlab datasets`; files use folder:PATH, "
                                                      "mnist:PATH, cifar10:PATH or npz:FILE")
    info = _datasets[name]
    if info.takes_path:
        if not rest:
            raise CnnlabError(f"dataset '{name}' needs a path: use {name}:PATH")
        return info, rest, {}
    options = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise CnnlabError(f"dataset option '{item}' is not key=value (example: shapes:size=64,count=500)")
        if key.strip() in options:
            raise CnnlabError(f"dataset option '{key.strip()}' is given twice in '{name}:{rest}'; give it once")
        options[key.strip()] = value.strip()
    allowed = [p for p in inspect.signature(info.loader).parameters
               if p not in ("seed", "val_fraction", "test_fraction")]
    bad = [k for k in options if k not in allowed]
    if bad:
        raise CnnlabError(f"dataset '{name}' has no option {bad[0]!r}; " +
                          (f"options: {', '.join(allowed)}" if allowed else f"'{name}' takes no options"))
    return info, None, options


def train_defaults(spec: str) -> dict[str, Any]:
    """The training defaults of a dataset spec: the registered dataset's own for its plain name (``digits``);
    none for a selection, a union or options (``digits@classes=0-4``, ``shapes:size=64``), which change the
    data they were measured on, nor for a name that is not registered (loading the data says why)."""
    name, _, rest = spec.partition(":")
    info = _datasets.get(name) if not rest.strip() else None  # "digits" or "digits:", no options
    return dict(info.train_defaults) if info is not None and not info.takes_path else {}
