"""``create_model``: the front door to the zoo. It builds a registered model, checks its arguments, and
applies an init scheme or loads a weights file."""

from __future__ import annotations

import inspect
import os
import re
import typing
from typing import Any

import torch

from .._options import is_a, plain
from ..errors import CnnlabError
from ..nn.act import get_act_layer
from ..nn.conv import get_norm_layer
from ..nn.init import init_weights
from ._base import Classifier
from ._registry import get_builder, list_models, model_meta
from ._torchvision import load_weights_file


def _check_arguments(name: str, builder, kwargs: dict[str, Any]) -> None:
    """Arguments of a plain type (bool, int, float, str) must have that type: ``small_input="maybe"`` from a
    command line or a config file is an error, not a true value. The types are the model class's own
    annotations (the builder's return type), checked by the rules every option follows."""
    try:
        cls = typing.get_type_hints(builder).get("return")
        hints = typing.get_type_hints(cls.__init__) if inspect.isclass(cls) else {}
    except Exception:  # an annotation that does not resolve: nothing to check against
        return
    for key, value in kwargs.items():
        if hints.get(key) in (bool, int, float, str) and not is_a(value, hints[key]):
            raise CnnlabError(f"{name}: {key} must be {plain(key, hints[key]).describe()}, got {value!r}")


