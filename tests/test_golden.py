"""Golden outputs: each model, filled with deterministic weights, must reproduce the stored logits.

The weights come from a closed formula (no random generator), so the file pins the architecture's wiring
and arithmetic, not PyTorch's RNG. Regenerate only on purpose, after an intended change to a model:

    CNNLAB_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

import json
import os
from pathlib import Path

import pytest
import torch

import cnnlab

from .conftest import build_filled, hash_uniform

GOLDEN = Path(__file__).parent / "expect" / "golden_outputs.json"
MODELS = cnnlab.list_models()


def golden_input(model) -> torch.Tensor:
    c, h, w = model.default_input_size
    return hash_uniform(2 * c * h * w, 12345).reshape(2, c, h, w).float()


def compute(name: str) -> list[list[float]]:
    model = build_filled(name, num_classes=10, small_input=name != "lenet5").eval()
    with torch.no_grad():
        return model(golden_input(model)).tolist()


def test_golden_file_covers_every_model():
    if os.environ.get("CNNLAB_REGENERATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({n: compute(n) for n in MODELS}, indent=1) + "\n")
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(MODELS), "regenerate the golden file on purpose"


@pytest.mark.parametrize("name", MODELS)
def test_golden_outputs(name):
    expected = torch.tensor(json.loads(GOLDEN.read_text())[name])
    got = torch.tensor(compute(name))
    scale = expected.abs().max().item()
    assert scale > 1e-3, "the golden output is too small to pin anything"
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4 * scale)
    assert not torch.allclose(got[0], got[1]), "the two golden inputs must give different outputs"
