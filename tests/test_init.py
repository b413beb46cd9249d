import math

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError, UnknownNameError
from cnnlab.nn import init_weights, parse_init


def _weights(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


def test_pytorch_default_draws_conv_weights_from_uniform_sqrt_k():
    """k = groups / (C_in * prod(kernel_size)): all weights within +-sqrt(k), spread like U(-sqrt k, sqrt k)."""
    model = cnnlab.create_model("mobilenet_v1", num_classes=10, init="pytorch")  # has grouped convolutions
    convs = _weights(model, nn.Conv2d)
    assert any(c.groups > 1 for c in convs)
    for conv in convs:
        k = conv.groups / (conv.in_channels * math.prod(conv.kernel_size))
        bound = math.sqrt(k)
        w = conv.weight.detach()
        assert w.abs().max() <= bound
        if w.numel() >= 10_000:
            # uniform on [-b, b]: mean 0, variance b^2 / 3, and close to the bound at the extremes
            assert abs(w.mean()) < 0.02 * bound
            assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.05)
            assert w.abs().max() > 0.99 * bound
            # Kolmogorov-Smirnov distance to the uniform CDF
            sorted_w = (w.flatten().sort().values + bound) / (2 * bound)
            ecdf = torch.arange(1, sorted_w.numel() + 1) / sorted_w.numel()
            assert (ecdf - sorted_w).abs().max() < 0.02


def test_pytorch_default_draws_linear_weights_with_k_one_over_in_features():
    model = cnnlab.create_model("vgg11", small_input=True, num_classes=10, init="pytorch")
    for lin in _weights(model, nn.Linear):
        bound = 1 / math.sqrt(lin.in_features)
        w = lin.weight.detach()
        assert w.abs().max() <= bound
        assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.05)
        assert lin.bias.abs().max() <= bound


def test_named_schemes():
    model = cnnlab.create_model("resnet18", small_input=True, num_classes=10)
    conv = model.layer3[0].conv1.conv
    fan_in = conv.weight[0].numel()
    fan_out = conv.weight.shape[0] * conv.weight[0, 0].numel()

    init_weights(model, "uniform:a=-0.1,b=0.3")
    assert conv.weight.min() >= -0.1 and conv.weight.max() <= 0.3
    assert conv.weight.mean().item() == pytest.approx(0.1, abs=0.005)
    init_weights(model, "normal", mean=0.5, std=0.02)
    assert conv.weight.mean().item() == pytest.approx(0.5, abs=0.002)
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    init_weights(model, "constant:value=0.25")
    assert torch.all(conv.weight == 0.25)
    init_weights(model, "xavier_normal")
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.05)
    init_weights(model, "kaiming_normal")  # fan_out, relu gain
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
    init_weights(model, "kaiming_uniform:mode=fan_in")
    assert conv.weight.abs().max() <= math.sqrt(6 / fan_in)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    # biases and batch norm are reset with the named schemes
    bn = model.layer3[0].conv1.bn
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert torch.all(model.get_classifier().bias == 0)


def test_default_is_the_family_scheme_and_can_be_restored():
    model = cnnlab.create_model("vgg11", small_input=True, num_classes=10)
    lin = model.get_classifier()
    assert lin.weight.std().item() == pytest.approx(0.01, rel=0.1)  # torchvision's VGG: N(0, 0.01)
    init_weights(model, "constant:val=1")
    init_weights(model, "default")
    assert lin.weight.std().item() == pytest.approx(0.01, rel=0.1)
    lenet = cnnlab.create_model("lenet5")
    c5 = lenet.features.c5.conv
    assert c5.weight.abs().max() <= 2.4 / (16 * 25)  # the paper's U(-2.4/F_in, 2.4/F_in)


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 0.1, -0.2, 0.2), (0.5, 1.0, -1.0, 0.8), (0.0, 0.01, -2.0, 2.0),
                                             (0.0, 1.0, 1.5, 4.0)])  # the last keeps 7% of the mass
def test_trunc_normal_draws_the_truncated_normal(mean, std, a, b):
    """Within the bounds, and the Kolmogorov-Smirnov distance to scipy's truncated-normal CDF is what a sample
    of this size gives (1.63 / sqrt(n): 1% significance); a tensor that is not contiguous is filled too."""
    from scipy.stats import truncnorm

    from cnnlab.nn.init import trunc_normal_

    w = torch.empty(400, 500).t()
    assert not w.is_contiguous()
    assert trunc_normal_(w, mean, std, a, b) is w
    assert a <= w.min() and w.max() <= b
    x = w.flatten().double().sort().values
    cdf = torch.from_numpy(truncnorm.cdf(x.numpy(), (a - mean) / std, (b - mean) / std, loc=mean, scale=std))
    n = x.numel()
    ks = torch.maximum(torch.arange(1, n + 1) / n - cdf, cdf - torch.arange(n) / n).max().item()
    assert ks < 1.63 / math.sqrt(n)


