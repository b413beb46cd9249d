"""Weight-initialisation schemes, selectable by name when a model is created.

``create_model(name, init="kaiming_normal")`` or ``init="normal:std=0.02"`` or ``init="file:weights.safetensors"``.

Schemes (they apply to the weights of every convolution and linear layer; biases are set to 0 and
batch-norm layers to weight 1, bias 0, except for ``pytorch``, which restores PyTorch's own defaults):

- ``default``: the family's own scheme from its paper or torchvision (what a model gets when nothing is asked);
- ``pytorch``: each layer's ``reset_parameters()``: for conv and linear layers, weights and biases drawn from
  ``U(-sqrt(k), sqrt(k))`` with ``k = groups / (C_in * prod(kernel_size))`` (linear: ``k = 1 / in_features``);
- ``uniform`` (``a``, ``b``), ``normal`` (``mean``, ``std``), ``constant`` (``value``);
- ``xavier_uniform`` / ``xavier_normal`` (Glorot & Bengio 2010; ``gain``);
- ``kaiming_uniform`` / ``kaiming_normal`` (He et al. 2015; ``mode`` fan_in|fan_out, ``nonlinearity``, ``a``):
  ``kaiming_normal`` (alias ``he``) defaults to ``mode=fan_out``, the gradients' variance, as torchvision's
  ResNets; ``kaiming_uniform`` to ``mode=fan_in``, PyTorch's default; both to ``nonlinearity=relu``
  (``leaky_relu`` where ``a`` is given); a grouped convolution's fan_out is ``out / groups x kernel``;
- ``file``: weights from a file (``file:PATH``; a cnnlab or torchvision state dict, safetensors or a
  ``torch.save`` file read with ``weights_only=True``), registered by :mod:`cnnlab.models`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import CnnlabError, unknown_name

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _he(uniform: bool) -> Callable[..., None]:
    """He et al. 2015's initialisation, std ``gain / sqrt(fan)``, as ``torch.nn.init.kaiming_*_`` with two
    differences: ``fan_out`` of a grouped convolution counts the outputs one input reaches, ``out / groups x
    kernel`` (torch counts every output channel: a depthwise convolution's weights came out sqrt(C) too small,
    and without batch norm the gradient shrank by C at each one); and ``a`` alone means a leaky ReLU (torch
    ignores it unless told ``nonlinearity=leaky_relu``)."""
    def init(weight: torch.Tensor, a: float | None = None, mode: str = "fan_in", nonlinearity: str | None = None,
             groups: int = 1) -> None:
        if mode not in ("fan_in", "fan_out"):
            raise CnnlabError(f"mode must be fan_in or fan_out, got {mode!r}")
        nonlinearity = nonlinearity or ("leaky_relu" if a is not None else "relu")
        receptive = math.prod(weight.shape[2:])
        fan = weight.shape[1] * receptive if mode == "fan_in" else weight.shape[0] * receptive // groups
        std = nn.init.calculate_gain(nonlinearity, 0.0 if a is None else a) / math.sqrt(fan)
        with torch.no_grad():
            if uniform:
                weight.uniform_(-math.sqrt(3.0) * std, math.sqrt(3.0) * std)
            else:
                weight.normal_(0.0, std)

    init.takes_groups = True
    return init


def _weights_fn(fn: Callable[..., Any], **defaults: Any) -> Callable[..., None]:
    grouped = getattr(fn, "takes_groups", False)

    def apply(model: nn.Module, **kwargs: Any) -> None:
        args = {**defaults, **kwargs}
        for m in model.modules():
            if isinstance(m, _WEIGHTED):
                fn(m.weight, **args, **({"groups": m.groups} if grouped and isinstance(m, _CONVS) else {}))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    return apply


def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0) -> torch.Tensor:
    """Fill ``tensor`` in place with draws of N(``mean``, ``std``) truncated to [``a``, ``b``]; returns it.

    The distribution of ``torch.nn.init.trunc_normal_``, drawn faster. Written here because PyTorch's sampler
    redraws the whole tensor in every round of its rejection loop, until no element is left outside the bounds:
    at two standard deviations (4.6% of draws rejected, about six rounds for a million weights) that made the
    truncated-normal init most of the time it took to build an Inception network. Here one round draws the
    whole tensor and later rounds redraw only the elements still outside, so the cost is about one ``normal_``.
    Rejection keeps the draws exactly truncated-normal. Where the bounds keep less than 30% of the mass, as in
    PyTorch, rejection would take many rounds, and PyTorch's own sampler is used.
    """
    if tensor.is_meta:  # no storage: nothing to draw
        return tensor
    mass = 0.5 * (math.erf((b - mean) / (std * math.sqrt(2))) - math.erf((a - mean) / (std * math.sqrt(2))))
    if mass < 0.3:
        return nn.init.trunc_normal_(tensor, mean, std, a, b)
    with torch.no_grad():
        flat = tensor.view(-1) if tensor.is_contiguous() else torch.empty(tensor.numel(), dtype=tensor.dtype,
                                                                            device=tensor.device)
        flat.normal_(mean, std)
        outside = ((flat < a) | (flat > b)).nonzero().squeeze(1)
        while outside.numel():
            draws = torch.empty(outside.numel(), dtype=flat.dtype, device=flat.device).normal_(mean, std)
            flat[outside] = draws
            outside = outside[(draws < a) | (draws > b)]
        if flat.data_ptr() != tensor.data_ptr():
            tensor.copy_(flat.view(tensor.shape))
    return tensor


def torchvision_init(model: nn.Module, conv_mode: str = "fan_out", nonlinearity: str = "relu",
                     linear_std: float | None = None, linear_bias_zero: bool = False) -> None:
    """The family defaults torchvision uses: Kaiming-normal convolutions (bias 0), norm layers weight 1 and
    bias 0, and linear layers either N(0, ``linear_std``) with bias 0 or PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            # a model built on the meta device, for its shapes, has no values to draw: PyTorch would draw them
            # there through a slow Python path (most of the time `cnnlab models` took to build the zoo)
            if not m.weight.is_meta:
                nn.init.kaiming_normal_(m.weight, mode=conv_mode, nonlinearity=nonlinearity)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None and not m.weight.is_meta:  # as for the convolutions above
                nn.init.normal_(m.weight, 0, linear_std)
            else:
                m.reset_parameters()
            if linear_std is not None or linear_bias_zero:
                nn.init.zeros_(m.bias)


