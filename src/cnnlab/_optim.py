"""torch.optim's SGD, Adam and AdamW, without importing PyTorch's compiler.

Every ``torch.optim`` optimiser imports ``torch._dynamo``, the front end of ``torch.compile``, the first time
one is built: ``add_param_group``, ``zero_grad``, ``state_dict``, ``load_state_dict`` and ``step`` are wrapped
so that a compiled graph does not trace into them, and the wrappers import the compiler to say so. That import
takes about a second on a 2-core machine (0.9-1.4 s measured), against 2.45 s for a whole one-epoch
``cnnlab train``, whose loop never runs the optimiser under the compiler (``--compile`` compiles the model's
forward pass only).

The classes below are torch.optim's own, with those five methods called without the wrappers that guard them
from the compiler (and nothing else: a wrapper this module does not know is kept, and with it the import),
``step`` run with gradients off as its wrapper runs it. The arithmetic, the fused kernels, the state dicts,
the step hooks and the schedulers are torch's; ``tests/test_optim.py`` checks each class step by step against
the torch.optim class it comes from, and that whole training processes never import ``torch._dynamo``.
"""

from __future__ import annotations

import functools

import torch
from torch.optim import Optimizer

# the wrappers torch puts around an optimiser's methods, by their code's own qualified name (functools.wraps
# gives a wrapper its wrapped function's __qualname__, not its code's)
_GUARDS = frozenset({
    "_disable_dynamo.<locals>.inner",                    # torch._disable_dynamo: imports the compiler
    "_use_grad_for_differentiable.<locals>._use_grad",   # sets grad mode (done in step below), imports it
    "Optimizer.profile_hook_step.<locals>.wrapper",      # step hooks: our class's own step gets them too
})


@functools.cache
def unguarded(fn):
    """``fn`` without torch's compiler guards around it; stops at any other wrapper."""
    while getattr(fn, "__wrapped__", None) is not None and fn.__code__.co_qualname in _GUARDS:
        fn = fn.__wrapped__
    return fn


class _Eager:
    """Mixed in before a torch.optim class: its compiler-guarded methods, called unguarded."""

    def add_param_group(self, param_group: dict) -> None:
        unguarded(Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        unguarded(Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict:
        return unguarded(Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict) -> None:
        unguarded(Optimizer.load_state_dict)(self, state_dict)

    def step(self, closure=None):
        torch_step = unguarded(super().step.__func__)  # the torch.optim class's own step
        with torch.set_grad_enabled(self.defaults.get("differentiable", False)):
            return torch_step(self, closure)


class SGD(_Eager, torch.optim.SGD):
    """``torch.optim.SGD`` that does not import the compiler."""


class Adam(_Eager, torch.optim.Adam):
    """``torch.optim.Adam`` that does not import the compiler."""


class AdamW(_Eager, torch.optim.AdamW):
    """``torch.optim.AdamW`` that does not import the compiler."""
