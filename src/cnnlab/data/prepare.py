"""Fitting images to a model: resize (and pad) to the input size it takes, then normalise.

The same :class:`Preprocess` runs on the training data, at evaluation and in ``predict``, and is saved
with every checkpoint, so an image is always seen the way the model was trained to see it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .._images import resize_images
from .._machine import available_memory
from ..errors import CnnlabError, InputSizeError


@dataclass
class Preprocess:
    """Resize to ``size - 2 * pad``, zero-pad by ``pad`` on every side, normalise per channel."""

    size: tuple[int, int]
    pad: int
    mean: list[float]
    std: list[float]

    def geometry(self, images: torch.Tensor) -> torch.Tensor:
        inner = [self.size[0] - 2 * self.pad, self.size[1] - 2 * self.pad]
        if list(images.shape[-2:]) != inner:
            images = resize_images(images, inner).clamp(0, 1)
        if self.pad:
            images = F.pad(images, (self.pad,) * 4)
        return images

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device)[None, :, None, None]
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device)[None, :, None, None]
        return (images - mean) / std

    def unnormalise(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images back to pixels in [0, 1], for display (the resizing and padding stay)."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device)[None, :, None, None]
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device)[None, :, None, None]
        return (images * std + mean).clamp(0, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.geometry(images))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        return cls(tuple(d["size"]), int(d["pad"]), list(d["mean"]), list(d["std"]))


def input_geometry(model, native: tuple[int, int], image_size: int | None) -> tuple[tuple[int, int], int]:
    """The input size (and padding) to feed ``model`` images of ``native`` size.

    A fixed-size model (LeNet-5) gets exactly its size, with its own padding (the paper's 28 -> 32);
    otherwise images smaller than the model's minimum are enlarged to it, and ``image_size`` overrides.
    """
    name = getattr(getattr(model, "meta", None), "name", type(model).__name__)
    _, min_h, min_w = model.min_input_size
    pad = getattr(model, "input_padding", 0)
    if model.fixed_input_size:
        if image_size is not None and (image_size, image_size) != (min_h, min_w):
            raise InputSizeError(f"{name} takes exactly {min_h}x{min_w} inputs; drop --image-size {image_size}")
        return (min_h, min_w), pad
    if image_size is not None:
        if image_size < min_h or image_size < min_w:
            raise InputSizeError(
                f"{name} needs inputs of at least {min_h}x{min_w}, got --image-size {image_size}"
                + ("" if getattr(model, "small_input", True) else "; add --small-input for small images")
            )
        return (image_size, image_size), 0
    return (max(native[0], min_h), max(native[1], min_w)), 0


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation (the normalisation statistics of a training set)."""
    if len(images) == 0:
        raise CnnlabError("the training split is empty; use more data or a smaller validation/test fraction")
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return mean.tolist(), std.tolist()


def check_fits(data, size: tuple[int, int]) -> None:
    """Refuse, in one line, to resize an in-memory dataset to ``size`` when the result would not fit in the
    memory this machine has free (the limit on loading, CNNLAB_MEMORY_LIMIT_GB, covers the images as read)."""
    n = sum(len(s) for s in data.splits().values())
    needed = n * data.channels * size[0] * size[1] * 4
    free = available_memory()
    if free is not None and needed > 0.8 * free:
        raise CnnlabError(f"resizing the {n:,} images of '{data.name}' to {size[0]}x{size[1]} would take "
                          f"{needed / 2**30:.1f} GiB of memory, but {free / 2**30:.1f} GiB are free; use a smaller "
                          f"--image-size")
