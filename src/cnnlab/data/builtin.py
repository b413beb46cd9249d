"""Datasets that ship inside installed packages: nothing is downloaded.

- ``digits``: scikit-learn's ``load_digits`` (UCI optical digits): 1,797 8x8 grayscale digits, 10 classes.
- ``faces``: scikit-image's ``lfw_subset``: 100 faces and 100 non-faces, 25x25 grayscale; a binary task.
- ``textures``: patches of scikit-image's brick, grass and gravel photographs; 3 classes. Train, validation
  and test patches come from disjoint vertical bands of each photograph (60/20/20% of its width), so no
  pixel is shared between splits.
- ``photos``: unlabelled RGB patches of scikit-image's natural photographs (astronaut, coffee, chelsea,
  rocket, motorcycle), split by bands in the same way; for reconstruction and denoising.
- ``shapes``: generated circles, squares, triangles and crosses with per-pixel masks (see ``shapes.py``).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..errors import CnnlabError
from ._base import ImageData, ImageSet, memory_limit, split_dataset
from ._registry import register_dataset
from .shapes import MIN_SIZE, SHAPES, generate_shapes


def int_option(dataset: str, name: str, value, low: int, high: int | None = None) -> int:
    """A ``key=value`` dataset option as an integer in ``[low, high]``, or one line naming what is accepted.

    Options arrive as text from a spec (``textures:size=64``) or as numbers from Python.
    """
    accepted = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
    try:
        number = int(str(value).strip())  # "64" or 64; not "1.5", 1.5 or True
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number > high):
        raise CnnlabError(f"{dataset}: {name} must be {accepted}, got {str(value).strip() or 'nothing'}")
    return number


def _read_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as (N x 1 x 8 x 8 in [0, 1], labels): new tensors on every call."""
    x, y = _digits_table()
    images = torch.from_numpy(x / 16.0).float().reshape(-1, 1, 8, 8)
    return images, torch.from_numpy(y.astype(np.int64))  # astype copies: the table stays read-only


@functools.cache
def _digits_table() -> tuple[np.ndarray, np.ndarray]:
    """The digits' pixels (0-16) and labels, read once a process (a run's report reads its data twice more;
    each read took 30-45 ms), read-only.

    Read straight from the CSV that ships in scikit-learn's package (the file ``load_digits`` reads):
    importing scikit-learn itself costs more than a second, a tenth of the default training run.
    """
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    csv = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if csv is not None and csv.is_file():
        with gzip.open(csv) as f:
            table = np.loadtxt(f, delimiter=",")
        x, y = table[:, :-1], table[:, -1]
    else:  # a scikit-learn that keeps the file elsewhere
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.data, d.target
    for array in (x, y):
        array.flags.writeable = False
    return x, y


# Measured with LeNet-5 over seeds 0-4 by benchmarks/digits_defaults.py: test accuracy 98.2% on average (lowest
# 97.8%), as the general recipe's 40 epochs at batch 32 and lr 3e-3 with random crops gave (98.2%, lowest
# 96.7%), in a quarter of the training time. Crops slow these 8x8 digits down: in a one-off sweep, 20 epochs
# at batch 64 and lr 0.01 with them reached 97.0%.
DIGITS_TRAIN_DEFAULTS = {"epochs": 15, "batch_size": 64, "lr": 0.01, "augment": False}


@register_dataset("digits", "1,797 handwritten digits, 8x8 grayscale, 10 classes",
                  "scikit-learn load_digits (UCI optical recognition of handwritten digits)",
                  train_defaults=DIGITS_TRAIN_DEFAULTS)
def digits(seed: int, val_fraction: float, test_fraction: float) -> ImageData:
    images, labels = _read_digits()
    return split_dataset("digits", images, labels, [str(i) for i in range(10)], seed, val_fraction,
                         test_fraction, source="scikit-learn load_digits", flip_ok=False)


@register_dataset("faces", "100 faces and 100 non-faces, 25x25 grayscale, binary",
                  "scikit-image data.lfw_subset (Labeled Faces in the Wild)")
def faces(seed: int, val_fraction: float, test_fraction: float) -> ImageData:
    from skimage import data

    x = data.lfw_subset()  # the first 100 are faces, the last 100 are not
    images = torch.from_numpy(x).float().unsqueeze(1)
    labels = torch.cat([torch.ones(100), torch.zeros(100)]).long()
    return split_dataset("faces", images, labels, ["non-face", "face"], seed, val_fraction, test_fraction,
                         source="scikit-image lfw_subset")


