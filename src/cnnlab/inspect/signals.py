"""How the signal travels through a network: per-layer activation and gradient statistics on one batch.

The pictures of vanishing and exploding signals (Glorot & Bengio 2010, Fig. 6-7; He et al. 2015, Sec. 2.2)
are these numbers per layer, from the input to the output:

- **activations**: the mean and standard deviation of every activation module's output (ReLU, sigmoid, tanh,
  ...), in the order they run. A scheme that keeps the signal alive keeps the std roughly constant with depth;
  a too-small scale makes it shrink geometrically, a too-large one grow.
- **gradients**: the norm and standard deviation of the loss gradient with respect to the weights of every
  convolution and linear layer, in the order they run: what a plain SGD step changes in each layer.

One forward and one backward pass, in the model's current mode (train mode uses and updates batch-norm batch
statistics; eval mode does not); the model's ``.grad`` fields are left untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..nn.act import ACT_LAYERS

_ACTIVATIONS = (*set(ACT_LAYERS.values()), nn.Hardtanh, nn.PReLU)  # ReLU6 is a Hardtanh
_WEIGHTED = (nn.Conv2d, nn.Linear)


@dataclass
class SignalStats:
    """Per-layer statistics of one batch (each list in the order the layers ran)."""

    activations: list[dict]  # {"name", "type", "mean", "std"}: every activation module's output
    gradients: list[dict]    # {"name", "type", "weight_std", "grad_norm", "grad_std"}: every weighted layer
    loss: float


def signal_stats(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> SignalStats:
    """Run ``loss_fn(model(x), y)`` once forward and backward and measure every activation and weighted layer."""
    names = {m: n for n, m in model.named_modules()}
    activations, order, hooks = [], [], []

    def on_activation(module, inputs, output) -> None:
        out = output.detach().float()  # read now: an in-place layer after this one may overwrite it
        activations.append({"name": names[module], "type": type(module).__name__, "mean": out.mean().item(),
                            "std": out.std().item() if out.numel() > 1 else 0.0})

    def on_weighted(module, inputs, output) -> None:
        if module not in order:
            order.append(module)

    for m in model.modules():
        if isinstance(m, _ACTIVATIONS):
            hooks.append(m.register_forward_hook(on_activation))
        elif isinstance(m, _WEIGHTED):
            hooks.append(m.register_forward_hook(on_weighted))
    try:
        loss = loss_fn(model(x), y)
    finally:
        for h in hooks:
            h.remove()
    weights = [m.weight for m in order]
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    gradients = []
    for m, w, g in zip(order, weights, grads, strict=True):
        g = torch.zeros_like(w) if g is None else g.detach().float()
        gradients.append({"name": names[m], "type": type(m).__name__, "weight_std": w.detach().float().std().item(),
                          "grad_norm": g.norm().item(), "grad_std": g.std().item()})
    return SignalStats(activations, gradients, loss.item())
