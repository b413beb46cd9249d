"""Selections on any dataset spec: a subset of its classes, a budget of training labels, and the union of
two datasets. They are written into the spec itself, so a run's ``config.yaml`` and ``meta.json`` say
exactly what it saw and ``evaluate`` reloads the same data:

``digits@classes=0-4``            classes 0 to 4 (positions in the dataset's class list), relabelled 0..4
``textures@classes=brick/grass``  classes by name
``digits@classes=5-9@labels=10``  and keep 10 training images per class (``labels=0.25``: a quarter;
                                  a count has no point, a fraction has one)
``digits@classes=0-4+digits@classes=5-9``  the union (class lists concatenated; names must not repeat)

Validation and test splits are never cut by ``labels``: a label budget is about training data, and the
scores stay comparable across budgets.
"""

from __future__ import annotations

import re
import warnings

import torch

from ..errors import CnnlabError, TrainingSplitWarning
from ._base import ImageData, ImageSet

_SELECTORS = ("classes", "labels")


def split_selection(spec: str) -> tuple[str, dict[str, str]]:
    """``"digits@classes=0-4@labels=10"`` -> ``("digits", {"classes": "0-4", "labels": "10"})``."""
    base, *items = re.split(r"@(?=[a-z]+=)", spec)
    options = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in _SELECTORS or not value:
            raise CnnlabError(f"'@{item}' in '{spec}' is not a selection; use @classes=0-4 (or names a/b) and/or "
                              f"@labels=N (per class) or @labels=0.25 (a fraction)")
        if key in options:
            raise CnnlabError(f"'{spec}' selects @{key} twice; write one @{key}= (e.g. @classes=0-2/7)")
        options[key] = value
    return base, options


def parse_classes(text: str, classes: list[str]) -> list[int]:
    """Class positions from ``"0-4"``, ``"3"``, ``"0-2/7"`` (ranges of positions) or ``"brick/grass"`` (names;
    a name that holds a slash, as Fashion-MNIST's ``T-shirt/top``, is read whole)."""
    picked: list[int] = []
    for part in _parts(text, classes):
        if part in classes:
            at = classes.index(part)
            if part.isdigit() and int(part) != at and int(part) < len(classes):  # a name and another's position
                raise CnnlabError(f"class '{part}' is ambiguous: a class is named '{part}' (position {at}) and "
                                  f"position {part} is another ('{classes[int(part)]}'); write positions as ranges "
                                  f"to say which: {at}-{at} for '{part}', {part}-{part} for '{classes[int(part)]}'")
            picked.append(at)
            continue
        lo, dash, hi = part.partition("-")
        try:
            idx = range(int(lo), int(hi) + 1) if dash else [int(lo)]
        except ValueError:
            raise CnnlabError(f"class '{part}' is not one of {classes[:10]}{'...' if len(classes) > 10 else ''} "
                              f"nor a position range like 0-4") from None
        if dash and int(hi) < int(lo):
            raise CnnlabError(f"class range '{part}' runs backwards; write it low to high ({hi}-{lo})")
        if idx[0] < 0 or idx[-1] >= len(classes):  # the ends: min() and max() would walk a range of 10^9
            raise CnnlabError(f"class positions '{part}' are outside 0-{len(classes) - 1}")
        picked.extend(idx)
    if len(set(picked)) != len(picked):
        raise CnnlabError(f"classes '{text}' name a class twice")
    if len(picked) < 1:
        raise CnnlabError(f"classes '{text}' select nothing")
    return picked


def _parts(text: str, classes: list[str]) -> list[str]:
    """``text`` split at its slashes, but for the longest runs of parts that together are a class's name."""
    pieces, parts, i = text.split("/"), [], 0
    while i < len(pieces):
        j = next((j for j in range(len(pieces), i + 1, -1) if "/".join(pieces[i:j]) in classes), i + 1)
        parts.append("/".join(pieces[i:j]))
        i = j
    return parts


