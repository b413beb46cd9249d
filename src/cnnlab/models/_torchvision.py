"""Loading torchvision (and cnnlab) state dicts into cnnlab models.

cnnlab names its modules for readability (``stem.conv.conv``, ``layer1.0.conv1.bn``), so keys differ from
torchvision's (``conv1``, ``layer1.0.bn1``). Both libraries register parameters in forward order, so the
i-th tensor of torchvision's model is the i-th tensor of the matching cnnlab model. The loader puts the
file's keys in that order (from torchvision's own model, built on the meta device: files such as
safetensors do not keep the order), pairs them by position and checks every pair's shape and kind
(weight, bias, running_mean, ...). A wrong pairing cannot pass silently: equivalence with torchvision's
outputs is tested for every architecture.

Files are read with ``torch.load(weights_only=True)`` or from safetensors; never as an arbitrary pickle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import nn

from .._io import not_a_file
from ..errors import CnnlabError, WeightsError
from ..nn.init import register_scheme
from ._registry import get_builder, list_models

# auxiliary classifiers (GoogLeNet's two, Inception v3's one: torchvision's AuxLogits) may be absent on either side
_OPTIONAL_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")
_AUX_MODELS = ("googlenet", "inception_v3")  # torchvision builders that take aux_logits and init_weights


class LoadResult(NamedTuple):
    """Keys of the model left as they were (``missing_keys``) and keys of the file not used."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.safetensors`` file or a ``torch.save`` file (``weights_only=True``)."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise not_a_file(path, "weights file")
    if os.path.getsize(path) == 0:
        raise WeightsError(f"weights file '{path}' is empty")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # corrupt or foreign files fail in many ways (and with upgrade notices): one line for all
        raise WeightsError(f"cannot read weights from '{path}': it is not a safetensors file or a state dict saved "
                           f"with torch.save (corrupt, truncated, or another format)") from None
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"'{path}' does not hold a state dict (a mapping of names to tensors)")
    return dict(state)


