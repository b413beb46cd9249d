"""Blocks checked against computations written out here: squeeze-and-excitation and stochastic depth."""

import pytest
import torch
from torch import nn

from cnnlab.nn.drop import DropPath
from cnnlab.nn.mobile import SqueezeExcite


def test_squeeze_excite_scales_each_channel_by_its_gate():
    torch.manual_seed(0)
    se = SqueezeExcite(6, 2, act_layer=nn.ReLU, gate_layer=nn.Hardsigmoid)
    x = torch.randn(3, 6, 5, 4)
    squeezed = x.mean(dim=(2, 3))                                           # N x C
    hidden = torch.relu(squeezed @ se.reduce.weight[:, :, 0, 0].T + se.reduce.bias)
    gate = (hidden @ se.expand.weight[:, :, 0, 0].T + se.expand.bias + 3).clamp(0, 6) / 6   # hard sigmoid
    torch.testing.assert_close(se(x), x * gate[:, :, None, None])


def test_drop_path_drops_whole_samples_at_its_rate_and_keeps_the_expectation():
    drop = DropPath(0.25).train()
    torch.manual_seed(1)
    out = drop(torch.ones(20_000, 3, 2, 2))
    per_sample = out.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()     # a sample is dropped whole
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.25) < 0.015
    assert abs(out.mean().item() - 1.0) < 0.02
    torch.manual_seed(1)
    assert torch.equal(drop(torch.ones(20_000, 3, 2, 2)), out)                   # seeded: replayable


def test_drop_path_is_the_identity_in_eval_mode_and_refuses_a_bad_rate():
    x = torch.randn(4, 3, 2, 2)
    assert torch.equal(DropPath(0.5).eval()(x), x)
    with pytest.raises(ValueError, match="drop-path probability"):
        DropPath(1.0)


def test_efficientnet_drops_paths_in_training_only():
    import cnnlab

    torch.manual_seed(0)
    model = cnnlab.create_model("efficientnet_b0", num_classes=10, small_input=True)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), model(x))
        model.train()
        torch.manual_seed(5)
        a = model.forward_features(x)
        torch.manual_seed(5)
        b = model.forward_features(x)
        torch.manual_seed(6)
        c = model.forward_features(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
