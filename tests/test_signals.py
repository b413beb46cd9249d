"""``signal_stats``: per-layer activation and gradient statistics, checked against a forward and backward pass
written out by hand."""

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.inspect import signal_stats
from cnnlab.models import create_model


def test_signal_stats_equal_a_hand_written_pass():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 3, 3), nn.Sigmoid(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 5))
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 5, (6,))
    stats = signal_stats(model, x, y, F.cross_entropy)

    a1 = F.relu(F.conv2d(x, model[0].weight, model[0].bias))
    a2 = torch.sigmoid(F.conv2d(a1, model[2].weight, model[2].bias))
    loss = F.cross_entropy(F.linear(a2.flatten(1), model[5].weight, model[5].bias), y)
    assert [a["name"] for a in stats.activations] == ["1", "3"]
    for got, want in zip(stats.activations, (a1, a2), strict=True):
        assert abs(got["std"] - want.std().item()) < 1e-6 and abs(got["mean"] - want.mean().item()) < 1e-6
    assert abs(stats.loss - loss.item()) < 1e-6
    loss.backward()
    assert [g["name"] for g in stats.gradients] == ["0", "2", "5"]
    for got, layer in zip(stats.gradients, (model[0], model[2], model[5]), strict=True):
        assert abs(got["grad_norm"] - layer.weight.grad.norm().item()) < 1e-6
        assert abs(got["weight_std"] - layer.weight.std().item()) < 1e-6


def test_signal_stats_leave_the_model_as_it_was():
    model = create_model("lenet5", act="relu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    signal_stats(model, torch.randn(4, 1, 32, 32), torch.arange(4), F.cross_entropy)
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_sigmoid_gradients_vanish_towards_the_input_of_a_deep_plain_net():
    # the lecture's picture: with sigmoid units (derivative at most 1/4) and no batch norm, the weight gradient
    # shrinks by orders of magnitude from the output layer back to the input layer; with ReLU far less
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 32, 32), torch.randint(0, 10, (16,))
    ratios = {}
    for act in ("sigmoid", "relu"):
        model = create_model("plain20", num_classes=10, in_chans=1, act_layer=act, norm_layer="none")
        g = [s["grad_norm"] for s in signal_stats(model, x, y, F.cross_entropy).gradients]
        ratios[act] = g[0] / g[-1]
    assert ratios["sigmoid"] < 1e-6 < 1e-2 < ratios["relu"]
