"""In-memory image data: the one representation every dataset is turned into.

Images are float32 tensors ``N x C x H x W`` with values in [0, 1]; labels are int64 class indices (or
None for unlabelled data); masks, when present, are int64 ``N x H x W`` class maps (0 = background).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from ..errors import CnnlabError, EmptySplitError


def memory_limit() -> float:
    """Bytes of decoded images a dataset may hold in memory: 2 GiB, or ``CNNLAB_MEMORY_LIMIT_GB``."""
    text = os.environ.get("CNNLAB_MEMORY_LIMIT_GB", "2")
    try:
        gb = float(text)
    except ValueError:
        gb = -1.0
    if not gb > 0:
        raise CnnlabError(f"CNNLAB_MEMORY_LIMIT_GB must be a positive number of GiB (e.g. 8), got {text!r}")
    return gb * 2**30


@dataclass(repr=False)
class ImageSet:
    """One split of a dataset, in memory."""

    images: torch.Tensor
    labels: torch.Tensor | None
    masks: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dim() != 4:
            raise CnnlabError(f"images must be N x C x H x W, got shape {tuple(self.images.shape)}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise CnnlabError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:  # what it holds, not every pixel
        held = ", ".join(k for k in ("labels", "masks") if getattr(self, k) is not None) or "unlabelled"
        return f"ImageSet({len(self)} images {'x'.join(map(str, self.images.shape[1:]))}, {held})"

    def subset(self, index: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[index], None if self.labels is None else self.labels[index],
                        None if self.masks is None else self.masks[index])


@dataclass(repr=False)
class ImageData:
    """A dataset split into train, validation and test sets, with its class names and provenance."""

    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    classes: list[str]
    source: str = ""
    task: str = "classification"  # or "reconstruction" for unlabelled data
    flip_ok: bool = True          # horizontal flips keep the meaning (not for digits)
    notes: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train.images.shape[-2:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> dict[str, ImageSet]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def split(self, name: str) -> ImageSet:
        """One split by name, or ``"all"``: every image, the three splits in turn."""
        if name != "all":
            return self.splits()[name]
        parts = list(self.splits().values())

        def joined(key: str) -> torch.Tensor | None:
            held = [getattr(p, key) for p in parts]
            return None if any(h is None for h in held) else torch.cat(held)

        return ImageSet(torch.cat([p.images for p in parts]), joined("labels"), joined("masks"))

    def map(self, fn) -> ImageData:
        """Apply ``fn(images) -> images`` to every split (resizing, normalising)."""
        return replace(self, **{k: replace(v, images=fn(v.images)) for k, v in self.splits().items()})

    def describe(self) -> str:
        c, (h, w) = self.channels, self.image_size
        classes = (f"{self.num_classes} class{'es' if self.num_classes != 1 else ''}" if self.train.labels is not None
                   else "unlabelled")
        return (f"{self.name}: {len(self.train)}/{len(self.val)}/{len(self.test)} train/val/test images, "
                f"{c}x{h}x{w}, {classes}")

    def __repr__(self) -> str:
        return f"<ImageData {self.describe()}>"


def stratified_split(
    labels: torch.Tensor | None, n: int, fractions: tuple[float, ...], seed: int
) -> list[torch.Tensor]:
    """Split indices ``0..n-1`` into parts of the given fractions (the last part takes the rest).

    Stratified by label when labels exist (each class is split in the same proportions), deterministic
    for a seed.
    """
    g = torch.Generator().manual_seed(seed)
    groups = [torch.arange(n)] if labels is None else [torch.nonzero(labels == c).flatten()
                                                       for c in torch.unique(labels)]
    parts: list[list[torch.Tensor]] = [[] for _ in fractions]
    for idx in groups:
        idx = idx[torch.randperm(len(idx), generator=g)]
        start = 0
        for i, f in enumerate(fractions):
            end = len(idx) if i == len(fractions) - 1 else start + int(round(f * len(idx)))
            parts[i].append(idx[start:end])
            start = end
    return [torch.sort(torch.cat(p)).values for p in parts]


def split_dataset(
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    classes: list[str],
    seed: int,
    val_fraction: float,
    test_fraction: float,
    test: ImageSet | None = None,
    masks: torch.Tensor | None = None,
    listed: tuple[torch.Tensor, torch.Tensor] | None = None,
    **kwargs,
) -> ImageData:
    """Make train/val/test from one pool of images (or train/val from it when ``test`` is given).

    ``listed``: ``(labels of every entry as listed, the places in that listing of the entries the pool holds)``,
    for a pool that lost entries (a folder's unreadable files): the split is drawn over the whole listing, then
    keeps the pool's entries, so that a left-out entry moves no other one to another split (a streamed folder
    splits its whole listing, and must fall into the same splits)."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise CnnlabError(
            f"validation and test fractions must be in [0, 1) and sum to less than 1, got {val_fraction} and "
            f"{test_fraction}"
        )
    pool = ImageSet(images, labels, masks)
    fractions = (1.0 - val_fraction - test_fraction, val_fraction, test_fraction) if test is None else \
        (1.0 - val_fraction, val_fraction)
    if listed is None:
        parts = stratified_split(labels, len(images), fractions, seed)
    else:
        all_labels, kept = listed
        place = torch.full((len(all_labels),), -1, dtype=torch.long)
        place[kept] = torch.arange(len(kept))  # a listed entry's row in the pool
        parts = [p[p >= 0] for p in (place[i] for i in stratified_split(all_labels, len(place), fractions, seed))]
    check_not_empty(name, len(images), dict(zip(("training", "validation", "test"), zip(parts, fractions,
                                                                                      strict=True), strict=False)))
    return ImageData(name, pool.subset(parts[0]), pool.subset(parts[1]),
                     pool.subset(parts[2]) if test is None else test, classes, **kwargs)


def check_not_empty(name: str, n: int, parts: dict[str, tuple[Sequence, float]]) -> None:
    """A split asked for (fraction > 0) that receives no image is an error now, not an empty loop later (or, for a
    streamed folder, an epoch later): ``parts`` maps each split's name to (its entries, its fraction)."""
    for split, (index, fraction) in parts.items():
        if fraction > 0 and len(index) == 0:
            fix = "smaller --val-fraction or --test-fraction" if split == "training" else \
                f"larger --{'val' if split == 'validation' else 'test'}-fraction"
            raise EmptySplitError(f"{name}: {n} image(s) leave the {split} split empty (fraction {fraction:g}, split "
                              f"class by class); use more images, or train a run with a {fix}")
