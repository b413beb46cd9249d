"""The source of a transfer: a trained model's weights in a new model sized for the target.

A source is a cnnlab run directory, a cnnlab checkpoint (``.safetensors`` with cnnlab metadata) or a
torchvision weights file (read through :func:`cnnlab.load_torchvision_weights`). The new model keeps every
backbone weight; its classifier is new and random, sized for the target's classes. Loading is checked,
never silently partial: the only keys left missing must be the classifier's, and no key may be unused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import CnnlabError, WeightsError
from ..models import classifier_keys, create_model, load_torchvision_weights, read_state_dict
from ..train import Run
from ..train.checkpoint import load_weights, read_metadata


@dataclass
class Source:
    """A source model's weights and what is known about them."""

    path: Path
    state: dict[str, torch.Tensor]
    model: str | None                     # architecture name (None: unknown, for a torchvision file)
    model_kwargs: dict = field(default_factory=dict)
    classes: list[str] | None = None      # the source's class names (cnnlab runs)
    data: str | None = None               # the source's dataset spec (cnnlab runs)
    preprocess: dict | None = None
    binary: bool = False
    kind: str = "cnnlab"                  # cnnlab | torchvision
    split: dict | None = None             # the seed and fractions its data was split with (cnnlab runs)
    splits: dict | None = None            # the sizes of its train/val/test splits (cnnlab runs)

    @property
    def in_chans(self) -> int | None:
        return self.model_kwargs.get("in_chans")


def read_source(path: str | Path) -> Source:
    """Read a run directory, a cnnlab checkpoint or a torchvision weights file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CnnlabError(f"source '{path}' does not exist; pass a run directory, a checkpoint or a weights file")
    meta = None
    if path.is_file() and path.suffix == ".safetensors":
        try:
            meta = read_metadata(path)
        except CnnlabError:
            meta = None  # not cnnlab's: perhaps torchvision's
    if path.is_dir() or (meta and ("kind" in meta or "model" in meta)):
        run = Run.open(path, holds="classifier")
        state, meta = load_weights(run.file)
        return Source(path, state, meta["model"], dict(meta.get("model_kwargs", {})), meta.get("classes"),
                      meta.get("data"), meta.get("preprocess"), bool(meta.get("binary")), "cnnlab", run.split,
                      meta.get("splits"))
    try:
        state = read_state_dict(path)
    except WeightsError as e:
        raise CnnlabError(f"source '{path}' is not a checkpoint or weights file: {e}") from None
    return Source(path, state, None, {}, None, None, None, False, "torchvision")


def first_conv_key(model: nn.Module) -> str:
    """The state-dict key of the first convolution's weight (the one that sees the image's channels)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return f"{name}.weight"
    raise CnnlabError(f"{type(model).__name__} has no convolution to adapt")


def adapt_channels(weight: torch.Tensor, in_chans: int, how: str = "auto") -> torch.Tensor:
    """A first-convolution kernel ``out x c x k x k`` for ``in_chans`` input channels.

    * RGB -> grayscale (``sum``): the kernels are summed over the colour channels, so a gray image gives the
      response the RGB network gave to that image repeated on three channels.
    * grayscale -> RGB (``repeat``): the kernel is repeated on each channel and divided by their number, so
      an RGB image whose channels are equal gives the gray network's response.

    Other pairs (e.g. 4 -> 3) have no such equivalence and are refused.
    """
    c = weight.shape[1]
    if c == in_chans:
        return weight
    if how == "auto":
        how = "sum" if in_chans == 1 else "repeat" if c == 1 else "none"
    if how == "sum" and in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    if how == "repeat" and c == 1:
        return weight.repeat(1, in_chans, 1, 1) / in_chans
    fits = ("; --adapt-channels sum (or auto) does" if in_chans == 1 else "; --adapt-channels repeat (or auto) does"
            if c == 1 else "; convert the images instead")
    by = "" if how == "none" else f" by {how}"  # auto found no way
    raise CnnlabError(f"cannot adapt a first convolution of {c} input channel(s) to {in_chans}{by}: summing "
                      f"works for N -> 1 channels and repeating for 1 -> N{fits}")