def select_classes(data: ImageData, keep: list[int]) -> ImageData:
    """Only the images of classes ``keep`` (positions), relabelled ``0..len(keep)-1`` in that order."""
    if data.train.labels is None:
        raise CnnlabError(f"dataset '{data.name}' has no labels to select classes from")
    table = torch.full((data.num_classes,), -1, dtype=torch.long)
    table[torch.tensor(keep)] = torch.arange(len(keep))

    def pick(s: ImageSet) -> ImageSet:
        mapped = table[s.labels]
        index = torch.nonzero(mapped >= 0).flatten()
        out = s.subset(index)
        out.labels = mapped[index]
        if out.masks is not None:  # mask value k + 1 is class k: relabelled the same way, other classes to 0
            out.masks = torch.cat([torch.zeros(1, dtype=torch.long), table + 1])[out.masks]
        return out

    return ImageData(f"{data.name}@classes", pick(data.train), pick(data.val), pick(data.test),
                     [data.classes[i] for i in keep], data.source, data.task, data.flip_ok, dict(data.notes))


def label_budget(data: ImageData, budget: str, seed: int) -> ImageData:
    """Keep ``budget`` training images per class (an integer) or that fraction of each class (0 < x <= 1)."""
    if data.train.labels is None:
        raise CnnlabError(f"dataset '{data.name}' has no labels to budget")
    fraction = "." in budget
    try:
        value = float(budget) if fraction else int(budget)
    except ValueError:
        value = -1
    if value <= 0 or (fraction and value > 1):
        raise CnnlabError(f"@labels={budget}: use a count of images per class (e.g. 10) or a fraction in (0, 1] "
                          f"written with a point (e.g. 0.25)")
    g = torch.Generator().manual_seed(seed + 7919)
    keep, short = [], []
    for c in range(data.num_classes):
        idx = torch.nonzero(data.train.labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n = max(1, round(value * len(idx))) if fraction else int(value)
        if n > len(idx):
            short.append(f"'{data.classes[c]}' ({len(idx)})")
        keep.append(idx[:n])
    if short:  # a count beyond what a class has: said, since "N per class" is then not what trains
        warnings.warn(f"@labels={budget}: class {short[0]} has fewer training images and keeps all of them"
                      if len(short) == 1 else
                      f"@labels={budget}: {len(short)} of {data.num_classes} classes have fewer training images and "
                      f"keep all of theirs: {', '.join(short[:6])}{', ...' if len(short) > 6 else ''}",
                      TrainingSplitWarning, stacklevel=3)
    train = data.train.subset(torch.sort(torch.cat(keep)).values)
    return ImageData(data.name, train, data.val, data.test, data.classes, data.source, data.task, data.flip_ok,
                     dict(data.notes))


def union(a: ImageData, b: ImageData) -> ImageData:
    """Both datasets' images, split by split; ``b``'s labels follow ``a``'s classes."""
    if a.train.labels is None or b.train.labels is None:
        raise CnnlabError("only labelled datasets can be joined with '+'")
    if (a.channels, a.image_size) != (b.channels, b.image_size):
        raise CnnlabError(f"cannot join '{a.name}' ({a.channels}x{'x'.join(map(str, a.image_size))}) and "
                          f"'{b.name}' ({b.channels}x{'x'.join(map(str, b.image_size))}): images differ in size "
                          f"or channels")
    same = sorted(set(a.classes) & set(b.classes))
    if same:
        raise CnnlabError(f"cannot join '{a.name}' and '{b.name}': both have class(es) {same[:5]}")

    def join(x: ImageSet, y: ImageSet) -> ImageSet:
        masks = None
        if x.masks is not None and y.masks is not None:  # mask value k + 1 is class k: b's classes move up too
            masks = torch.cat([x.masks, torch.where(y.masks > 0, y.masks + a.num_classes, y.masks)])
        return ImageSet(torch.cat([x.images, y.images]), torch.cat([x.labels, y.labels + a.num_classes]), masks)

    return ImageData(f"{a.name}+{b.name}", join(a.train, b.train), join(a.val, b.val), join(a.test, b.test),
                     a.classes + b.classes, f"{a.source}; {b.source}", a.task, a.flip_ok and b.flip_ok)
