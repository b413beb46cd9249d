"""Blocks checked against computations written out here: squeeze-and-excitation, stochastic depth, LeNet-5's
scaled tanh and the convolution computed as a matrix product."""

import math

import pytest
import torch
from torch import nn

from cnnlab.nn import WholeInputConv2d
from cnnlab.nn.act import ScaledTanh
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


@pytest.mark.parametrize("shape", [(64, 6, 28, 28), (3, 84)])
def test_scaled_tanh_is_the_papers_function_in_value_and_gradient(shape):
    # computed through the logistic function; checked against torch.tanh, over the range where it bends and where
    # it saturates
    x = (torch.linspace(-30, 30, math.prod(shape)).reshape(shape)).requires_grad_()
    y = ScaledTanh()(x)
    ref = 1.7159 * torch.tanh(x.detach() * 2 / 3)
    torch.testing.assert_close(y, ref, atol=1e-6, rtol=0)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, 1.7159 * 2 / 3 * (1 - torch.tanh(x.detach() * 2 / 3) ** 2), atol=1e-6, rtol=0)
    assert abs(float(ScaledTanh()(torch.ones(1)))) == pytest.approx(1.0, abs=2e-4)  # the paper: f(1) is about 1


def test_scaled_tanh_in_bf16_keeps_tanhs_precision_near_zero():
    # the logistic form's difference would cancel there: an error of 1e-2 in bf16
    x = torch.linspace(-0.05, 0.05, 1001)
    exact = 1.7159 * torch.tanh(x.double() * 2 / 3)
    assert (ScaledTanh()(x.bfloat16()).double() - exact).abs().max() < 2e-3


@pytest.mark.parametrize("input_layout, weight_layout", [("contiguous", "contiguous"), ("last", "last"),
                                                         ("last", "contiguous"), ("contiguous", "last")])
def test_a_conv_covering_its_input_equals_nn_conv2d_forward_and_backward(input_layout, weight_layout):
    torch.manual_seed(0)
    ref = nn.Conv2d(16, 120, 5)
    conv = WholeInputConv2d(16, 120, 5)
    conv.load_state_dict(ref.state_dict())
    fmt = {"last": torch.channels_last, "contiguous": torch.contiguous_format}
    ref, conv = ref.to(memory_format=fmt[weight_layout]), conv.to(memory_format=fmt[weight_layout])
    x = torch.randn(8, 16, 5, 5).contiguous(memory_format=fmt[input_layout]).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    out, expected = conv(x), ref(x2)
    assert out.shape == expected.shape == (8, 120, 1, 1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(expected)
    out.backward(g)
    expected.backward(g)
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv.bias.grad, ref.bias.grad, atol=1e-5, rtol=1e-5)


def test_a_conv_not_covering_its_input_is_nn_conv2d():
    torch.manual_seed(0)
    ref = nn.Conv2d(4, 6, 3, padding=1)
    conv = WholeInputConv2d(4, 6, 3, padding=1)
    conv.load_state_dict(ref.state_dict())
    for shape in [(2, 4, 3, 3), (2, 4, 7, 7)]:  # padded, and larger than the kernel
        x = torch.randn(shape)
        torch.testing.assert_close(conv(x), ref(x))
    assert conv(torch.randn(2, 4, 7, 7)).shape == (2, 6, 7, 7)