def transfer_weights(model: nn.Module, source: Source, adapt: str = "auto", model_kwargs: dict | None = None
                     ) -> list[str]:
    """Load ``source`` into ``model`` (built for the target) except its classifier; return the keys kept new.

    ``model_kwargs`` are the builder arguments ``model`` was created with (a torchvision file is first read
    into a model built the same way, with the file's channels and classes).

    Raises a one-line :class:`CnnlabError` unless the only missing keys are the classifier's and no key of the
    source is left unused.
    """
    head = classifier_keys(model)
    ours = model.state_dict()
    state = dict(source.state)
    name = getattr(getattr(model, "meta", None), "name", type(model).__name__)
    key = first_conv_key(model)
    if source.kind == "torchvision":
        # read into a model of the file's own channels and classes, then continue with its cnnlab-keyed state
        # a cnnlab state dict without metadata has the model's own classifier key; a .safetensors file lists its
        # keys in alphabetical order, where "the last 2-D weight" of torchvision's order is not the classifier
        fc = state.get("head.fc.weight")
        kwargs = {**(model_kwargs or {}), "in_chans": state[key].shape[1] if key in state else 3,
                  "num_classes": fc.shape[0] if fc is not None and fc.dim() == 2 else _file_classes(state)}
        staging = create_model(name, **kwargs)
        try:
            result = load_torchvision_weights(staging, state)
        except CnnlabError as e:
            if not kwargs.get("small_input"):
                raise
            raise CnnlabError(f"{e}: drop --small-input") from None
        if result.missing_keys or result.unexpected_keys:
            raise CnnlabError(f"the weights in '{source.path}' do not fully fit {name}: missing "
                              f"{result.missing_keys[:3]}, unused {result.unexpected_keys[:3]}")
        state = staging.state_dict()
    v, mine = state.get(key), ours.get(key)
    if v is not None and mine is not None and v.shape[1] == mine.shape[1] == 1 and v.shape[0] != mine.shape[0] \
            and _depthwise_over_the_image(name, key, model_kwargs):
        # a depthwise convolution over the image: a filter bank per image channel, which no sum folds into
        # fewer channels (the pointwise convolution after it mixes products of both)
        raise CnnlabError(f"the source's '{key}' is a depthwise convolution over the image's channels, "
                          f"{v.shape[0]} filters where {name} here has {mine.shape[0]}: it cannot be adapted "
                          f"to another number of input channels; give the model the source's channels (or, "
                          f"for inception_v2, build both with separable_stem=False)")
    # the convolutions that take the image: one in most networks, one per column in FractalNet's first block;
    # between two builds of one architecture for other image channels, they are the kernels that differ in
    # their input channels alone
    for k, v in state.items():
        mine = ours.get(k)
        if mine is not None and v.dim() == 4 and v.shape[1] != mine.shape[1] and \
                (v.shape[0], *v.shape[2:]) == (mine.shape[0], *mine.shape[2:]):
            state[k] = adapt_channels(v, mine.shape[1], adapt)
    keep = {k: v for k, v in state.items() if k not in head}
    for k, v in keep.items():
        if k in ours and ours[k].shape != v.shape:
            raise CnnlabError(f"the source's '{k}' has shape {tuple(v.shape)} but {name} here needs "
                              f"{tuple(ours[k].shape)}; is the source another architecture or model argument?")
    result = model.load_state_dict(keep, strict=False)
    missing, unexpected = set(result.missing_keys), set(result.unexpected_keys)
    aux = {k for k in missing | unexpected if k.split(".", 1)[0] in getattr(model, "aux_heads", ())}
    if unexpected - aux or (missing - aux) != head - aux:
        raise CnnlabError(f"the source does not fit {name}: missing {sorted(missing - head)[:3]}, unused "
                          f"{sorted(unexpected)[:3]}; is it another architecture?")
    return sorted(missing)


def _depthwise_over_the_image(name: str, key: str, model_kwargs: dict | None) -> bool:
    """Whether the convolution ``key`` of model ``name`` is depthwise over the image's channels (one filter bank
    per channel): seen on a build for two channels, on the meta device, since with one channel it looks like
    any convolution."""
    try:
        with torch.device("meta"):
            probe = create_model(name, **{**(model_kwargs or {}), "in_chans": 2})
        return probe.get_submodule(key.rsplit(".", 1)[0]).groups > 1
    except Exception:  # not a registered model, or not buildable so: no claim
        return False


def _file_classes(state: dict[str, torch.Tensor]) -> int:
    """The number of classes a torchvision state dict was trained for (its last 2-D weight's rows)."""
    weights = [v for k, v in state.items() if v.dim() == 2 and k.endswith("weight") and not k.startswith("aux")]
    return weights[-1].shape[0] if weights else 1000