def _pytorch_default(model: nn.Module) -> None:
    for m in model.modules():
        if m is not model and hasattr(m, "reset_parameters"):
            m.reset_parameters()


SCHEMES: dict[str, Callable[..., None]] = {
    "pytorch": _pytorch_default,
    "uniform": _weights_fn(nn.init.uniform_, a=-0.05, b=0.05),
    "normal": _weights_fn(nn.init.normal_, mean=0.0, std=0.01),
    "constant": _weights_fn(nn.init.constant_, val=0.0),
    "xavier_uniform": _weights_fn(nn.init.xavier_uniform_),
    "xavier_normal": _weights_fn(nn.init.xavier_normal_),
    "kaiming_uniform": _weights_fn(_he(uniform=True), mode="fan_in"),
    "kaiming_normal": _weights_fn(_he(uniform=False), mode="fan_out"),
}
_ALIASES = {"xavier": "xavier_uniform", "glorot": "xavier_uniform", "kaiming": "kaiming_normal",
            "he": "kaiming_normal", "value": "val"}


_ARGUMENTS = {"pytorch": (), "uniform": ("a", "b"), "normal": ("mean", "std"), "constant": ("val",),
              "xavier_uniform": ("gain",), "xavier_normal": ("gain",),
              "kaiming_uniform": ("a", "mode", "nonlinearity"), "kaiming_normal": ("a", "mode", "nonlinearity")}