def classifier_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the layers that ``reset_classifier`` replaces."""
    keys = {f"head.fc.{n}" for n, _ in model.head.fc.named_parameters()} if hasattr(model, "head") else set()
    for name in getattr(model, "aux_heads", ()):
        aux = getattr(model, name, None)
        if aux is not None:
            keys |= {f"{name}.{aux.final}.weight", f"{name}.{aux.final}.bias"}
    return keys


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def load_torchvision_weights(
    model: nn.Module,
    path_or_state_dict: str | os.PathLike | Mapping[str, torch.Tensor],
    skip_head: bool = False,
) -> LoadResult:
    """Load a torchvision state dict (e.g. a cached ``resnet18-f37072fd.pth``) into a cnnlab model.

    Args:
        model: the matching cnnlab model (``create_model("resnet18")`` for a torchvision resnet18 file).
        path_or_state_dict: a file path (``.pth``/``.pt`` read with ``weights_only=True``, or
            ``.safetensors``) or a state dict.
        skip_head: keep the model's own classifier where its size differs from the file's (for a new
            number of classes); otherwise a size mismatch is an error.

    Returns:
        :class:`LoadResult` with the model keys not loaded and the file keys not used.

    Raises:
        WeightsError: the file is for another architecture or its shapes do not fit.
    """
    if not isinstance(model, nn.Module):
        raise CnnlabError(f"load_torchvision_weights loads into a model (cnnlab.create_model('resnet18')), not "
                          f"{model!r}")
    if isinstance(path_or_state_dict, Mapping):
        theirs = dict(path_or_state_dict)
    else:
        theirs = read_state_dict(path_or_state_dict)
    ours = model.state_dict()
    meta = getattr(model, "meta", None)
    name = getattr(meta, "name", type(model).__name__)
    if set(theirs) == set(ours):  # a state dict with cnnlab's own keys
        return _load_own_keys(model, theirs, name, skip_head)
    if getattr(model, "small_input", False) and set(theirs) != set(ours):  # torchvision's keys: even where the
        # shapes still fit (MobileNets, EfficientNets)
        raise WeightsError(f"torchvision's weights are for {name}'s ImageNet form, not the small_input=True one "
                           f"built here (its stem and strides differ); build it without small_input to load them")
    our_keys, their_keys = list(ours), _canonical_order(theirs, getattr(meta, "torchvision", None), name)
    missing, unexpected = [], []
    if len(our_keys) != len(their_keys):  # reconcile optional auxiliary heads
        opt = lambda keys: [k for k in keys if k.startswith(_OPTIONAL_PREFIXES)]  # noqa: E731
        if len(our_keys) > len(their_keys):
            missing = opt(our_keys)
            our_keys = [k for k in our_keys if k not in missing]
        else:
            unexpected = opt(their_keys)
            their_keys = [k for k in their_keys if k not in unexpected]
    if len(our_keys) != len(their_keys):
        raise WeightsError(
            f"the weights have {len(theirs)} tensors but {name} has {len(ours)}: they are for another "
            f"architecture{_guess_architecture(theirs)}"
        )
    head_keys = classifier_keys(model) if skip_head else set()
    mapped = {}
    for ok, tk in zip(our_keys, their_keys, strict=True):
        o, t = ours[ok], theirs[tk]
        if _kind(ok) != _kind(tk):
            raise WeightsError(f"weights do not fit {name}: '{tk}' would load into '{ok}'; another architecture?")
        if o.shape != t.shape:
            if ok in head_keys:
                missing.append(ok)
                unexpected.append(tk)
                continue
            hint = " (pass skip_head=True to keep the new classifier)" if ok in classifier_keys(model) else ""
            raise WeightsError(
                f"weights do not fit {name}: '{tk}' has shape {tuple(t.shape)} but '{ok}' needs "
                f"{tuple(o.shape)}{hint}"
            )
        mapped[ok] = t
    result = model.load_state_dict(mapped, strict=False)
    assert not result.unexpected_keys  # mapped keys come from the model itself
    return LoadResult(sorted(set(result.missing_keys)), unexpected)


def _load_own_keys(model: nn.Module, theirs: dict[str, torch.Tensor], name: str, skip_head: bool) -> LoadResult:
    """A state dict with the model's own keys: loaded where every shape fits (with ``skip_head``, but for a
    classifier of another size), else the first tensor that does not fit, named with both shapes."""
    ours, head = model.state_dict(), classifier_keys(model)
    misfit = [k for k in ours if theirs[k].shape != ours[k].shape]
    kept_new = [k for k in misfit if skip_head and k in head]
    wrong = [k for k in misfit if k not in kept_new]
    if wrong:
        k = wrong[0]
        hint = (" (pass skip_head=True to keep the new classifier)" if k in head
                else " (its small_input=True form)" if getattr(model, "small_input", False) else "")
        raise WeightsError(f"weights do not fit {name}: '{k}' has shape {tuple(theirs[k].shape)} but {name} here "
                           f"needs {tuple(ours[k].shape)}{hint}")
    model.load_state_dict({k: v for k, v in theirs.items() if k not in kept_new}, strict=False)
    return LoadResult(sorted(kept_new), sorted(kept_new))


def _canonical_order(state: Mapping[str, torch.Tensor], tv_name: str | None, name: str) -> list[str]:
    """The file's keys in torchvision's registration order (the file's own order if there is no equivalent)."""
    if tv_name is None:
        return list(state)
    import torchvision

    kwargs = {"aux_logits": any(k.startswith(_OPTIONAL_PREFIXES) for k in state), "init_weights": False} \
        if tv_name in _AUX_MODELS else {}
    with torch.device("meta"):
        reference = list(getattr(torchvision.models, tv_name)(**kwargs).state_dict())
    if set(reference) != set(state):
        unknown = sorted(set(state) - set(reference))[:2] or sorted(set(reference) - set(state))[:2]
        raise WeightsError(
            f"the weights do not have torchvision {tv_name}'s keys (first differences: {unknown}): they are for "
            f"another architecture{_guess_architecture(state)}"
        )
    return reference


def _guess_architecture(state: Mapping[str, torch.Tensor]) -> str:
    """' (it looks like NAME)' when the tensor shapes match a registered model, else ''."""
    shapes = sorted(tuple(v.shape) for k, v in state.items() if not k.startswith(_OPTIONAL_PREFIXES))
    fc = [v for k, v in state.items() if k.endswith("fc.weight") or k.endswith("classifier.6.weight")]
    num_classes = fc[-1].shape[0] if fc else 1000
    for name in list_models():
        m = _meta_model(name, num_classes)
        if m is not None and sorted(tuple(v.shape) for v in m.state_dict().values()) == shapes:
            return f" (it looks like {name})"
    return ""


def _meta_model(name: str, num_classes: int) -> nn.Module | None:
    """``name`` on the meta device, without auxiliary classifiers where it takes them; None if it cannot be built
    for ``num_classes``."""
    for kwargs in ({"aux_logits": False}, {}):
        try:
            with torch.device("meta"):
                return get_builder(name)(num_classes=num_classes, **kwargs)
        except Exception:
            continue
    return None


def load_weights_file(model: nn.Module, path: str | os.PathLike, skip_head: bool = False) -> LoadResult:
    """Load a cnnlab state dict (same keys) or a torchvision one (paired by position) into ``model``."""
    return load_torchvision_weights(model, read_state_dict(path), skip_head=skip_head)


# ``init="file:PATH"`` (cnnlab.nn.init_weights and create_model): a cnnlab or torchvision state dict
register_scheme("file", lambda model, path: load_weights_file(model, path), ("path",))
