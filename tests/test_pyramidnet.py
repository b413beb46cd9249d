"""PyramidNet (Han, Kim & Kim, "Deep Pyramidal Residual Networks", CVPR 2017): the paper's parameter counts,
additive widening, its residual unit and its zero-padded, average-pooled shortcut, checked against
computations written out here."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.nn.pyramid import PyramidBlock, PyramidBottleneck, PyramidShortcut


def _meta(name, **kwargs):
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


def _count(model):
    return sum(p.numel() for p in model.parameters())


def _units(model):
    return [u for stage in (model.layer1, model.layer2, model.layer3) for u in stage]


def _written_out_count(depth, alpha, bottleneck, classes=10):
    """Parameters from the paper's recipe: widths floor(16 + k alpha / N), conv weights k*k*c_in*c_out (no
    biases: every conv is followed by BN), 2 per BN channel, the final FC."""
    n = (depth - 2) // (9 if bottleneck else 6)
    total, c_in = 3 * 3 * 3 * 16 + 2 * 16, 16                     # stem conv + BN
    for k in range(1, 3 * n + 1):
        d = 16 + k * alpha // (3 * n)
        total += 2 * c_in                                          # the unit's leading BN
        if bottleneck:
            total += c_in * d + 2 * d + 9 * d * d + 2 * d + d * 4 * d + 2 * 4 * d
            c_in = 4 * d
        else:
            total += 9 * c_in * d + 2 * d + 9 * d * d + 2 * d
            c_in = d
    return total + 2 * c_in + c_in * classes + classes            # final BN, FC


def test_pyramidnet110_a48_has_the_papers_1_7m_parameters():
    # paper, table of CIFAR results (Table 4): PyramidNet alpha=48, depth 110, 1.7M parameters
    n = _count(_meta("pyramidnet110_a48"))
    assert n == _written_out_count(110, 48, False) == 1_739_730
    assert round(n / 1e6, 1) == 1.7


def test_pyramidnet272_a200_has_the_papers_26_0m_parameters():
    # paper, table of CIFAR results (Table 4): PyramidNet (bottleneck, alpha=200), depth 272, 26.0M parameters
    n = _count(_meta("pyramidnet272_a200"))
    assert n == _written_out_count(272, 200, True) == 26_049_562
    assert round(n / 1e6, 1) == 26.0


@pytest.mark.parametrize("name, n_units, alpha, expansion", [("pyramidnet110_a48", 54, 48, 1),
                                                             ("pyramidnet272_a200", 90, 200, 4)])
def test_every_unit_widens_by_alpha_over_n_from_16_to_16_plus_alpha(name, n_units, alpha, expansion):
    model = _meta(name)
    units = _units(model)
    assert len(units) == n_units
    widths = [u.out_chs // expansion for u in units]
    assert widths == [int(16 + k * alpha / n_units + 1e-9) for k in range(1, n_units + 1)]
    steps = [b - a for a, b in zip([16] + widths[:-1], widths, strict=True)]
    assert set(steps) <= {alpha // n_units, alpha // n_units + 1}        # gradual: no stage doubles the width
    assert widths[-1] == 16 + alpha and model.num_features == (16 + alpha) * expansion   # 64 / 864 out


@pytest.mark.parametrize("name, depth", [("pyramidnet110_a48", 110), ("pyramidnet272_a200", 272)])
def test_depth_counts_the_convolutions_and_the_fc_and_no_shortcut_has_a_projection(name, depth):
    model = _meta(name)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == depth
    assert not any("shortcut" in n for n in convs)
    assert all(sum(p.numel() for p in u.shortcut.parameters()) == 0 for u in _units(model))


def test_shortcut_averages_2x2_and_appends_zero_channels_after_the_input():
    x = torch.randn(2, 3, 5, 6)
    y = PyramidShortcut(3, 7, stride=2)(x)
    assert y.shape == (2, 7, 3, 3)
    # written out: the mean of each 2x2 window; the odd last row averages the pixels that exist
    expected = torch.empty(2, 3, 3, 3)
    for i in range(3):
        for j in range(3):
            expected[:, :, i, j] = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(dim=(2, 3))
    torch.testing.assert_close(y[:, :3], expected)
    assert torch.equal(y[:, 3:], torch.zeros(2, 4, 3, 3))
    assert torch.equal(PyramidShortcut(3, 3, 1)(x), x)
    with pytest.raises(ValueError):
        PyramidShortcut(4, 3)


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _randomise_bn(module):
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)


def test_unit_is_bn_conv_bn_relu_conv_bn_plus_the_shortcut_with_no_relu_before_or_after():
    torch.manual_seed(0)
    unit = PyramidBlock(4, 6, stride=2)
    _randomise_bn(unit)
    unit.eval()
    x = torch.randn(2, 4, 8, 8)
    # Fig. 6(d), written out
    h = F.conv2d(_bn(x, unit.bn), unit.conv1.conv.weight, stride=2, padding=1)
    h = F.relu(_bn(h, unit.conv1.bn))
    h = _bn(F.conv2d(h, unit.conv2.conv.weight, padding=1), unit.conv2.bn)
    shortcut = torch.cat([F.avg_pool2d(x, 2), torch.zeros(2, 2, 4, 4)], 1)
    y = unit(x)
    torch.testing.assert_close(y, h + shortcut)
    assert (y < 0).any()                                          # no ReLU after the addition


def test_bottleneck_unit_is_bn_1x1_bn_relu_3x3_bn_relu_1x1_bn_with_four_times_the_width_out():
    torch.manual_seed(0)
    unit = PyramidBottleneck(8, 3, stride=2)
    _randomise_bn(unit)
    unit.eval()
    x = torch.randn(2, 8, 7, 7)
    h = F.relu(_bn(F.conv2d(_bn(x, unit.bn), unit.conv1.conv.weight), unit.conv1.bn))
    h = F.relu(_bn(F.conv2d(h, unit.conv2.conv.weight, stride=2, padding=1), unit.conv2.bn))
    h = _bn(F.conv2d(h, unit.conv3.conv.weight), unit.conv3.bn)
    shortcut = torch.cat([F.avg_pool2d(x, 2, ceil_mode=True), torch.zeros(2, 4, 4, 4)], 1)
    torch.testing.assert_close(unit(x), h + shortcut)
    assert unit.out_chs == 12


def test_cifar_native_small_input_changes_nothing_and_odd_sizes_work():
    model = cnnlab.create_model("pyramidnet110_a48").eval()
    other = _meta("pyramidnet110_a48", small_input=False)
    assert model.num_classes == 10 and model.default_input_size == other.default_input_size == (3, 32, 32)
    assert model.min_input_size == other.min_input_size == (3, 4, 4)
    shapes = lambda m: {k: v.shape for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(model) == shapes(other) and str(model) == str(other)
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, 32, 32))
        assert features.shape == (1, 64, 8, 8)
        assert (features >= 0).all()                              # the closing BN-ReLU before pooling
        for size in (5, 33):                                      # odd sizes: the pooled shortcut rounds up
            assert model(torch.randn(1, 3, size, size)).shape == (1, 10)


def test_a_depth_the_units_cannot_make_is_refused():
    from cnnlab.models.pyramidnet import PyramidNet

    with pytest.raises(CnnlabError, match="6 n \\+ 2"):
        PyramidNet(100, 48)
    with pytest.raises(CnnlabError, match="9 n \\+ 2"):
        PyramidNet(111, 48, bottleneck=True)
