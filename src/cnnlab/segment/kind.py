"""The segmentation kind of run (``cnnlab segment train``): registered with the engine, and what reading one
of its runs back means (its model, its data with masks, IoU and Dice, per-pixel predictions)."""

from __future__ import annotations

import dataclasses

import torch

from ..data import read_image_file
from ..data.prepare import Preprocess, check_fits
from ..errors import CnnlabError
from ..train import Kind, Run, register_kind
from .config import SegmentConfig
from .models import SegNet
from .recipe import BACKGROUND, SegmentRecipe, check_masks, mask_loader, prepare_split, resize_masks
from .task import SegmentationTask


def score_text(value: float | None) -> str:
    """An IoU or Dice for reading: 4 decimals, '-' for a class absent from both prediction and truth."""
    return "-" if value is None else f"{value:.4f}"


def predict(run: Run, images: list[str], onnx: str | None = None) -> list[dict]:
    """Each image file's predicted class map (``mask``, at the image's own size) and the share of its pixels
    in each class; from the ONNX file ``onnx`` exported from the run instead of its checkpoint, when given (on the
    run's preprocessing, checked as :func:`~cnnlab.train.onnx.run_exported` checks a file)."""
    pre = Preprocess.from_dict(run.meta["preprocess"])
    classes = run.meta["classes"]
    pictures = [read_image_file(path, run.meta["segment"]["in_chans"]) for path in images]
    x = torch.cat([pre(image[None]) for image in pictures])  # every image at the run's input size
    with torch.no_grad():
        if onnx is None:
            predicted = torch.cat([run.model(x[i:i + 64]).argmax(1) for i in range(0, len(x), 64)])
        else:  # the file is checked and opened once for all the images
            predicted = _onnx_logits(run, onnx, x).argmax(1)
    out = []
    for path, image, pred in zip(images, pictures, predicted, strict=True):
        mask = resize_masks(pred[None], tuple(image.shape[-2:]))[0]  # back to the image's own size
        counts = torch.bincount(mask.flatten(), minlength=len(classes)).double()
        out.append({"image": str(path), "picture": image, "mask": mask,
                    "shares": {c: float(n) for c, n in zip(classes, counts / counts.sum(), strict=True)}})
    return out


def _onnx_logits(run: Run, path: str, x: torch.Tensor) -> torch.Tensor:
    from ..train.onnx import run_exported

    out = run_exported(run, path, x, ("segmenter",), "segment predict takes a segmentation network's model.onnx")
    expected = (len(x), len(run.meta["classes"]), *x.shape[-2:])
    if tuple(out.shape) != expected:
        raise CnnlabError(f"'{path}' gives outputs of shape {list(out.shape)} for {list(x.shape)}, not one score per "
                          f"class and pixel {list(expected)}: it is not this run's segmentation network")
    return out


@register_kind
class SegmenterKind(Kind):
    name = "segmenter"
    config = SegmentConfig
    holds = "segmenter"
    article = "a segmentation network"
    command = "cnnlab segment train"
    tools = "cnnlab segment predict or evaluate"
    recipe_class = SegmentRecipe
    meta_keys = {**Kind.meta_keys, "segment": dict, "preprocess": dict, "classes": list}
    legacy_section = "segment"


    def build_model(self, meta: dict):
        return SegNet(**meta["segment"])

    def prepare(self, run: Run, data):
        """Images resized and normalised as the run's, masks resized with them; the run's classes and channels."""
        check_masks(data)
        classes, theirs = [str(c) for c in run.meta["classes"]], [BACKGROUND, *map(str, data.classes)]
        if theirs != classes:
            raise CnnlabError(f"the run segments {', '.join(classes)} but '{data.name}' has {', '.join(theirs)}; "
                              f"evaluate on data with the run's classes in the same order")
        in_chans = run.meta["segment"]["in_chans"]
        if data.channels != in_chans:
            raise CnnlabError(f"the run's model takes {in_chans}-channel images but '{data.name}' has "
                              f"{data.channels}")
        pre = Preprocess.from_dict(run.meta["preprocess"])
        check_fits(data, pre.size)
        splits = {k: prepare_split(v, pre) for k, v in data.splits().items()}
        return dataclasses.replace(data, classes=classes, **splits)

    def export_parts(self, run: Run) -> dict:
        """The network, from preprocessed images to per-pixel class logits."""
        size = Preprocess.from_dict(run.meta["preprocess"]).size
        return {"model": (run.model, (run.meta["segment"]["in_chans"], *size))}

    def evaluate(self, run: Run, data, split: str, batch_size: int, device) -> dict:
        loader = mask_loader(data.split(split), batch_size, device)
        return SegmentationTask(run.meta["classes"]).evaluate(run.model.to(device), loader, device)

    def explain_subject(self, run: Run):
        """The network's encoder stages and bottleneck as feature maps; a class's CAM over its pixel logits at
        the bottleneck."""
        from ..explain.views import Subject

        stages = [f"encoder.{i}" for i in range(run.model.depth)] + ["bottom"]
        return Subject(run.model, Preprocess.from_dict(run.meta["preprocess"]), "the segmentation network",
                       [str(c) for c in run.meta["classes"]], stages, "bottom")

    def report_sections(self, run: Run) -> list:
        """What each stage makes of the first test image, and Grad-CAM of the class most pixels are given in
        each of the first four."""
        from ..explain.views import cam_view, features_view
        from ..report import Section, figures

        subject = self.explain_subject(run)
        x = run.sample(4).test.images
        if len(x) == 0:
            return []
        inside = features_view(subject, x[:1])
        cams, _ = cam_view(subject, x)
        return [Section("Inside the network", figures(inside),
                        "What each encoder stage and the bottleneck make of the first test image."),
                Section("Where the network looks", figures(cams),
                        "Grad-CAM at the bottleneck of the class most pixels are given (its mean logit over those "
                        "pixels).")]

    def result_rows(self, test: dict) -> list[tuple[str, str]]:
        return [("test pixel accuracy", f"{100 * test['accuracy']:.2f}%"),
                ("test mean IoU", score_text(test["mean_iou"])), ("test mean Dice", score_text(test["mean_dice"]))] + \
            [(f"IoU {c}", score_text(v)) for c, v in test["iou"].items() if c != BACKGROUND]