def test_init_from_a_file_round_trips(tmp_path):
    from safetensors.torch import save_file

    a = cnnlab.create_model("lenet5")
    save_file(a.state_dict(), tmp_path / "lenet.safetensors")
    b = cnnlab.create_model("lenet5", init=f"file:{tmp_path / 'lenet.safetensors'}")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_bad_init_specs_are_clear_errors():
    model = cnnlab.create_model("lenet5")
    with pytest.raises(UnknownNameError, match="unknown init scheme 'gaussian'"):
        init_weights(model, "gaussian")
    with pytest.raises(CnnlabError, match="not key=value"):
        init_weights(model, "normal:0.02")
    with pytest.raises(CnnlabError, match="no argument 'sigma'; it takes mean, std"):
        init_weights(model, "normal:sigma=0.1")
    with pytest.raises(CnnlabError, match="init .normal.: std must be a number, got .abc."):
        init_weights(model, "normal:std=abc")
    for spec, message in [("normal:std=-1", "std must not be negative, got -1"),
                          ("xavier_normal:gain=-1", "gain must not be negative"),
                          ("uniform:a=2,b=1", r"a must be less than b, got a=2, b=1"),
                          ("normal:mean=nan", "mean must be a finite number, got nan"),
                          ("constant:val=inf", "val must be a finite number, got inf")]:
        with pytest.raises(CnnlabError, match=message):  # torch's RuntimeError, or weights that are not numbers
            init_weights(model, spec)
    with pytest.raises(CnnlabError, match="needs a path"):
        parse_init("file")
    with pytest.raises(CnnlabError, match="an init scheme is a name such as 'kaiming_normal' .*, got None"):
        init_weights(model, None)
    assert parse_init("kaiming:mode=fan_in") == ("kaiming_normal", {"mode": "fan_in"})


def test_he_fan_out_of_a_depthwise_convolution_counts_the_outputs_one_input_reaches():
    """He et al.'s fan_out is the number of units an input feeds: k x k x out/groups (9 for a depthwise 3x3).
    torch's fan_out ignores the groups, so --init kaiming_normal gave a 64-channel depthwise convolution std
    sqrt(2/576) = 0.059 instead of sqrt(2/9) = 0.47, and, without batch norm, six of them shrank the
    gradient's variance by 1e9."""
    import math

    from torch import nn

    import cnnlab

    torch.manual_seed(0)
    net = nn.Sequential(*[m for _ in range(6) for m in (nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False),
                                                         nn.ReLU())])
    cnnlab.init_weights(net, "kaiming_normal")  # mode=fan_out
    weights = torch.cat([m.weight.flatten() for m in net if isinstance(m, nn.Conv2d)])  # 3,456 draws
    assert weights.std().item() == pytest.approx(math.sqrt(2 / 9), rel=0.05)
    full = nn.Conv2d(16, 32, 3)
    cnnlab.init_weights(full, "kaiming_uniform", mode="fan_out")  # groups 1: as torch
    assert full.weight.abs().max().item() == pytest.approx(math.sqrt(3) * math.sqrt(2 / (32 * 9)), rel=0.02)
    outs, h = [], torch.randn(8, 64, 16, 16)
    for m in net:
        h = m(h)
        if isinstance(m, nn.ReLU):
            h.retain_grad()
            outs.append(h)
    h.backward(torch.randn_like(h))  # a gradient of variance 1 at the top, independent of the signal
    variances = [o.grad.var().item() for o in outs]
    assert all(0.5 < v < 2 for v in variances), variances  # held, where torch's fan_out shrank it 64x a layer


def test_kaiming_a_alone_means_a_leaky_relu():
    """torch ignores ``a`` unless told nonlinearity=leaky_relu: kaiming_uniform:a=2.236 gave the ReLU bound."""
    import math

    from torch import nn

    import cnnlab

    conv = nn.Conv2d(64, 8, 3)
    cnnlab.init_weights(conv, "kaiming_uniform", a=math.sqrt(5))
    bound = math.sqrt(3) * math.sqrt(2 / (1 + 5)) / math.sqrt(64 * 9)  # torch's kaiming_uniform_(w, a=sqrt(5))
    assert conv.weight.abs().max().item() == pytest.approx(bound, rel=0.02)
