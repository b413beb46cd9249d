"""Each registered model's size at its default input: parameters, multiply-adds and input sizes, as
``cnnlab models`` lists them.

Counting them means building every model and tracing a forward pass (on the meta device: no memory, no
weights), about eight seconds for the zoo, on every listing. The counts depend only on cnnlab's own code, so
they ship with it in ``catalog.json``; ``tests/test_catalog.py`` checks every entry against a fresh count (and
rewrites the file with ``CNNLAB_REGENERATE_CATALOG=1``). A model the file does not hold (one registered by a
user) is counted when asked.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import torch

from ..models import create_model
from .summary import summary

CATALOG = Path(__file__).with_name("catalog.json")
KEYS = ("params", "macs", "input_size", "min_input_size")


def count_model(name: str, small_input: bool = False) -> dict:
    """``name``'s parameters used at inference (no auxiliary heads), multiply-adds at its default input, and its
    default and smallest input sizes, counted now on the meta device."""
    with torch.device("meta"):  # shapes only
        model = create_model(name, **({"small_input": True} if small_input else {}))
    s = summary(model)
    return {"params": sum(r.params for r in s.rows), "macs": s.total_macs,
            "input_size": list(model.default_input_size), "min_input_size": list(model.min_input_size)}


@functools.cache
def _shipped() -> dict:
    return json.loads(CATALOG.read_text()) if CATALOG.is_file() else {}


def _key(name: str, small_input: bool) -> str:
    return f"{name}:small_input" if small_input else name


def model_counts(name: str, small_input: bool = False) -> dict:
    """:func:`count_model`'s numbers for ``name``: from the shipped catalogue, or counted where it has none."""
    shipped = _shipped().get(_key(name, small_input))
    return copy.deepcopy(shipped) if shipped is not None else count_model(name, small_input)


def catalog_entries(names) -> dict:
    """Fresh counts of ``names``, default and small-input, keyed as ``catalog.json`` keeps them."""
    return {_key(n, small): count_model(n, small) for n in names for small in (False, True)}
