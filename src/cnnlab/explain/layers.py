"""Layers by name, and their outputs captured while the network runs.

Names are those of ``model.named_modules()``, the names ``cnnlab summary`` prints (``features.c1``,
``layer4``, ``layer4.1.conv2``). :func:`capture` hands back each layer's output and lets the network go on
with a copy of it, so an in-place operation after the layer (``ReLU(inplace=True)``, ``out += identity``)
cannot change what was captured, nor break the gradient taken with respect to it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import CnnlabError

SHOWN = 40  # names an unknown layer's message lists at most: DenseNet-201 has over a thousand


def _shown(names: list[str]) -> str:
    """The valid names, or, where there are many, those nested two deep at most (``layer4``, ``layer4.1``), with
    the count: the message of a deep network listed every module, 33 kB on one line."""
    if len(names) <= SHOWN:
        return ", ".join(names) if names else "none"
    shallow = [n for n in names if n.count(".") <= 1] or names  # (a deep network's convolutions are all deep)
    listed = ", ".join(shallow[:SHOWN]) + (", ..." if len(shallow) > SHOWN else "")
    return f"{listed} ({len(names)} in all, nested with dots, e.g. {max(names, key=lambda n: n.count('.'))})"


def find_layer(model: nn.Module, name: str, kinds: tuple[type, ...] = (), what: str = "layer") -> nn.Module:
    """The module called ``name`` in ``model`` (of one of ``kinds``, if given); an unknown name is a one-line
    error that lists the valid names, closest first."""
    modules = dict(model.named_modules())
    valid = [n for n, m in modules.items() if n and (not kinds or isinstance(m, kinds))]
    if name in valid:
        return modules[name]
    if not name or not isinstance(name, str):
        raise CnnlabError(f"a layer is named by a module's name, such as {valid[0] if valid else 'layer1'}; got "
                          f"{name!r}; valid {what}s: {_shown(valid)}")
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    if name in modules:
        wanted = " or ".join(k.__name__ for k in kinds)
        found = type(modules[name]).__name__
        raise CnnlabError(f"layer '{name}' is {'an' if found[0] in 'AEIOU' else 'a'} {found}, not a {wanted}; "
                          f"{hint}valid {what}s: {_shown(valid)}")
    raise CnnlabError(f"no layer named '{name}' in the model; {hint}valid {what}s: {_shown(valid)}")


def first_layer(model: nn.Module, kinds: tuple[type, ...] = (nn.Conv2d,)) -> str:
    """The name of the first module of one of ``kinds`` (in the order the model defines them)."""
    for n, m in model.named_modules():
        if isinstance(m, kinds):
            return n
    raise CnnlabError(f"the model has no {' or '.join(k.__name__ for k in kinds)} layer")


def stage_layers(model: nn.Module) -> list[str]:
    """The output of each stage of a classifier's backbone, from its ``feature_info``."""
    info = getattr(model, "feature_info", None)
    if not info:
        raise CnnlabError(f"{type(model).__name__} declares no stages (feature_info); name the layer (layer=, or "
                          f"layers= for feature_maps)")
    return [f["module"] for f in info]


class LayerReached(BaseException):
    """Raised by :func:`capture` with ``stop=True`` once every layer asked for has run: the rest of the forward
    pass is skipped. A ``BaseException``, so that a model's own ``except Exception`` cannot swallow it."""


@contextmanager
def inspecting(model: nn.Module, frozen: bool = True) -> Iterator[nn.Module]:
    """The model in eval mode and, with ``frozen``, with no parameter requiring a gradient (views take
    gradients with respect to inputs or layer outputs only: no graph is kept for the weights, and frozen models
    work as well); every module's mode and every parameter's ``requires_grad`` are restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.eval()
        if frozen:
            for p, _ in grads:
                p.requires_grad_(False)
        yield model
    finally:
        for m, training in modes:
            m.training = training
        for p, r in grads:
            p.requires_grad_(r)


@contextmanager
def capture(model: nn.Module, names: list[str], stop: bool = False,
            grad: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """While the block runs, every forward pass of ``model`` fills the dict with the output of each named
    layer (the last call's, for a layer that runs twice; with ``stop``, the first's: the pass ends with
    :class:`LayerReached` as soon as all of them have run). With ``grad``, each captured output is a new leaf
    that requires a gradient, from which the rest of the network continues: ``torch.autograd.grad(score,
    captured)`` then needs no graph of the layers before it. The hooks are removed when the block ends, also on
    an error."""
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name: str):
        def keep(module, args, output):
            if not isinstance(output, torch.Tensor):
                raise CnnlabError(f"layer '{name}' returns a {type(output).__name__}, not a tensor; choose "
                                  f"another layer")
            if grad:
                output = output.detach().requires_grad_(True)
            outputs[name] = output
            seen.add(name)
            if stop and len(seen) == len(wanted):
                raise LayerReached(name)
            return output.clone()  # the network continues with a copy: in-place ops downstream leave ours alone
        return keep

    wanted = list(dict.fromkeys(names))
    seen: set[str] = set()  # the layers this forward pass has run so far
    try:
        handles.append(model.register_forward_pre_hook(lambda module, args: seen.clear()))
        for name in wanted:
            handles.append(find_layer(model, name).register_forward_hook(hook(name)))
        yield outputs
    finally:
        for h in handles:
            h.remove()
