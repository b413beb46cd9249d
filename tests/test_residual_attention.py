"""Residual Attention Network (Wang et al., CVPR 2017): parameter counts, the layout of Table 2, attention
residual learning ``H = (1 + M) * T`` and the soft-mask branch."""

import functools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import cnnlab
from cnnlab.nn.attention import AttentionModule, PreActBottleneck, SoftMaskBranch

from .conftest import build_meta


@functools.cache
def _meta(name: str, small_input: bool = False) -> nn.Module:
    """One meta-device model per form, shared by the tests that only read it (eval mode, 10 classes)."""
    return build_meta(name, num_classes=10, small_input=small_input).eval()


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _modules(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def test_attention56_has_the_authors_31_8m_parameters_within_0_3_percent_of_the_papers_31_9m():
    # Table 4 says 31.9M; the authors' released Attention-56-deploy.prototxt counts 31,810,728 (convolutions,
    # BN scale and shift, classifier), which this network equals to the parameter
    n = _params(build_meta("attention56"))  # 1000 classes, as the paper
    assert n == 31_810_728
    assert abs(n - 31.9e6) / 31.9e6 < 0.003


def test_attention92_has_the_authors_52_5m_parameters_the_papers_table_4_says_51_3m():
    # the released Attention-92-deploy.prototxt counts 52,466,344; Table 4's 51.3M is 2.3% below it
    n = _params(build_meta("attention92"))
    assert n == 52_466_344
    assert 0.022 < (n - 51.3e6) / 51.3e6 < 0.023


def test_attention92_adds_one_stage2_and_two_stage3_attention_modules_to_attention56():
    a56, a92 = _meta("attention56"), _meta("attention92")
    assert [len(_modules(getattr(m, f"stage{i}"), AttentionModule)) for m in (a56, a92) for i in (1, 2, 3)] == \
        [1, 1, 1, 1, 2, 3]
    assert _params(a92) - _params(a56) == _params(a92.stage2[2]) + 2 * _params(a92.stage3[1])


@pytest.mark.parametrize("name, depth", [("attention56", 56), ("attention92", 92)])
def test_the_name_counts_the_weighted_layers_on_the_trunk_path(name, depth):
    model = _meta(name)
    in_masks = {id(u) for mask in _modules(model, SoftMaskBranch) for u in _modules(mask, PreActBottleneck)}
    trunk_units = [u for u in _modules(model, PreActBottleneck) if id(u) not in in_masks]
    assert 3 * len(trunk_units) + 1 + 1 == depth                  # three convs per unit, the stem, the classifier


def test_each_mask_goes_down_to_stage4s_7x7_with_3_2_1_pools_and_12_9_6_units_per_module():
    model = _meta("attention56")
    lowest, handles = {}, []
    for i in (1, 2, 3):
        mask = getattr(model, f"stage{i}")[1].mask
        handles.append(mask.down[-1].register_forward_hook(lambda m, a, o, i=i: lowest.update({i: o.shape[-2:]})))
    model(torch.zeros(1, 3, 224, 224, device="meta"))
    for h in handles:
        h.remove()
    assert lowest == {1: (7, 7), 2: (7, 7), 3: (7, 7)}
    assert [getattr(model, f"stage{i}")[1].mask.depth for i in (1, 2, 3)] == [3, 2, 1]
    # p + t + p = 4 units on the trunk; the mask: r down and r up per pooled size, one unit per skip
    assert [len(_modules(getattr(model, f"stage{i}")[1], PreActBottleneck)) for i in (1, 2, 3)] == [12, 9, 6]


def _module(chs=8, depth=2, **kwargs) -> AttentionModule:
    torch.manual_seed(0)
    return AttentionModule(chs, depth, **kwargs).eval()


def test_the_module_output_is_the_post_units_of_one_plus_mask_times_trunk():
    module = _module()
    seen = {}
    module.trunk.register_forward_hook(lambda m, a, o: seen.update(T=o))
    module.mask.register_forward_hook(lambda m, a, o: seen.update(M=o))
    module.post.register_forward_pre_hook(lambda m, a: seen.update(H=a[0]))
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        out = module(x)
        torch.testing.assert_close(seen["H"], (1 + seen["M"]) * seen["T"], rtol=0, atol=0)
        torch.testing.assert_close(out, module.post(seen["H"]))


def test_naive_attention_learning_is_mask_times_trunk():
    module = _module(residual=False)
    with torch.no_grad():
        x = torch.randn(2, 8, 9, 9)
        y = module.pre(x)
        torch.testing.assert_close(module(x), module.post(module.mask(y) * module.trunk(y)))


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def test_with_the_mask_forced_to_zero_the_module_is_its_trunk():
    module = _module()
    x = torch.randn(2, 8, 10, 10)
    module.mask = _Zero()
    with torch.no_grad():
        torch.testing.assert_close(module(x), module.post(module.trunk(module.pre(x))), rtol=0, atol=0)


def test_with_the_last_mask_conv_zeroed_the_mask_is_one_half_and_the_trunk_is_scaled_by_1_5():
    module = _module()
    nn.init.zeros_(module.mask.out.conv2.conv.weight)
    x = torch.randn(2, 8, 10, 10)
    with torch.no_grad():
        y = module.pre(x)
        assert torch.equal(module.mask(y), torch.full_like(y, 0.5))
        torch.testing.assert_close(module(x), module.post(1.5 * module.trunk(y)))


def test_mask_values_lie_strictly_between_0_and_1_and_keep_the_input_shape():
    torch.manual_seed(0)
    mask = SoftMaskBranch(8, 3).eval()
    with torch.no_grad():
        m = mask(torch.randn(4, 8, 16, 16))
    assert m.shape == (4, 8, 16, 16)
    assert (m > 0).all() and (m < 1).all() and m.std() > 0       # a real map, not a constant


def test_the_mask_adds_each_skip_unit_to_the_upsampled_map_of_the_same_size():
    torch.manual_seed(0)
    mask = SoftMaskBranch(8, 2).eval()
    x = torch.randn(2, 8, 13, 11)
    with torch.no_grad():
        d1 = mask.down[0](x)                                      # 7 x 6
        d2 = mask.down[1](d1)                                     # 4 x 3
        y = mask.up[1](d2)
        y = F.interpolate(y, size=d1.shape[-2:], mode="bilinear", align_corners=False) + mask.skip[0](d1)
        y = mask.up[0](y)
        want = mask.out(F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False))
        assert d1.shape[-2:] == (7, 6) and d2.shape[-2:] == (4, 3)
        torch.testing.assert_close(mask(x), want, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_odd_sizes_come_back_exactly_from_every_mask_depth(mode):
    torch.manual_seed(0)
    for depth in (1, 2, 3):
        module = AttentionModule(4, depth, mode=mode).eval()
        for size in [(1, 1), (5, 3), (13, 11)]:
            with torch.no_grad():
                assert module(torch.randn(1, 4, *size)).shape == (1, 4, *size)


def test_odd_input_sizes_run_through_the_whole_network():
    for name, small, side in [("attention56", False, 225), ("attention92", False, 97), ("attention56", True, 29),
                              ("attention92", True, 13)]:
        model = _meta(name, small)
        assert model(torch.zeros(1, 3, side, side + 2, device="meta")).shape == (1, 10)


@pytest.mark.parametrize("name", ["attention56", "attention92"])
def test_the_small_input_form_runs_at_16_28_and_32_pixels_with_stage4_at_an_eighth(name):
    model = _meta(name, True)
    assert model.min_input_size == (3, 8, 8) and _meta(name).min_input_size == (3, 32, 32)
    for side, last in [(16, 2), (28, 4), (32, 4)]:
        assert model.forward_features(torch.zeros(2, 3, side, side, device="meta")).shape == (2, 2048, last, last)


def test_the_residual_unit_is_the_pre_activation_bottleneck_written_out():
    torch.manual_seed(0)
    unit = PreActBottleneck(8, 16, stride=2).eval()
    for bn in _modules(unit, nn.BatchNorm2d):                     # non-trivial statistics
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
    x = torch.randn(2, 8, 9, 9)

    def bn_relu(t, bn):
        return F.relu(F.batch_norm(t, bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps))

    with torch.no_grad():
        a = bn_relu(x, unit.preact.bn)
        h = F.conv2d(a, unit.conv1.weight)                                             # 4 x 9 x 9
        h = F.conv2d(bn_relu(h, unit.conv2.bn), unit.conv2.conv.weight, stride=2, padding=1)  # 4 x 5 x 5
        h = F.conv2d(bn_relu(h, unit.conv3.bn), unit.conv3.conv.weight)               # 16 x 5 x 5
        want = h + F.conv2d(a, unit.shortcut.weight, stride=2)                        # projection of BN-ReLU(x)
        torch.testing.assert_close(unit(x), want)
    same = PreActBottleneck(16, 16).eval()
    assert same.shortcut is None                                  # the identity elsewhere


def test_the_builders_are_registered_in_the_attention_family():
    assert cnnlab.list_models("attention*") == ["attention56", "attention92"]
    assert cnnlab.model_meta("attention92").family == "attention"
