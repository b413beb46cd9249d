"""Loading a dataset by its spec: one dataset (:func:`~cnnlab.data.parse_spec`), with selections
(``@classes=0-4``, ``@labels=10``) and unions (``a+b``) written into the spec (see :mod:`cnnlab.data.select`).
"""

from __future__ import annotations

import inspect
import re

from .._io import absolute_path
from ..errors import CnnlabError
from . import select
from ._base import ImageData
from ._registry import list_datasets, parse_spec


def split_union(spec: str) -> list[str]:
    """``"a+b@classes=1"`` -> ``["a", "b@classes=1"]``: a '+' joins only before a dataset's name, so one inside
    an option (``shapes:classes=circle+square``) or a path (``folder:/x+y``) stays."""
    names = "|".join(sorted((re.escape(d.name) for d in list_datasets()), key=len, reverse=True))
    return re.split(rf"\+(?=(?:{names})(?:[:@]|$))", spec)


def absolute_spec(spec: str) -> str:
    """The spec with each existing relative path made absolute (``folder:imgs`` or ``folder:~/imgs`` ->
    ``folder:/home/me/imgs``), so that a run's config.yaml finds its data from any working directory; anything
    else is kept as written (a path that does not exist is left for the loader to refuse, in the user's words)."""
    parts = []
    for part in split_union(spec):
        try:
            base = select.split_selection(part)[0]
            path = parse_spec(base)[1]
        except CnnlabError:  # left for load_dataset to explain
            path = None
        if path is not None and absolute_path(path) != path:
            part = f"{base.partition(':')[0]}:{absolute_path(path)}{part[len(base):]}"
        parts.append(part)
    return "+".join(parts)


def load_dataset(spec: str, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                 image_size: int | tuple[int, int] | None = None, budget: bool = True, **kwargs) -> ImageData:
    """Load a dataset by spec into memory, split into train/val/test deterministically from ``seed``.

    ``budget``: apply the spec's ``@labels=`` (a training split's label budget); False reads every image of the
    selected classes (what ``--split all`` scores: with both fractions 0 every image is in the training split,
    and a budget would have kept a few of them).

    ``image_size``: the size a run brings every image to (``--image-size``), where it sets one. A reader of files
    of many sizes (``folder:``) decodes each file straight to it, so an image is resized once, from its own size,
    as ``predict`` resizes it, and not first to the folder's most common size; it also sizes the data in memory
    at that size. Other datasets are read as they are (the run resizes them). ``kwargs`` go to format readers.
    """
    parts = split_union(spec)
    if spec.startswith("+") or spec.endswith("+") or "" in parts:
        raise CnnlabError(f"'{spec}' joins nothing on one side of its '+'; write a+b (e.g. digits@classes=0-4+"
                          f"digits@classes=5-9)")
    if len(parts) > 1:
        joined = None
        for part in parts:
            one = load_dataset(part, seed, val_fraction, test_fraction, image_size, budget, **kwargs)
            if not isinstance(one, ImageData):
                raise CnnlabError(f"'+' joins datasets that fit in memory; '{part}' is streamed from disk (it is "
                                  f"larger than the memory limit, CNNLAB_MEMORY_LIMIT_GB): train on it alone, or "
                                  f"merge the folders into one")
            joined = one if joined is None else select.union(joined, one)
        joined.name = spec
        return joined
    full, (spec, selection) = spec, select.split_selection(spec)
    if selection:
        data = load_dataset(spec, seed, val_fraction, test_fraction, image_size, budget, **kwargs)
        if not isinstance(data, ImageData):
            raise CnnlabError(f"@classes and @labels apply to datasets that fit in memory; '{spec}' is streamed")
        if data.train.labels is None:
            raise CnnlabError(f"dataset '{spec}' has no labels, so @classes and @labels do not apply")
        if "classes" in selection:
            data = select.select_classes(data, select.parse_classes(selection["classes"], data.classes))
        if "labels" in selection and budget:
            data = select.label_budget(data, selection["labels"], seed)
        data.name = full
        return data
    info, path, options = parse_spec(spec)
    if image_size is not None and "image_size" in inspect.signature(info.loader).parameters:
        kwargs["image_size"] = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    try:
        if path is not None:
            return info.loader(path, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, **kwargs)
        return info.loader(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, **options)
    except ValueError as e:
        if isinstance(e, CnnlabError):
            raise
        raise CnnlabError(f"dataset '{spec}': {e}") from None
