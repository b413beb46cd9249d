"""The classifier kind of run: registered with the engine, and what reading one of its runs back means
(its model, its data with the run's classes and preprocessing, evaluation, prediction)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._options import check, option
from ..data import ImageData, read_image_file
from ..data.loader import InMemoryLoader
from ..data.prepare import Preprocess, check_fits
from ..data.streaming import StreamingData, StreamingLoader
from ..errors import CnnlabError
from ..models import create_model
from ..train import Kind, Run, register_kind
from .config import ClassifierConfig
from .recipe import ClassifierRecipe
from .task import ClassificationTask


def _shown(classes: list[str]) -> str:
    return ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")


def check_same_classes(run: Run, data, what: str = "") -> None:
    """The model's outputs are positions in the run's class list: only data with the same list (same names,
    same order) and the model's channels can be measured by it."""
    ours, theirs = [str(c) for c in run.meta["classes"]], [str(c) for c in data.classes]
    if theirs != ours:
        other = (f"the same {len(ours)} classes in another order ({_shown(theirs)})" if sorted(theirs) == sorted(ours)
                 else f"{len(theirs)} ({_shown(theirs)})")
        if len(ours) == len(theirs) and _shown(ours) == _shown(theirs):  # differing beyond what is shown
            i = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
            other += f", class {i} being {theirs[i]!r} where the run has {ours[i]!r}"
        raise CnnlabError(f"the run was trained on {len(ours)} classes ({_shown(ours)}) but '{data.name}' has "
                          f"{other}; {what or 'evaluate'} on data with the run's classes, same names in the same "
                          f"order (a folder: one sub-folder per class, named as the run's)")


def check_channels(run: Run, channels: int, name: str) -> None:
    expected = run.meta["model_kwargs"]["in_chans"]
    if channels != expected:
        raise CnnlabError(f"the run's model takes {expected}-channel images but '{name}' has {channels} "
                          f"channel(s); use data with {expected} channel(s)")


@dataclass
class PredictOptions:
    """How :func:`predict` reports (``cnnlab predict`` takes the same options)."""

    top_k: int = option(5, "classes shown per image, most probable first (at most the run's classes)", low=1, high=1000)


@torch.no_grad()
def _probabilities(run: Run, x: torch.Tensor, batch_size: int = 256, onnx: str | None = None) -> torch.Tensor:
    task = ClassificationTask(len(run.meta["classes"]), run.meta.get("binary", False))
    if onnx is not None:
        return task.probabilities(_run_onnx(run, onnx, x))
    return torch.cat([task.probabilities(run.model(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])


def _run_onnx(run: Run, path: str, x: torch.Tensor) -> torch.Tensor:
    """The logits of an exported file for preprocessed images ``x`` (checked as
    :func:`~cnnlab.train.onnx.run_exported` checks a file), one score per class or one logit for a binary run."""
    from ..train.onnx import run_exported

    out = run_exported(run, path, x, ("classifier", "transfer"), "predict takes a classifier's model.onnx")
    outputs = 1 if run.meta.get("binary", False) else len(run.meta["classes"])
    if tuple(out.shape) != (len(x), outputs):
        raise CnnlabError(f"'{path}' gives outputs of shape {list(out.shape[1:])} per batch of {len(x)}, not one "
                          f"score per class ({outputs}) for each image: it is not this run's classifier")
    return out


def class_probabilities(run: Run, images: torch.Tensor) -> torch.Tensor:
    """``N x classes`` probabilities of images in [0, 1] (``N x C x H x W``; the run's preprocessing resizes and
    normalises them)."""
    check_channels(run, images.shape[1], "the images")
    pre = Preprocess.from_dict(run.meta["preprocess"])
    return _probabilities(run, torch.cat([pre(images[i:i + 256]) for i in range(0, len(images), 256)]))


def predict(run: Run, images: list[str], top_k: int = 5, onnx: str | None = None) -> list[dict]:
    """The ``top_k`` classes and their probabilities for each image file, as the run's model sees it (or the
    ONNX file ``onnx`` exported from it, given the run's preprocessing)."""
    check(PredictOptions(top_k))
    in_chans = run.meta["model_kwargs"]["in_chans"]
    pre = Preprocess.from_dict(run.meta["preprocess"])
    probs = _probabilities(run, torch.cat([pre(read_image_file(p, in_chans).unsqueeze(0)) for p in images]),
                           onnx=onnx)
    top = probs.topk(min(top_k, probs.shape[1]), dim=1)
    return [{"image": str(path), "top": [{"class": run.meta["classes"][int(i)], "probability": float(p)}
                                         for p, i in zip(top.values[n], top.indices[n], strict=True)]}
            for n, path in enumerate(images)]


@register_kind
class ClassifierKind(Kind):
    name = "classifier"
    config = ClassifierConfig
    holds = "classifier"
    article = "a classifier"
    command = "cnnlab train"
    tools = "cnnlab evaluate, predict or transfer --from"
    recipe_class = ClassifierRecipe
    meta_keys = {**Kind.meta_keys, "model": str, "model_kwargs": dict, "preprocess": dict, "classes": list}


    def build_model(self, meta: dict):
        return create_model(meta["model"], **meta["model_kwargs"])

    def export_parts(self, run: Run) -> dict:
        """The network, from preprocessed images to logits (``predict --onnx`` applies softmax or sigmoid)."""
        size = Preprocess.from_dict(run.meta["preprocess"]).size
        return {"model": (run.model, (run.meta["model_kwargs"]["in_chans"], *size))}

    def prepare(self, run: Run, data):
        """``data`` resized and normalised as the run's model saw its training images (streamed data keeps
        its files: the loader does it per batch)."""
        if isinstance(data, ImageData) and data.train.labels is None:
            raise CnnlabError(f"dataset '{data.name}' has no labels to evaluate against; use a labelled dataset")
        check_same_classes(run, data)
        check_channels(run, data.channels, data.name)
        pre = Preprocess.from_dict(run.meta["preprocess"])
        if isinstance(data, StreamingData):
            return data
        check_fits(data, pre.size)
        return data.map(pre)

    def explain_subject(self, run: Run):
        from ..explain import stage_layers
        from ..explain.views import Subject

        stages = stage_layers(run.model)
        return Subject(run.model, Preprocess.from_dict(run.meta["preprocess"]), "the classifier",
                       [str(c) for c in run.meta["classes"]], stages)

    def report_sections(self, run: Run) -> list:
        from .report import network_sections

        return network_sections(run, self.explain_subject(run))

    def result_rows(self, test: dict) -> list[tuple[str, str]]:
        return [("test accuracy", f"{100 * test['accuracy']:.2f}%")] + \
            ([("test top-5", f"{100 * test['top5']:.2f}%")] if "top5" in test else []) + \
            [("test loss", f"{test['loss']:.4f}")]

    def evaluate(self, run: Run, data, split: str, batch_size: int, device) -> dict:
        model, s = run.model.to(device), data.split(split)
        if isinstance(data, StreamingData):
            loader = StreamingLoader(s, data.channels, Preprocess.from_dict(run.meta["preprocess"]), batch_size,
                                     device)
        else:
            loader = InMemoryLoader(s.images.to(device), s.labels.to(device), batch_size)
        task = ClassificationTask(len(run.meta["classes"]), run.meta.get("binary", False))
        return task.evaluation().evaluate(model, loader, device)
