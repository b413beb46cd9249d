"""How :func:`cnnlab.train.fit` trains a classifier: a new model of the zoo, sized for the data."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..data import ImageData, decode_image
from ..data.loader import default_augment, split_loaders
from ..data.prepare import Preprocess, channel_stats, check_fits, input_geometry
from ..data.streaming import StreamingData, StreamingLoader
from ..errors import CnnlabError
from ..models import create_model
from ..train import Recipe
from .config import ClassifierConfig
from .task import ClassificationTask


def build_classifier(config: ClassifierConfig, in_chans: int, num_outputs: int) -> nn.Module:
    """The configured architecture for ``in_chans``-channel images and ``num_outputs`` outputs."""
    kwargs = dict(config.model_kwargs)
    for key, value in (("in_chans", in_chans), ("num_classes", num_outputs)):
        if key in kwargs and kwargs[key] != value:
            raise CnnlabError(f"model_kwargs sets {key}={kwargs[key]} but the data needs {value}")
        kwargs[key] = value
    if config.dropout is not None:
        kwargs.setdefault("drop_rate", config.dropout)
    model = create_model(config.model, init=config.init, **kwargs)
    if config.aux_weight != type(config)().aux_weight and not any(getattr(model, n, None) for n in model.aux_heads):
        warnings.warn(f"--aux-weight applies to models with auxiliary classifiers (googlenet, inception_v3); this "
                      f"{config.model} "
                      f"has none, so it is ignored", stacklevel=2)
    if config.dropout is not None:  # also the dropouts a builder does not expose as drop_rate
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = config.dropout
    return model


def classification_task(data, config: ClassifierConfig) -> ClassificationTask:
    """Softmax cross-entropy, or binary cross-entropy on one output for two classes (``--loss auto``)."""
    if isinstance(data, ImageData) and data.train.labels is None:
        hint = data.notes.get("how_to_label")
        raise CnnlabError(f"dataset '{data.name}' has no labels, so it cannot train a classifier; "
                          + (f"{hint}, or train an autoencoder on it" if hint else "it is for autoencoders"))
    if data.num_classes < 2:
        raise CnnlabError(f"dataset '{data.name}' has {data.num_classes} class; a classifier needs at least 2")
    binary = config.loss == "bce" or (config.loss == "auto" and data.num_classes == 2)
    if binary and data.num_classes != 2:
        raise CnnlabError(f"--loss bce needs a two-class dataset; '{data.name}' has {data.num_classes} classes")
    return ClassificationTask(data.num_classes, binary, config.label_smoothing, config.aux_weight)


def fit_to_model(config, model: nn.Module, data):
    """Resize/pad every split to the model's input and normalise with the training split's statistics;
    returns ``(data, Preprocess)``. Streamed data keeps its files; its statistics come from up to 512
    training images."""
    size, pad = input_geometry(model, data.image_size, config.image_size)
    geo = Preprocess(size, pad, [0.0] * data.channels, [1.0] * data.channels)
    if isinstance(data, StreamingData):
        sample = []
        for f in data.train.files[:512]:
            try:
                sample.append(geo.geometry(decode_image(f, data.channels).unsqueeze(0)))
            except Exception:
                continue
        if not sample:
            raise CnnlabError(f"no readable image among the first training files of '{data.name}'")
        return data, Preprocess(size, pad, *channel_stats(torch.cat(sample)))
    check_fits(data, size)
    data = data.map(geo.geometry)
    pre = Preprocess(size, pad, *channel_stats(data.train.images))
    return data.map(pre.normalise), pre


def labelled_loaders(data, config, device: torch.device, preprocess: Preprocess) -> dict:
    """``(images, labels)`` batches of each split: tensors on the device, or files streamed from disk."""
    config = config.resolved()  # batch size and augmentation: the dataset's defaults, or the general ones
    if not isinstance(data, StreamingData):
        return split_loaders(data, config.batch_size, device, config.augment, config.seed)
    out = {}
    for split, s in data.splits().items():
        train = split == "train"
        augment = default_augment(preprocess.size[0], data.flip_ok, config.augment and train)
        out[split] = StreamingLoader(s, data.channels, preprocess, config.batch_size if train else
                                     max(256, config.batch_size), device, shuffle=train, augment=augment,
                                     seed=config.seed)
    return out


def model_description(config: ClassifierConfig, in_chans: int, task: ClassificationTask) -> dict:
    """What a checkpoint's metadata says of a classifier: its architecture and the builder's arguments (what
    rebuilds it), and whether its one output is a sigmoid's."""
    kwargs = {k: v for k, v in config.model_kwargs.items() if isinstance(v, (bool, int, float, str, type(None)))}
    kwargs.update(in_chans=in_chans, num_classes=task.num_outputs)
    if config.dropout is not None:
        kwargs.setdefault("drop_rate", config.dropout)
    return {"model": config.model, "model_kwargs": kwargs, "binary": task.binary}


class ClassifierRecipe(Recipe):
    """A new model of the zoo, every layer trained."""

    def make_task(self, data, config: ClassifierConfig) -> ClassificationTask:
        return classification_task(data, config)

    def build_model(self, config: ClassifierConfig, data, task: ClassificationTask) -> nn.Module:
        self.description = model_description(config, data.channels, task)
        return build_classifier(config, data.channels, task.num_outputs)

    def prepare_data(self, config: ClassifierConfig, model: nn.Module, data):
        return fit_to_model(config, model, data)

    def loaders(self, data, config: ClassifierConfig, device, preprocess) -> dict:
        return labelled_loaders(data, config, device, preprocess)

    def meta(self, meta: dict) -> dict:
        return {**meta, **self.description}
