"""The segmentation recipe: how :func:`cnnlab.train.fit` trains an encoder-decoder on images with per-pixel
masks, with the same loop, checkpoints, ``--resume`` and run directory as a classifier.

The loaders yield ``(images, masks)`` instead of ``(images, labels)``; augmentation (random crop with
padding, flips) moves each mask with its image. The class list gains ``background`` in front (mask value 0),
so the run's classes, its confusion matrix and its metrics all count the background as class 0.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ..data import ImageData, ImageSet
from ..data.loader import InMemoryLoader, split_loaders
from ..data.prepare import Preprocess, channel_stats, check_fits
from ..errors import CnnlabError
from ..train import Recipe
from .config import SegmentConfig
from .models import SegNet, size_hint
from .task import SegmentationTask

BACKGROUND = "background"


class MaskLoader(InMemoryLoader):
    """An :class:`InMemoryLoader` whose targets are masks (``N x H x W``): augmentation moves them with their
    images (the same crop offsets and flips)."""

    def _augment(self, x, masks, g):
        return self.augment(x, g, masks=masks)


def check_masks(data, num_classes: int | None = None) -> None:
    """A dataset segmentation can use: in memory, with a mask for every image and values 0..num_classes."""
    if not isinstance(data, ImageData) or any(s.masks is None for s in data.splits().values()):
        raise CnnlabError(f"dataset '{data.name}' has no per-pixel masks, so it cannot train or evaluate a "
                          f"segmentation network; use one with masks, e.g. shapes:size=64")
    k = data.num_classes + 1 if num_classes is None else num_classes
    top = max(int(s.masks.max()) if len(s) else 0 for s in data.splits().values())
    if top >= k:
        raise CnnlabError(f"dataset '{data.name}' has mask value {top} but only {k - 1} classes and the background")


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resizing of ``N x H x W`` class maps (classes are never blended)."""
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return F.interpolate(masks[:, None].float(), size=list(size), mode="nearest-exact")[:, 0].long()


def prepare_split(s: ImageSet, pre: Preprocess) -> ImageSet:
    """Images resized and normalised as ``pre`` says, masks resized to the same size."""
    return ImageSet(pre(s.images), s.labels, resize_masks(s.masks, pre.size))


def mask_loader(s: ImageSet, batch_size: int, device, shuffle: bool = False, augment=None, seed: int = 0
                ) -> MaskLoader:
    return MaskLoader(s.images.to(device), s.masks.to(device), batch_size, shuffle=shuffle, augment=augment, seed=seed)


class SegmentRecipe(Recipe):
    def prepare(self, config: SegmentConfig, resuming: bool) -> SegmentConfig:
        self._config = config
        return config

    def load_data(self, config: SegmentConfig):
        data = super().load_data(config)
        check_masks(data)
        return data

    def make_task(self, data, config: SegmentConfig) -> SegmentationTask:
        return SegmentationTask([BACKGROUND, *data.classes], config.label_smoothing)

    def build_model(self, config: SegmentConfig, data, task) -> nn.Module:
        h, w = (config.image_size, config.image_size) if config.image_size else data.image_size
        step = 2 ** config.depth
        if h % step or w % step:
            what = "--image-size" if config.image_size else f"'{config.data}' has images of"
            raise CnnlabError(f"depth {config.depth} halves the image {config.depth} times, so its sides must be "
                              f"divisible by {step}; {what} {h}x{w}: use --image-size "
                              f"{size_hint(h, config.depth) or step} or a smaller --depth")
        if (h // step, w // step) == (1, 1) and (config.resolved().batch_size == 1 or len(data.train) == 1):
            # batch norm at a 1x1 bottleneck sees one value per channel in a batch of one image: it cannot train
            raise CnnlabError(f"depth {config.depth} brings {h}x{w} images to a 1x1 bottleneck, whose batch norm "
                              f"needs two images or more in every batch; use a larger --batch-size (and two "
                              f"training images or more), a smaller --depth or a larger --image-size")
        self.args = {"in_chans": data.channels, "num_classes": task.num_classes, "depth": config.depth,
                     "width": config.width, "skips": config.skips}
        self._size = (h, w)
        return SegNet(**self.args)

    def prepare_data(self, config: SegmentConfig, model: nn.Module, data):
        """Resize images (bilinear) and masks (nearest) to the model's size, normalise with the training split's
        statistics; the class list gains the background in front."""
        check_fits(data, self._size)
        geo = Preprocess(self._size, 0, [0.0] * data.channels, [1.0] * data.channels)
        pre = Preprocess(self._size, 0, *channel_stats(geo.geometry(data.train.images)))
        self._pre = pre
        splits = {k: prepare_split(v, pre) for k, v in data.splits().items()}
        return dataclasses.replace(data, classes=[BACKGROUND, *data.classes], **splits), pre

    def loaders(self, data, config: SegmentConfig, device, preprocess) -> dict:
        return split_loaders(data, config.batch_size, device, config.augment, config.seed, targets="masks",
                             loader=MaskLoader)

    def train_view(self, model, batches, config: SegmentConfig, device, log):
        log(f"{'U-Net-style' if config.skips else 'SegNet-style'} encoder-decoder "
            f"({'with' if config.skips else 'without'} skip connections), depth {config.depth}, width {config.width}")
        return super().train_view(model, batches, config, device, log)

    def meta(self, meta: dict) -> dict:
        return {**meta, "segment": self.args}

    def finish(self, result, run, batches, task, device, log) -> None:
        from .viz import overlay_grid

        x, masks = next(iter(batches["test"]))
        x, masks = x[:8], masks[:8]
        model = result.model.eval()
        with torch.no_grad():
            pred = model(x).argmax(1)
        overlay_grid(self._pre.unnormalise(x), masks, pred, task.classes, run.path / "plots" / "overlays.png")
        result.extra["segment"] = dict(self.args)
        t = result.test
        log(f"test: pixel accuracy {100 * t['accuracy']:.2f}%, mean IoU {t['mean_iou'] or 0:.4f}, "
            f"mean Dice {t['mean_dice'] or 0:.4f} (foreground classes)")
