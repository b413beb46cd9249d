"""The model registry: ``@register_model`` on a builder, then :func:`list_models` and :func:`model_meta`.

This module only registers; :func:`cnnlab.models.create_model` (``_factory.py``) builds, checks the
arguments, initialises and loads weights.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from typing import Any

from ..errors import CnnlabError, unknown_name
from ._base import Classifier, ModelMeta

_builders: dict[str, Callable[..., Classifier]] = {}
_meta: dict[str, ModelMeta] = {}


def register_model(family: str, paper: str, torchvision: str | None = None, notes: str = "",
                   channels_last: bool = False):
    """Register a builder under its function name (a second builder with the same name is refused); the
    models it builds carry ``model.meta``. ``channels_last``: the model trains faster in channels-last memory on
    a CPU, as ``benchmarks/memory_format.py`` measures (runs on a CPU then use it unless told otherwise)."""

    def decorator(fn: Callable[..., Classifier]) -> Callable[..., Classifier]:
        name = fn.__name__
        if name in _builders:
            raise ValueError(f"a model named '{name}' is already registered")
        meta = ModelMeta(name=name, family=family, paper=paper, torchvision=torchvision, notes=notes,
                         channels_last=channels_last)

        @functools.wraps(fn)
        def builder(**kwargs: Any) -> Classifier:
            model = fn(**kwargs)
            model.meta = meta
            return model

        builder.meta = meta  # type: ignore[attr-defined]
        _builders[name] = builder
        _meta[name] = meta
        return builder

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"resnet*"``), in natural order
    (resnet18 before resnet101). A pattern without wildcards matches that one name, as in timm (``cnnlab models
    WORD`` on the command line matches the names holding the word instead)."""
    if not isinstance(pattern, str):
        raise CnnlabError(f"list_models takes a name pattern such as 'resnet*', got {pattern!r}")
    natural = lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)]  # noqa: E731
    return sorted((n for n in _builders if fnmatch.fnmatch(n, pattern.lower())), key=natural)


def model_meta(name: str) -> ModelMeta:
    if name not in _meta:
        raise unknown_name("model", name, _builders, "see `cnnlab models`")
    return _meta[name]


def get_builder(name: str) -> Callable[..., Classifier]:
    """The registered builder of ``name`` (it takes the model's own arguments only)."""
    if name not in _builders:
        raise unknown_name("model", name, _builders, "see `cnnlab models`")
    return _builders[name]
