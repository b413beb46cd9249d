"""The model sizes cnnlab ships (``cnnlab models`` reads them instead of counting for eight seconds) are what
counting gives now. Regenerate after an intended change to a model:

    CNNLAB_REGENERATE_CATALOG=1 python -m pytest tests/test_catalog.py -n 0
"""

import json
import os

import pytest

import cnnlab
from cnnlab.inspect import catalog

MODELS = cnnlab.list_models()


def test_the_catalogue_holds_every_model_default_and_small_input():
    if os.environ.get("CNNLAB_REGENERATE_CATALOG"):
        entries = catalog.catalog_entries(MODELS)  # one line a model
        catalog.CATALOG.write_text("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in entries.items())
                                   + "\n}\n")
    shipped = json.loads(catalog.CATALOG.read_text())
    assert sorted(shipped) == sorted([*MODELS, *(f"{n}:small_input" for n in MODELS)]), "regenerate the catalogue"


@pytest.mark.parametrize("name", MODELS)
def test_the_shipped_counts_are_a_fresh_count(name):
    for small in (False, True):
        assert catalog.model_counts(name, small) == catalog.count_model(name, small), (
            f"{name}: the catalogue is stale; regenerate it on purpose")


def test_a_model_the_catalogue_lacks_is_counted(monkeypatch):
    monkeypatch.setattr(catalog, "_shipped", lambda: {})
    counts = catalog.model_counts("lenet5")
    assert counts["params"] == 61_706 and counts["input_size"] == [1, 32, 32] and counts["macs"] > 0
