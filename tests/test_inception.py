"""Inception v3, v4, Inception-ResNet-v2 and Xception: the published parameter counts, the released networks'
weights (torchvision's, timm's) giving the same outputs, and the blocks' own claims."""

import pytest
import torch
import torchvision
from torch.nn import functional as F

import cnnlab
from cnnlab.models import InceptionOutputs, load_torchvision_weights
from cnnlab.nn.inception import Branches
from cnnlab.nn.inception_resnet import InceptionResNetC
from cnnlab.nn.xception import SeparableConv2d, XceptionBlock

from .conftest import build, build_meta
from .test_torchvision import _randomise_bn_statistics


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_inception_v3_has_torchvisions_parameter_counts_with_and_without_its_auxiliary_head():
    assert _params(build_meta("inception_v3")) == 27_161_264
    assert _params(build_meta("inception_v3", aux_logits=False)) == 23_834_568


def test_inception_v4_resnet_v2_and_xception_have_the_published_parameter_counts():
    # Inception-v4 and Inception-ResNet-v2 as released (timm's counts); Xception: the paper's Table 3
    assert _params(build_meta("inception_v4")) == 42_679_816
    assert _params(build_meta("inception_resnet_v2")) == 55_843_464
    assert _params(build_meta("xception")) == 22_855_952


def test_inception_v3_auxiliary_head_matches_torchvisions_and_exists_only_in_training():
    theirs = torchvision.models.inception_v3(num_classes=10, aux_logits=True, init_weights=True).eval()
    _randomise_bn_statistics(theirs)
    ours = cnnlab.create_model("inception_v3", num_classes=10).eval()
    assert load_torchvision_weights(ours, theirs.state_dict()) == ([], [])
    x = torch.randn(1, 768, 17, 17)
    with torch.no_grad():
        torch.testing.assert_close(ours.aux1(x), theirs.AuxLogits(x), rtol=1e-4, atol=1e-5)
    small = build("inception_v3", num_classes=4, small_input=True).train()
    out = small(torch.randn(2, 3, 16, 16))
    assert isinstance(out, InceptionOutputs) and out.logits.shape == out.aux1.shape == (2, 4) and out.aux2 is None
    assert isinstance(small.eval()(torch.randn(2, 3, 16, 16)), torch.Tensor)
    small.reset_classifier(0)
    assert small.aux1 is None and small.eval()(torch.randn(1, 3, 16, 16)).shape == (1, 2048)
    features = small.train()(torch.randn(2, 3, 16, 16))  # a feature extractor in training too: no aux head
    assert isinstance(features, torch.Tensor) and features.shape == (2, 2048)


@pytest.mark.parametrize("ours, theirs", [("inception_v4", "inception_v4"),
                                          ("inception_resnet_v2", "inception_resnet_v2"),
                                          ("xception", "legacy_xception")])
def test_timms_weights_load_by_position_and_give_the_same_outputs(ours, theirs):
    timm = pytest.importorskip("timm", reason="timm (the dev extra) is not installed")
    reference = timm.create_model(theirs, num_classes=10).eval()
    _randomise_bn_statistics(reference)
    model = cnnlab.create_model(ours, num_classes=10).eval()
    assert load_torchvision_weights(model, reference.state_dict()) == ([], [])
    x = torch.randn(2, 3, 75, 75)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


def test_branches_concatenate_in_the_order_given():
    a, b = torch.nn.Conv2d(3, 2, 1), torch.nn.MaxPool2d(3, 1, 1)
    block = Branches(3, a=a, b=b)
    x = torch.randn(1, 3, 5, 5)
    assert block.out_chs == 5
    torch.testing.assert_close(block(x), torch.cat([a(x), b(x)], 1))


def test_a_residual_inception_block_adds_its_scaled_branch_to_the_input():
    conv = cnnlab.models.inception.conv_bn
    full = InceptionResNetC(64, conv, scale=1.0, act_layer=None).eval()
    scaled = InceptionResNetC(64, conv, scale=0.2, act_layer=None).eval()
    scaled.load_state_dict(full.state_dict())
    x = torch.randn(2, 64, 5, 5)
    with torch.no_grad():
        branch = full(x) - x
        torch.testing.assert_close(scaled(x) - x, 0.2 * branch)
        torch.testing.assert_close(branch, full.up(full.branches(x)))
    relu = InceptionResNetC(64, conv, scale=0.2).eval()
    relu.load_state_dict(full.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(relu(x), F.relu(scaled(x)))


def test_xceptions_separable_convolution_is_depthwise_then_pointwise_with_nothing_between():
    sep = SeparableConv2d(4, 6)
    assert _params(sep) == 3 * 3 * 4 + 4 * 6   # against 3 * 3 * 4 * 6 for a full 3x3 convolution
    x = torch.randn(2, 4, 7, 7)
    by_hand = F.conv2d(F.conv2d(x, sep.depthwise.weight, padding=1, groups=4), sep.pointwise.weight)
    torch.testing.assert_close(sep(x), by_hand)


def test_an_xception_block_changing_shape_has_a_strided_1x1_shortcut_else_the_identity():
    down = XceptionBlock(8, 16, reps=2, stride=2).eval()
    assert down.shortcut.conv.stride == (2, 2) and down(torch.randn(1, 8, 9, 9)).shape == (1, 16, 5, 5)
    same = XceptionBlock(8, 8, reps=3).eval()
    x = torch.randn(1, 8, 5, 5)
    x0 = x.clone()
    assert same.shortcut is None
    out = same(x)
    torch.testing.assert_close(x, x0)  # the block's first ReLU leaves its input, which the shortcut adds, alone
    torch.testing.assert_close(out, same.residual(x0.clone()) + x0)


@pytest.mark.parametrize("name", ["inception_v3", "inception_v4", "inception_resnet_v2", "xception"])
def test_the_small_input_form_keeps_the_parameters_and_takes_16_pixels_or_its_minimum(name):
    assert _params(build_meta(name, small_input=True)) == _params(build_meta(name))
    model = build_meta(name, in_chans=1, num_classes=10, small_input=True).eval()
    side = max(16, model.min_input_size[-1])
    assert model(torch.zeros(2, 1, side, side, device="meta")).shape == (2, 10)
