"""Dataset registry and the data spec: ``digits``, ``shapes:size=64,count=500``, ``folder:PATH``, ...

Built-in datasets take ``key=value`` options after the colon; file formats take a path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import CnnlabError, unknown_name
from ._base import ImageData


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    source: str
    takes_path: bool
    loader: Callable[..., ImageData]


_datasets: dict[str, DatasetInfo] = {}


def register_dataset(name: str, description: str, source: str, takes_path: bool = False):
    def decorator(fn: Callable[..., ImageData]) -> Callable[..., ImageData]:
        if name in _datasets:
            raise ValueError(f"a dataset named '{name}' is already registered")
        _datasets[name] = DatasetInfo(name, description, source, takes_path, fn)
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
        options[key.strip()] = value.strip()
    allowed = [p for p in inspect.signature(info.loader).parameters
               if p not in ("seed", "val_fraction", "test_fraction")]
    bad = [k for k in options if k not in allowed]
    if bad:
        raise CnnlabError(f"dataset '{name}' has no option {bad[0]!r}; options: {', '.join(allowed) or 'none'}")
    return info, None, options


def load_dataset(spec: str, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                 **kwargs) -> ImageData:
    """Load a dataset by spec into memory, split into train/val/test deterministically from ``seed``.

    ``kwargs`` go to format readers (e.g. ``image_size`` for ``folder:``).
    """
    from . import select

    parts = select.split_union(spec)
    if len(parts) > 1:
        joined = None
        for part in parts:
            one = load_dataset(part, seed, val_fraction, test_fraction, **kwargs)
            joined = one if joined is None else select.union(joined, one)
        joined.name = spec
        return joined
    full, (spec, selection) = spec, select.split_selection(spec)
    if selection:
        data = load_dataset(spec, seed, val_fraction, test_fraction, **kwargs)
        if not isinstance(data, ImageData):
            raise CnnlabError(f"@classes and @labels apply to datasets that fit in memory; '{spec}' is streamed")
        if data.train.labels is None:
            raise CnnlabError(f"dataset '{spec}' has no labels, so @classes and @labels do not apply")
        if "classes" in selection:
            data = select.select_classes(data, select.parse_classes(selection["classes"], data.classes))
        if "labels" in selection:
            data = select.label_budget(data, selection["labels"], seed)
        data.name = full
        return data
    info, path, options = parse_spec(spec)
    try:
        if path is not None:
            return info.loader(path, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, **kwargs)
        return info.loader(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, **options)
    except ValueError as e:
        if isinstance(e, CnnlabError):
            raise
        raise CnnlabError(f"dataset '{spec}': {e}") from None
