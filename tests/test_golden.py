"""Golden outputs: each model, filled with deterministic weights, must reproduce the stored logits.

The weights come from a closed formula (no random generator), so the file pins the architecture's wiring
and arithmetic, not PyTorch's RNG. Regenerate only on purpose, after an intended change to a model:

    CNNLAB_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

import json
import math
import os
from pathlib import Path

import pytest
import torch

import cnnlab

GOLDEN = Path(__file__).parent / "expect" / "golden_outputs.json"
MODELS = cnnlab.list_models()


def hash_uniform(n: int, salt: int) -> torch.Tensor:
    """n pseudo-random values in [-1, 1) from a closed formula (the classic fract(sin(x) * 43758.5453))."""
    x = torch.arange(n, dtype=torch.float64) * 12.9898 + salt * 78.233
    return torch.frac(torch.sin(x).abs() * 43758.5453) * 2.0 - 1.0


PERIOD = 1_000_003  # a prime: no tensor's rows line up with it
BASE = hash_uniform(PERIOD, 0).float()


def weight_wave(n: int, salt: int) -> torch.Tensor:
    """n values of the closed formula for tensor number ``salt``: the first PERIOD of them, read from a start
    that depends on ``salt`` and wrapped around. (The formula itself for every value took 9 s for
    wide_resnet101_2's 125M weights; this is an index lookup.)"""
    start = (salt * 7919) % PERIOD
    return BASE.roll(-start).repeat(n // PERIOD + 1)[:n]


def deterministic_fill(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for i, (name, t) in enumerate(model.state_dict().items()):
            if not t.is_floating_point():
                continue
            wave = weight_wave(t.numel(), i).reshape(t.shape)
            if name.endswith("running_var"):
                value = 1.0 + 0.25 * (wave + 1.0)
            elif name.endswith("running_mean") or name.endswith("bias"):
                value = 0.05 * wave
            elif t.dim() == 1:  # norm scale
                value = 1.0 + 0.1 * wave
            else:  # variance-preserving for ReLU networks: Var = 2 / fan_in (uniform: Var = a^2 / 3)
                value = wave * math.sqrt(6.0 / t[0].numel())
            t.copy_(value.to(t.dtype))


def golden_input(model) -> torch.Tensor:
    c, h, w = model.default_input_size
    return hash_uniform(2 * c * h * w, 12345).reshape(2, c, h, w).float()


def compute(name: str) -> list[list[float]]:
    with torch.device("meta"):  # built without initialising: deterministic_fill sets every value
        model = cnnlab.create_model(name, num_classes=10, small_input=name != "lenet5")
    model = model.to_empty(device="cpu").eval()
    deterministic_fill(model)
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
