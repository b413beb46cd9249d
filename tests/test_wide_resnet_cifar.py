"""Wide Residual Networks for CIFAR (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016): the paper's
parameter counts, its Table 1 layout, and the pre-activation wide block with its dropout, checked against
computations written out here."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
import cnnlab.models.wide_resnet_cifar  # noqa: F401  (registers the builders)
from cnnlab.errors import CnnlabError
from cnnlab.models.wide_resnet_cifar import WideResNetCifar
from cnnlab.nn.wide import WideBasicBlock

NAMES = {"wrn16_4": (16, 4), "wrn16_8": (16, 8), "wrn28_10": (28, 10), "wrn40_4": (40, 4)}


def _meta(name, **kwargs):
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


def _count(model):
    return sum(p.numel() for p in model.parameters())


def _blocks(model):
    return [b for group in (model.layer1, model.layer2, model.layer3) for b in group]


def _written_out_count(depth, k, classes=10):
    """Parameters from the paper's Table 1: conv1 3x3x3x16; per block BN (2 per channel) and two 3x3 convs,
    a 1x1 projection where the width or stride changes; final BN; the FC with its bias. No conv biases."""
    n = (depth - 4) // 6
    total, c_in = 3 * 3 * 3 * 16, 16
    for width in (16 * k, 32 * k, 64 * k):
        for j in range(n):
            total += 2 * c_in + 9 * c_in * width + 2 * width + 9 * width * width
            if j == 0:                                              # the group's first block changes the shape
                total += c_in * width
            c_in = width
    return total + 2 * c_in + c_in * classes + classes


@pytest.mark.parametrize("name, millions, exact", [
    ("wrn40_4", 8.9, 8_949_210),       # the paper's table of CIFAR results
    ("wrn16_8", 11.0, 10_961_370),     # the same table
    ("wrn28_10", 36.5, 36_479_194),    # the same table
    ("wrn16_4", 2.7, 2_748_890),       # the paper's tables of the block studies
])
def test_wrn_has_the_papers_parameter_count(name, millions, exact):
    n = _count(_meta(name))
    assert n == _written_out_count(*NAMES[name]) == exact
    assert round(n / 1e6, 1) == millions


@pytest.mark.parametrize("name", NAMES)
def test_layout_is_table_1_conv1_16_then_groups_of_16k_32k_64k_with_n_blocks(name):
    depth, k = NAMES[name]
    model = _meta(name)
    n = (depth - 4) // 6
    assert model.stem.out_channels == 16 and model.stem.kernel_size == (3, 3)
    for group, width, stride in ((model.layer1, 16 * k, 1), (model.layer2, 32 * k, 2), (model.layer3, 64 * k, 2)):
        assert len(group) == n
        assert [b.out_chs for b in group] == [width] * n
        assert [b.stride for b in group] == [stride] + [1] * (n - 1)      # the first block of a group strides
        assert group[0].conv1.stride == (stride, stride)
        # a 1x1 projection exactly where the shape changes (16 -> 16k too, since k > 1), identities elsewhere
        assert group[0].shortcut.kernel_size == (1, 1) and group[0].shortcut.stride == (stride, stride)
        assert all(b.shortcut is None for b in group[1:])
    assert model.num_features == 64 * k and model.get_classifier().in_features == 64 * k
    # for k > 1, d counts the convolutions: conv1, 6N 3x3 and three 1x1 projections
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == depth == 6 * n + 4


def test_feature_maps_at_32x32_are_16k_32_then_32k_16_then_64k_8():
    model = _meta("wrn16_8").eval()
    x = torch.zeros(2, 3, 32, 32, device="meta")
    x = model.stem(x)
    assert x.shape == (2, 16, 32, 32)
    for group, shape in ((model.layer1, (128, 32, 32)), (model.layer2, (256, 16, 16)), (model.layer3, (512, 8, 8))):
        x = group(x)
        assert x.shape[1:] == shape
    assert model.forward_features(torch.zeros(2, 3, 32, 32, device="meta")).shape == (2, 512, 8, 8)


def test_builders_are_in_the_cifar_resnet_family():
    for name in NAMES:
        assert cnnlab.model_meta(name).family == "resnet_cifar"
        assert "Wide Residual Networks" in cnnlab.model_meta(name).paper
    assert set(NAMES) <= set(cnnlab.list_models("wrn*"))


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _randomise_bn(module):
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)


@pytest.mark.parametrize("in_chs, out_chs, stride", [(4, 6, 2), (4, 6, 1), (6, 6, 2)])
def test_projecting_block_is_bn_relu_conv_bn_relu_conv_plus_a_1x1_of_the_preactivated_input(in_chs, out_chs, stride):
    torch.manual_seed(0)
    block = WideBasicBlock(in_chs, out_chs, stride)
    _randomise_bn(block)
    block.eval()
    x = torch.randn(2, in_chs, 8, 8)
    # Fig. 1(d), written out; the projection sees relu(bn(x)), as the authors' code does
    a = F.relu(_bn(x, block.bn1))
    h = F.conv2d(a, block.conv1.weight, stride=stride, padding=1)
    h = F.conv2d(F.relu(_bn(h, block.bn2)), block.conv2.weight, padding=1)
    shortcut = F.conv2d(a, block.shortcut.weight, stride=stride)
    y = block(x)
    torch.testing.assert_close(y, h + shortcut)
    assert (y < 0).any()                                            # no ReLU after the addition
    assert not torch.allclose(y, h + F.conv2d(x, block.shortcut.weight, stride=stride))  # not the raw input


def test_identity_block_adds_the_raw_input_not_the_preactivated_one():
    torch.manual_seed(0)
    block = WideBasicBlock(6, 6)
    _randomise_bn(block)
    block.eval()
    x = torch.randn(2, 6, 5, 5)
    h = F.conv2d(F.relu(_bn(x, block.bn1)), block.conv1.weight, padding=1)
    h = F.conv2d(F.relu(_bn(h, block.bn2)), block.conv2.weight, padding=1)
    assert block.shortcut is None
    torch.testing.assert_close(block(x), h + x)


def test_without_a_norm_layer_the_block_leaves_its_input_untouched():
    block = WideBasicBlock(3, 3, norm_layer=None).eval()
    x = torch.randn(1, 3, 4, 4)
    kept = x.clone()
    y = block(x)
    assert torch.equal(x, kept)                                    # the first ReLU is not in place on x
    h = F.conv2d(F.relu(x), block.conv1.weight, block.conv1.bias, padding=1)
    torch.testing.assert_close(y, F.conv2d(F.relu(h), block.conv2.weight, block.conv2.bias, padding=1) + x)


def test_dropout_sits_between_the_second_relu_and_the_second_conv_and_is_off_by_default():
    assert not any(isinstance(m, nn.Dropout) for m in _meta("wrn16_4").modules())
    model = _meta("wrn16_4", drop_rate=0.3)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == len(_blocks(model)) == 6 and all(d.p == 0.3 for d in drops)   # one per block, no head's
    names = [n for n, _ in _blocks(model)[0].named_children()]
    assert names.index("act2") < names.index("drop") < names.index("conv2")
    head = _meta("wrn16_4", head_drop_rate=0.5)
    assert [m.p for m in head.modules() if isinstance(m, nn.Dropout)] == [0.5]
    assert isinstance(head.head.drop, nn.Dropout)


def test_block_dropout_draws_from_the_global_generator_in_training_and_is_off_in_eval():
    torch.manual_seed(0)
    block = WideBasicBlock(4, 4, drop_rate=0.5)
    x = torch.randn(2, 4, 6, 6)
    block.train()
    torch.manual_seed(1)
    first = block(x)
    torch.manual_seed(1)
    assert torch.equal(block(x), first)                             # seeded: the same mask
    assert not torch.equal(block(x), first)                         # a new draw: another mask
    # written out: relu(bn(conv1(a))) zeroed where the mask drops, the rest scaled by 1 / (1 - p)
    torch.manual_seed(2)
    mask = torch.empty(2, 4, 6, 6).bernoulli_(0.5)
    a = F.relu(F.batch_norm(x, None, None, block.bn1.weight, block.bn1.bias, True))
    h = F.conv2d(a, block.conv1.weight, padding=1)
    h = F.relu(F.batch_norm(h, None, None, block.bn2.weight, block.bn2.bias, True)) * mask / 0.5
    torch.manual_seed(2)
    torch.testing.assert_close(block(x), F.conv2d(h, block.conv2.weight, padding=1) + x)
    block.eval()
    assert torch.equal(block(x), block(x))


def test_cifar_native_small_input_changes_nothing():
    model = cnnlab.create_model("wrn16_4").eval()
    other = _meta("wrn16_4", small_input=False)
    assert model.num_classes == 10
    assert model.default_input_size == other.default_input_size == (3, 32, 32)
    assert model.min_input_size == other.min_input_size == (3, 4, 4)
    shapes = lambda m: {k: v.shape for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(model) == shapes(other) and str(model) == str(other)
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, 32, 32))
        assert features.shape == (1, 256, 8, 8)
        assert (features >= 0).all()                               # the closing BN-ReLU before pooling
        for size in (4, 5, 33):
            assert model(torch.randn(1, 3, size, size)).shape == (1, 10)


def test_a_depth_the_groups_cannot_make_is_refused():
    with pytest.raises(CnnlabError, match="6 N \\+ 4"):
        WideResNetCifar(20, 4)
    with pytest.raises(CnnlabError, match="6 N \\+ 4"):
        WideResNetCifar(4, 4)
    with pytest.raises(CnnlabError, match="widening factor"):
        WideResNetCifar(16, 0)
    with pytest.raises(CnnlabError, match="drop_rate"):
        cnnlab.create_model("wrn16_4", drop_rate=1.0)
