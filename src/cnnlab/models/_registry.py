"""The model registry: ``@register_model`` on a builder, then ``create_model`` / ``list_models``."""

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


def register_model(family: str, paper: str, torchvision: str | None = None, notes: str = ""):
    """Register a builder under its function name. A second builder with the same name is refused.

    The registered builder accepts, besides its own arguments, ``init`` (a scheme of
    :func:`cnnlab.nn.init_weights`), ``weights`` (a weights file loaded with
    :func:`cnnlab.load_weights_file`) and ``skip_head`` (keep the new classifier when the file's has another
    size), and sets ``model.meta``.
    """

    def decorator(fn: Callable[..., Classifier]) -> Callable[..., Classifier]:
        name = fn.__name__
        if name in _builders:
            raise ValueError(f"a model named '{name}' is already registered")
        meta = ModelMeta(name=name, family=family, paper=paper, torchvision=torchvision, notes=notes)

        @functools.wraps(fn)
        def builder(*, init: str | None = None, weights: str | None = None, skip_head: bool = False,
                    **kwargs: Any) -> Classifier:
            if kwargs.get("num_classes", 0) < 0:
                raise CnnlabError(f"num_classes must be 0 (no classifier) or more, got {kwargs['num_classes']}")
            if kwargs.get("in_chans", 1) < 1:
                raise CnnlabError(f"in_chans must be at least 1, got {kwargs['in_chans']}")
            try:
                model = fn(**kwargs)
            except (TypeError, ValueError) as e:
                if isinstance(e, CnnlabError):
                    raise
                raise CnnlabError(f"{name}: {e}") from None
            model.meta = meta
            if init is not None:
                from ..nn.init import init_weights

                init_weights(model, init)
            if weights is not None:
                from ._torchvision import load_weights_file

                load_weights_file(model, weights, skip_head=skip_head)
            return model

        builder.meta = meta  # type: ignore[attr-defined]
        _builders[name] = builder
        _meta[name] = meta
        return builder

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"resnet*"``), in natural order
    (resnet18 before resnet101)."""
    natural = lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)]  # noqa: E731
    return sorted((n for n in _builders if fnmatch.fnmatch(n, pattern.lower())), key=natural)


def model_meta(name: str) -> ModelMeta:
    if name not in _meta:
        raise unknown_name("model", name, _builders, "see `cnnlab models`")
    return _meta[name]


def create_model(
    name: str,
    num_classes: int | None = None,
    in_chans: int | None = None,
    **kwargs: Any,
) -> Classifier:
    """Build a registered model by name.

    Args:
        name: a name from :func:`list_models`, e.g. ``"resnet18"``.
        num_classes: outputs of the classifier (each builder has its own default: 1000, or 10 for LeNet-5).
        in_chans: input channels (1 for grayscale).
        **kwargs: the builder's options (``small_input``, ``drop_rate``, ``norm_layer``, ...), plus
            ``init`` (a weight-init scheme, e.g. ``"kaiming_normal"``) and ``weights`` (a file to load).
    """
    if name not in _builders:
        raise unknown_name("model", name, _builders, "see `cnnlab models`")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    return _builders[name](**kwargs)