def register_scheme(name: str, fn: Callable[..., None], arguments: tuple[str, ...] = ()) -> None:
    """Add a scheme ``fn(model, **arguments)`` under ``name``. The model zoo adds ``file`` (a state dict from a
    file, mapped from torchvision's keys where needed): this layer knows nothing of models or files."""
    SCHEMES[name] = fn
    _ARGUMENTS[name] = arguments


def parse_init(spec: str) -> tuple[str, dict[str, Any]]:
    """Parse ``"normal:std=0.02,mean=0"`` into ``("normal", {"std": 0.02, "mean": 0.0})``.

    ``"file:PATH"`` keeps the path whole.
    """
    if not isinstance(spec, str):
        raise CnnlabError(f"an init scheme is a name such as 'kaiming_normal' (with its arguments: "
                          f"'normal:std=0.02'), got {spec!r}")
    name, _, rest = spec.partition(":")
    name = _ALIASES.get(name.strip(), name.strip())
    if name == "file":
        if not rest:
            raise CnnlabError("init 'file' needs a path: use init='file:PATH'")
        return name, {"path": rest}
    kwargs: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise CnnlabError(f"init argument '{item}' is not key=value (example: 'normal:std=0.02')")
        key = _ALIASES.get(key.strip(), key.strip())
        try:
            kwargs[key] = float(value)
        except ValueError:
            kwargs[key] = value.strip()
    return name, kwargs


def init_weights(model: nn.Module, scheme: str = "pytorch", **kwargs: Any) -> nn.Module:
    """Re-initialise ``model`` in place with a named scheme (see the module docstring); returns it.

    ``scheme`` may carry its arguments: ``init_weights(model, "uniform:a=-0.1,b=0.1")``.
    """
    name, parsed = parse_init(scheme)
    kwargs = {**parsed, **kwargs}
    if name == "default":
        reset = getattr(model, "init_weights", None)
        if reset is None:
            raise CnnlabError(f"{type(model).__name__} has no family default init; pick a named scheme")
        reset()
        return model
    if name not in SCHEMES:
        raise unknown_name("init scheme", name, [*SCHEMES, "default"])
    allowed = _ARGUMENTS.get(name)
    unknown = [k for k in kwargs if allowed is not None and k not in allowed]
    if unknown:
        raise CnnlabError(f"init '{name}' has no argument '{unknown[0]}'; it takes {', '.join(allowed) or 'none'}")
    text = [k for k in ("a", "b", "mean", "std", "val", "gain") if isinstance(kwargs.get(k), str)]
    if text:
        raise CnnlabError(f"init '{name}': {text[0]} must be a number, got '{kwargs[text[0]]}'")
    _check_values(name, kwargs)
    try:
        SCHEMES[name](model, **kwargs)
    except (TypeError, ValueError, RuntimeError) as e:  # torch's own checks of what is left
        raise CnnlabError(f"init '{name}' cannot use {kwargs}: {str(e).splitlines()[0]}") from None
    return model


def _check_values(name: str, kwargs: dict[str, Any]) -> None:
    """Numbers a scheme can draw from: finite, a spread (std, gain) not negative, a uniform range not empty."""
    for key in ("a", "b", "mean", "std", "val", "gain"):
        if key in kwargs and not math.isfinite(kwargs[key]):
            raise CnnlabError(f"init '{name}': {key} must be a finite number, got {kwargs[key]}")
    for key in ("std", "gain"):
        if kwargs.get(key, 0) < 0:
            raise CnnlabError(f"init '{name}': {key} must not be negative, got {kwargs[key]:g}")
    if name == "uniform" and kwargs.get("a", -0.05) >= kwargs.get("b", 0.05):
        raise CnnlabError(f"init 'uniform' draws from [a, b): a must be less than b, got a={kwargs.get('a', -0.05):g}, "
                          f"b={kwargs.get('b', 0.05):g}")
