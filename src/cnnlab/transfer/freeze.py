"""What trains: backbone and head parameters, freezing (with batch-norm control) and parameter groups.

Written once against the backbone/head contract (:class:`cnnlab.models.Classifier`): the head is the
``head`` module (pool, hidden layers, final linear) plus the auxiliary heads a model declares (``aux_heads``:
GoogLeNet's two, Inception v3's one); the backbone is everything else, in stages given by ``feature_info``.
"""

from __future__ import annotations

import types

import torch
from torch import nn

from ..errors import CnnlabError

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def head_modules(model: nn.Module) -> tuple[str, ...]:
    """The names of the model's children that make its head: ``head`` and its auxiliary classifiers."""
    return ("head", *getattr(model, "aux_heads", ()))


def is_head(model: nn.Module, name: str) -> bool:
    """Whether a parameter or module name of ``model`` belongs to its head."""
    return name.split(".", 1)[0] in head_modules(model)


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if is_head(model, n)]


def backbone_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if not is_head(model, n)]


def backbone_modules(model: nn.Module) -> list[nn.Module]:
    """The model's direct children that make the backbone."""
    return [m for n, m in model.named_children() if n not in head_modules(model)]


def _bn_train_locked(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


def set_bn_frozen(module: nn.Module, frozen: bool = True) -> None:
    """Keep every batch-norm layer in ``module`` in inference mode, even when ``model.train()`` is called:
    it normalises with its running statistics and never updates them. ``frozen=False`` undoes it.

    (The layer's ``train`` method is replaced on the instance; ``nn.Module.train`` calls it on each child.)
    """
    for m in module.modules():
        if isinstance(m, _BN):
            if frozen:
                m.train = types.MethodType(_bn_train_locked, m)
                m.training = False
            elif "train" in m.__dict__:
                del m.train


def is_bn_frozen(module: nn.Module) -> bool:
    return "train" in module.__dict__


def freeze(module: nn.Module, bn: bool = True) -> nn.Module:
    """No gradients for any parameter of ``module``; with ``bn`` its batch-norm layers stay in inference
    mode too, so their running statistics do not drift."""
    for p in module.parameters():
        p.requires_grad_(False)
    if bn:
        set_bn_frozen(module, True)
    return module


def unfreeze(module: nn.Module, bn: bool = True) -> nn.Module:
    """Train every parameter of ``module`` again; with ``bn`` its batch-norm layers follow ``train()`` again."""
    for p in module.parameters():
        p.requires_grad_(True)
    if bn:
        set_bn_frozen(module, False)
    return module


def freeze_backbone(model: nn.Module, bn: bool = True) -> nn.Module:
    """Freeze everything but the head."""
    for m in backbone_modules(model):
        freeze(m, bn)
    return model


def stage_modules(model: nn.Module, k: int) -> list[str]:
    """Names of the modules up to and including the end of backbone stage ``k`` (1-based, by ``feature_info``)."""
    info = getattr(model, "feature_info", None)
    if not info:
        raise CnnlabError(f"{type(model).__name__} has no feature_info, so its stages are unknown")
    if not 0 <= k <= len(info):
        raise CnnlabError(f"freeze_stages (--freeze-stages) must be between 0 and {len(info)} (the stages of "
                          f"{getattr(model.meta, 'name', type(model).__name__)}: "
                          f"{', '.join(f.module for f in info)}), got {k}")
    if k == 0:
        return []
    names = [n for n, _ in model.named_modules() if n]
    last = info[k - 1].module
    if last not in names:
        raise CnnlabError(f"feature_info names module '{last}', which the model does not have")
    end = max(i for i, n in enumerate(names) if n == last or n.startswith(last + "."))
    return [n for n in names[: end + 1] if not is_head(model, n)]


def freeze_stages(model: nn.Module, k: int, bn: bool = True) -> list[str]:
    """Freeze the first ``k`` stages of the backbone (the stem belongs to stage 1); returns the frozen modules."""
    names = stage_modules(model, k)
    modules = dict(model.named_modules())
    for n in names:
        m = modules[n]
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
        if bn and isinstance(m, _BN):
            set_bn_frozen(m, True)
    return names


def param_groups(model: nn.Module, lr: float, backbone_factor: float) -> list[dict]:
    """Two optimiser groups: the head at ``lr`` and the backbone at ``lr x backbone_factor`` (discriminative
    learning rates). Frozen parameters stay in their group: they are skipped while they have no gradient,
    so a warm start can unfreeze them later without a new optimiser."""
    groups = [{"params": head_parameters(model), "lr": lr, "name": "head"},
              {"params": backbone_parameters(model), "lr": lr * backbone_factor, "name": "backbone"}]
    return [g for g in groups if g["params"]]


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer (to check what changed)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