def _named(fn) -> tuple[list[str], bool]:
    """The parameters ``fn`` takes by name, and whether it takes any other keyword (``**kwargs``)."""
    params = inspect.signature(fn).parameters.values()
    return ([p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"],
            any(p.kind is p.VAR_KEYWORD for p in params))


def _accepted(builder) -> list[str] | None:
    """Every keyword ``builder`` accepts: its own, and, where it passes the others on (``**kwargs``), those of the
    model class it returns (its annotation). None where that cannot be known (no annotated class, or a class
    that itself takes ``**kwargs``): then only building the model can tell."""
    own, passes_on = _named(builder)
    if not passes_on:
        return own
    try:
        cls = typing.get_type_hints(builder).get("return")
        if not inspect.isclass(cls):
            return None
        taken, open_ended = _named(cls.__init__)
    except Exception:  # an annotation that does not resolve
        return None
    return None if open_ended else own + [k for k in taken if k not in own]


def _arguments(builder) -> list[str]:
    """The keyword arguments the model class behind ``builder`` takes (none known: an empty list)."""
    try:
        cls = typing.get_type_hints(builder).get("return")
        params = inspect.signature(cls.__init__).parameters.values() if inspect.isclass(cls) else []
        return [p.name for p in params if p.default is not inspect.Parameter.empty]  # the builder sets the rest
    except Exception:
        return []


def _set_by_builder(builder) -> set[str]:
    """The model class's arguments that ``builder`` sets itself (``vgg11`` its ``batch_norm``, ``resnet20`` its
    ``residual``), found by building the model on the meta device with each given again: passing one is an
    error, not an option. Only for a message: it builds the model once per argument."""
    try:
        params = inspect.signature(typing.get_type_hints(builder)["return"].__init__).parameters
    except Exception:
        return set()
    fixed = set()
    for key in _arguments(builder):
        try:
            with torch.device("meta"):
                builder(**{key: params[key].default})
        except TypeError as e:
            if "multiple values" in str(e):
                fixed.add(key)
        except Exception:  # noqa: BLE001  any other failure says nothing about this argument
            pass
    return fixed


def _shown_arguments(builder) -> set[str]:
    """The arguments a message lists as the model's: its builder's own and its class's, but for those the
    builder sets itself."""
    return (set(_arguments(builder)) | set(_named(builder)[0])) - _set_by_builder(builder)


def check_model_arguments(name: str, /, **kwargs: Any) -> dict[str, Any]:
    """The arguments ``kwargs`` of the model ``name`` checked as :func:`create_model` checks them, without building
    it: each one the model takes, of its type (``num_classes`` from 0, ``in_chans`` from 1, ``act_layer`` and
    ``norm_layer`` known names or layers). Returns them with the layers' names resolved; raises a
    :class:`~cnnlab.errors.CnnlabError` that names the first wrong one (a config can be checked before its data
    loads)."""
    builder = get_builder(name)
    for key, low, what in (("num_classes", 0, "an integer from 0 (no classifier)"),
                           ("in_chans", 1, "an integer from 1")):
        value = kwargs.get(key, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise CnnlabError(f"{key} must be {what}, got {value!r}")
    accepted = _accepted(builder)
    unknown = [] if accepted is None else [k for k in kwargs if k not in accepted]
    if unknown:
        shown = _shown_arguments(builder)
        raise CnnlabError(f"{name} has no argument '{unknown[0]}'; its arguments: "
                          f"{', '.join(k for k in accepted if k in shown)}")
    for key, lookup, named, layer in (("act_layer", get_act_layer, "relu", "nn.ReLU"),
                                      ("norm_layer", get_norm_layer, "batch", "nn.BatchNorm2d")):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = lookup(kwargs[key])
        elif kwargs.get(key) is not None and not callable(kwargs[key]):
            raise CnnlabError(f"{key} must be a layer's name such as '{named}' or a layer class such as {layer}; "
                              f"got {kwargs[key]!r}")
    _check_arguments(name, builder, kwargs)
    for key in _DROP_PROBABILITIES:  # a negative one built a model without dropout, silently, in most families
        value = kwargs.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and not 0 <= value < 1:
            raise CnnlabError(f"{name}: {key} must be in [0, 1) (the probability of dropping), got {value!r}")
    return kwargs


# the zoo's dropout probabilities, checked alike for every model (FractalNet checks its own drop-path ones)
_DROP_PROBABILITIES = ("drop_rate", "aux_drop_rate", "head_drop_rate", "drop_path_rate")


def create_model(
    name: str,
    /,
    num_classes: int | None = None,
    in_chans: int | None = None,
    *,
    init: str | None = None,
    weights: str | None = None,
    skip_head: bool = False,
    **kwargs: Any,
) -> Classifier:
    """Build a registered model by name.

    Args:
        name: a name from :func:`list_models`, e.g. ``"resnet18"``.
        num_classes: outputs of the classifier (each builder has its own default: 1000, or 10 for LeNet-5).
        in_chans: input channels (1 for grayscale).
        init: a weight-init scheme of :func:`cnnlab.nn.init_weights`, e.g. ``"kaiming_normal"``, or
            ``"file:PATH"`` (a cnnlab or torchvision state dict).
        weights: a weights file to load (:func:`cnnlab.load_weights_file`); ``skip_head`` keeps the new
            classifier when the file's has another size.
        **kwargs: the builder's options (``small_input``, ``drop_rate``, ``norm_layer``, ...). ``act_layer``
            and ``norm_layer`` may be names, as a config file or a command line gives them: ``"sigmoid"``
            (:data:`cnnlab.nn.ACT_LAYERS`), ``"none"`` (:data:`cnnlab.nn.NORM_LAYERS`).
    """
    builder = get_builder(name)
    if weights is not None and not isinstance(weights, str | os.PathLike):
        raise CnnlabError(f"weights is the path of a weights file (cnnlab.load_weights_file), got {weights!r}")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    kwargs = check_model_arguments(name, **kwargs)
    try:
        model = builder(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, CnnlabError):
            raise
        fixed = re.search(r"got multiple values for (?:keyword )?argument '(\w+)'", str(e))
        if fixed:  # an argument the model's builder sets itself: what tells it from its family's other models
            family = model_meta(name).family
            others = [m for m in list_models() if m != name and model_meta(m).family == family]
            raise CnnlabError(f"{name} sets {fixed[1]} itself (it is part of what makes it {name}); leave it out"
                              + (f", or choose another {family} model: {', '.join(others)}" if others else "")) \
                from None
        unknown = [k for k in kwargs if k not in _arguments(builder)]
        if unknown and _arguments(builder):
            shown = _shown_arguments(builder)
            raise CnnlabError(f"{name} has no argument '{unknown[0]}'; its arguments: "
                              f"{', '.join(k for k in _arguments(builder) if k in shown)}") from None
        raise CnnlabError(f"{name}: {e}") from None
    if init is not None:
        init_weights(model, init)
    if weights is not None:
        load_weights_file(model, weights, skip_head=skip_head)
    return model