def _band_patches(image: np.ndarray, size: int, lo: float, hi: float, stride: int) -> torch.Tensor:
    """All ``size x size`` patches (at ``stride``) inside the vertical band [lo, hi) of the image width."""
    img = torch.from_numpy(np.ascontiguousarray(image)).float() / 255.0
    img = img.unsqueeze(0) if img.dim() == 2 else img.permute(2, 0, 1)[:3]
    band = img[:, :, int(lo * img.shape[2]):int(hi * img.shape[2])]
    if band.shape[1] < size or band.shape[2] < size:
        return torch.empty(0, img.shape[0], size, size)
    patches = band.unfold(1, size, stride).unfold(2, size, stride)  # C x nH x nW x size x size
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, img.shape[0], size, size)


_BANDS = {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0)}
MIN_PATCH = 8  # the smallest input of the zoo's small-input models


def _largest_patch(photos: dict[str, np.ndarray]) -> int:
    """The largest patch side that every band of every photograph holds (so no split loses a class)."""
    sides = []
    for img in photos.values():
        h, w = img.shape[:2]
        sides += [min(h, int(hi * w) - int(lo * w)) for lo, hi in _BANDS.values()]
    return min(sides)


def _banded(name: str, photos: dict[str, np.ndarray], size, labelled: bool, **kwargs) -> ImageData:
    size = int_option(name, "size", size, MIN_PATCH, _largest_patch(photos))
    sets = {}
    for split, (lo, hi) in _BANDS.items():
        stride = size // 2 if split == "train" else size  # overlapping patches only for training
        xs, ys = [], []
        for k, img in enumerate(photos.values()):
            p = _band_patches(img, size, lo, hi, stride)
            xs.append(p)
            ys.append(torch.full((len(p),), k, dtype=torch.long))
        sets[split] = ImageSet(torch.cat(xs), torch.cat(ys) if labelled else None)
    classes = list(photos) if labelled else []
    return ImageData(name, sets["train"], sets["val"], sets["test"], classes, **kwargs)


@register_dataset("textures", "brick / grass / gravel patches, 32x32 grayscale (size=N), 3 classes",
                  "scikit-image data.brick, data.grass, data.gravel; splits from disjoint image regions")
def textures(seed: int, val_fraction: float, test_fraction: float, size: int = 32) -> ImageData:
    from skimage import data

    photos = {"brick": data.brick(), "grass": data.grass(), "gravel": data.gravel()}
    return _banded("textures", photos, size, True, source="scikit-image brick, grass, gravel")


@register_dataset("photos", "unlabelled RGB patches of natural photographs, 32x32 (size=N)",
                  "scikit-image astronaut, coffee, chelsea, rocket, stereo_motorcycle; splits from disjoint regions")
def photos(seed: int, val_fraction: float, test_fraction: float, size: int = 32) -> ImageData:
    from skimage import data

    imgs = {n: getattr(data, n)() for n in ("astronaut", "coffee", "chelsea", "rocket")}
    imgs["motorcycle"] = data.stereo_motorcycle()[0]
    return _banded("photos", imgs, size, False, source="scikit-image natural photographs",
                   task="reconstruction")


@register_dataset("shapes", "generated shapes with masks, 32x32 RGB (size=N, count=N, classes=circle+square+...), "
                            "4 classes",
                  "generated by cnnlab (circle, square, triangle, cross) with per-pixel masks")
def shapes(seed: int, val_fraction: float, test_fraction: float, size: int = 32, count: int = 2000,
           classes: str = "+".join(SHAPES)) -> ImageData:
    if not str(classes).strip():
        raise CnnlabError(f"shapes: classes= needs shape names joined by '+' from {'+'.join(SHAPES)} "
                          f"(e.g. classes=circle+square)")
    names = tuple(n.strip() for n in str(classes).split("+"))
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        raise CnnlabError(f"shapes: unknown shape {unknown[0]!r} in classes={classes}; join names from "
                          f"{'+'.join(SHAPES)} with '+' (e.g. classes=circle+square)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CnnlabError(f"shapes: classes=... names {twice[0]!r} twice; name each shape once")
    size = int_option("shapes", "size", size, MIN_SIZE)
    count = int_option("shapes", "count", count, len(names))
    _check_memory("shapes", count, size, 3)
    images, labels, masks = generate_shapes(count, size, names, seed=seed)
    return split_dataset("shapes", images, labels, list(names), seed, val_fraction, test_fraction,
                         masks=masks, source="generated")


def _check_memory(dataset: str, count: int, size: int, channels: int) -> None:
    """Refuse a generated dataset larger than the memory limit in one line, before allocating it."""
    limit = memory_limit()
    needed = count * size * size * (4 * channels + 8)  # float32 images and int64 masks
    if needed > limit:
        raise CnnlabError(f"{dataset}: count={count} at size={size} would take {needed / 2**30:.1f} GiB in memory, "
                          f"more than the {limit / 2**30:g} GiB limit (CNNLAB_MEMORY_LIMIT_GB); use a smaller "
                          f"count or size")
