"""torch.optim's SGD, Adam and AdamW, without importing PyTorch's compiler.

Every ``torch.optim`` optimiser imports ``torch._dynamo``, the front end of ``torch.compile``, the first time
one is built: ``add_param_group``, ``zero_grad``, ``state_dict``, ``load_state_dict`` and ``step`` are wrapped
so that a compiled graph does not trace into them, and the wrappers import the compiler to say so. That import
takes about a second on a 2-core machine (0.9-1.4 s measured here), a sixth of a short ``cnnlab train`` whose
loop never runs the optimiser under the compiler (``--compile`` compiles the model's forward pass only).

The classes below are torch.optim's own, with those five methods called unwrapped (``inspect.unwrap``
follows the ``__wrapped__`` that each of torch's decorators records) and ``step`` run with gradients off, as
the wrapper runs it. The arithmetic, the fused kernels, the state dicts, the step hooks and the schedulers
are torch's; ``tests/test_optim.py`` checks each class step by step against the torch.optim class it comes
from, and that a whole training process never imports ``torch._dynamo``.
"""

from __future__ import annotations

import inspect

import torch
from torch.optim import Optimizer


class _Eager:
    """Mixed in before a torch.optim class: its compiler-guarded methods, called unwrapped."""

    def add_param_group(self, param_group: dict) -> None:
        inspect.unwrap(Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        inspect.unwrap(Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict:
        return inspect.unwrap(Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict) -> None:
        inspect.unwrap(Optimizer.load_state_dict)(self, state_dict)

    def step(self, closure=None):
        torch_step = inspect.unwrap(super().step.__func__)  # the torch.optim class's own step
        with torch.set_grad_enabled(self.defaults.get("differentiable", False)):
            return torch_step(self, closure)


class SGD(_Eager, torch.optim.SGD):
    """``torch.optim.SGD`` that does not import the compiler."""


class Adam(_Eager, torch.optim.Adam):
    """``torch.optim.Adam`` that does not import the compiler."""


class AdamW(_Eager, torch.optim.AdamW):
    """``torch.optim.AdamW`` that does not import the compiler."""
