"""BN-Inception / Inception v2 (Ioffe & Szegedy, "Batch Normalization", ICML 2015, Figure 5): the parameter
count written out from the table, the module widths and grid sizes, the stride-2 modules with their max-pool
pass-through, the pooling per module, batch norm after every convolution, the separable first layer, the
module against a written-out computation, and the small-input form."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import cnnlab
from cnnlab.errors import InputSizeError, UnknownNameError
from cnnlab.nn.bn_inception import BNInceptionModule, module_pool
from cnnlab.nn.conv import ConvNormAct

MODULES = ("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b")


def _meta(**kwargs):
    with torch.device("meta"):
        return cnnlab.create_model("inception_v2", **kwargs)


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_inception_v2_parameter_count_equals_the_written_out_figure_5_table():
    # a convolution: k*k*c_in*c_out weights and batch norm's gamma and beta per output (no bias: BN shifts)
    def conv(k, c_in, c_out):
        return k * k * c_in * c_out + 2 * c_out

    # stem: separable 7x7/2 (depthwise 3 -> 24 channels, linear; pointwise 24 -> 64 with BN), 1x1 64, 3x3 192
    stem = 7 * 7 * 3 * 8 + conv(1, 24, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    # Figure 5 rows: c_in, #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool projection
    # (0: the stride-2 modules' pass-through); c_in is the previous row's filter columns summed
    rows = [
        (192, 64, 64, 64, 64, 96, 32),        # 3a -> 256
        (256, 64, 64, 96, 64, 96, 64),        # 3b -> 320
        (320, 0, 128, 160, 64, 96, 0),        # 3c -> 160 + 96 + 320 = 576
        (576, 224, 64, 96, 96, 128, 128),     # 4a -> 576
        (576, 192, 96, 128, 96, 128, 128),    # 4b -> 576
        (576, 160, 128, 160, 128, 160, 128),  # 4c -> 608 (the table's output column says 576)
        (608, 96, 128, 192, 160, 192, 128),   # 4d -> 608
        (608, 0, 128, 192, 192, 256, 0),      # 4e -> 192 + 256 + 608 = 1056
        (1056, 352, 192, 320, 160, 224, 128),  # 5a -> 1024
        (1024, 352, 192, 320, 192, 224, 128),  # 5b -> 1024
    ]
    modules = 0
    for c, ch1, red3, ch3, red_d, dbl, proj in rows:
        modules += conv(1, c, ch1) + conv(1, c, red3) + conv(3, red3, ch3)
        modules += conv(1, c, red_d) + conv(3, red_d, dbl) + conv(3, dbl, dbl) + conv(1, c, proj)
    fc = 1024 * 1000 + 1000
    assert stem == 2_712 + 128 + 4_224 + 110_976
    assert stem + modules + fc == 11_278_528
    assert _count(_meta()) == 11_278_528
    # a plain 7x7/2 first layer: 7*7*3*64 weights instead of the separable 1,176 + 1,536
    assert _count(_meta(separable_stem=False)) == 11_278_528 - (1_176 + 1_536) + 9_408


def _outputs(model, size):
    shapes = {}
    for name in MODULES:
        module = getattr(model, f"inception{name}")
        module.register_forward_hook(lambda m, i, o, name=name: shapes.update({name: tuple(o.shape[1:])}))
    model(torch.zeros(1, 3, size, size, device="meta"))
    return shapes


def test_modules_have_the_widths_of_the_tables_filter_columns_and_its_grid_sizes_at_224():
    assert _outputs(_meta().eval(), 224) == {
        "3a": (256, 28, 28), "3b": (320, 28, 28), "3c": (576, 14, 14),
        "4a": (576, 14, 14), "4b": (576, 14, 14), "4c": (608, 14, 14), "4d": (608, 14, 14),
        "4e": (1056, 7, 7), "5a": (1024, 7, 7), "5b": (1024, 7, 7),
    }
    model = _meta()
    assert [n for n, _ in model.stem.named_children()] == ["conv1", "pool1", "conv2_reduce", "conv2", "pool2"]
    assert model.num_features == 1024 and model.head.drop.__class__ is nn.Identity  # Sec. 4.2.1: no dropout


def test_five_by_five_convolutions_are_two_stacked_three_by_threes():
    model = _meta()
    for name in MODULES:
        module = getattr(model, f"inception{name}")
        kernels = [m.kernel_size for m in module.modules() if isinstance(m, nn.Conv2d)]
        assert set(kernels) <= {(1, 1), (3, 3)}, name
        assert [c.conv.kernel_size for c in module.branch3x3dbl] == [(1, 1), (3, 3), (3, 3)], name
        assert module.branch3x3dbl[1].out_chs == module.branch3x3dbl[2].out_chs, name


def test_pooling_per_module_follows_the_table_and_stride_2_modules_pass_their_input_through():
    model = _meta()
    kinds = {}
    for name in MODULES:
        module = getattr(model, f"inception{name}")
        pool = module.branch_pool if isinstance(module.branch_pool, nn.MaxPool2d) else module.branch_pool[0]
        kinds[name] = "max" if isinstance(pool, nn.MaxPool2d) else "avg"
        stride2 = name in ("3c", "4e")
        assert pool.stride == (2 if stride2 else 1), name
        assert hasattr(module, "branch1x1") != stride2, name               # stride 2: no 1x1 branch
        assert isinstance(module.branch_pool, nn.MaxPool2d) == stride2, name  # and no pool projection
    assert kinds == {"3a": "avg", "3b": "avg", "3c": "max", "4a": "avg", "4b": "avg", "4c": "avg", "4d": "avg",
                     "4e": "max", "5a": "avg", "5b": "max"}


def test_every_convolution_is_followed_by_batch_norm_then_relu_and_has_no_bias():
    model = _meta()
    blocks = [m for m in model.modules() if isinstance(m, ConvNormAct)]
    assert len(blocks) == 3 + 7 * 8 + 5 * 2            # stem (pointwise, 1x1, 3x3); 8 full, 2 stride-2 modules
    for block in blocks:
        assert [type(m) for m in block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
        assert block.conv.bias is None and block.bn.eps == 0.001
    plain = _meta(norm_layer=None)                      # the comparison the paper is about: same net, no BN
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert all(b.conv.bias is not None for b in plain.modules() if isinstance(b, ConvNormAct))


def test_first_layer_is_a_separable_7x7_with_depth_multiplier_8():
    conv1 = _meta().stem.conv1
    assert conv1.dw.weight.shape == (24, 1, 7, 7) and conv1.dw.groups == 3 and conv1.dw.stride == (2, 2)
    assert conv1.dw.bias is None
    assert conv1.pw.conv.weight.shape == (64, 24, 1, 1)
    assert [n for n, _ in conv1.named_children()] == ["dw", "pw"]   # no norm or activation in between
    gray = _meta(in_chans=1).stem.conv1
    assert gray.dw.weight.shape == (8, 1, 7, 7)


def test_module_equals_its_written_out_branches():
    torch.manual_seed(0)
    conv = lambda *a: ConvNormAct(*a, norm_layer=None)  # noqa: E731  conv + bias + ReLU: easy to write out
    module = BNInceptionModule(6, 2, 3, 4, 3, 5, "avg", 2, conv).eval()
    x = torch.randn(2, 6, 5, 5)

    def c(block, t):
        return F.relu(F.conv2d(t, block.conv.weight, block.conv.bias, padding=block.conv.padding))

    r3, k3 = module.branch3x3
    rd, d1, d2 = module.branch3x3dbl
    pooled = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    expected = torch.cat([c(module.branch1x1, x), c(k3, c(r3, x)), c(d2, c(d1, c(rd, x))),
                          c(module.branch_pool[1], pooled)], 1)
    assert module.out_chs == 2 + 4 + 5 + 2
    torch.testing.assert_close(module(x), expected)


def test_stride_2_module_halves_odd_sizes_and_its_last_channels_are_the_max_pooled_input():
    module = BNInceptionModule(6, 0, 3, 4, 3, 5, "max", 0, ConvNormAct, stride=2).eval()
    x = torch.randn(1, 6, 7, 7)
    out = module(x)
    assert out.shape == (1, 4 + 5 + 6, 4, 4)           # ceil(7 / 2): every branch agrees on an odd size
    torch.testing.assert_close(out[:, 9:], F.max_pool2d(x, 3, 2, 1), rtol=0, atol=0)


def test_average_pool_counts_real_pixels_only_and_unknown_pools_are_named():
    ones = torch.ones(1, 2, 4, 4)
    assert torch.equal(module_pool("avg")(ones), ones)  # the border is not darkened by the padding
    with pytest.raises(UnknownNameError, match="max"):
        module_pool("maxx")


def test_no_auxiliary_classifiers_the_model_returns_logits_in_training_mode():
    model = cnnlab.create_model("inception_v2", num_classes=10, small_input=True).train()
    out = model(torch.randn(2, 3, 16, 16))             # a real pass: batch statistics over 2 x 2 x 2 at 5b
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10) and torch.isfinite(out).all()
    assert model.aux_heads == () and not any("aux" in n for n, _ in model.named_modules())


def test_small_input_form_runs_at_16_28_32_px_with_a_3x3_stride_1_stem_and_an_exact_minimum():
    model = _meta(num_classes=10, in_chans=1, small_input=True).eval()
    for size, side in ((8, 1), (16, 2), (28, 4), (32, 4)):    # total stride 8: pool2, 3c, 4e
        features = model.forward_features(torch.zeros(2, 1, size, size, device="meta"))
        assert features.shape == (2, 1024, side, side)
        assert model.forward_head(features).shape == (2, 10)
    conv1 = model.stem.conv1.conv
    assert (conv1.kernel_size, conv1.stride) == ((3, 3), (1, 1)) and not hasattr(model.stem, "pool1")
    assert model.min_input_size == (1, 8, 8) and _meta().min_input_size == (3, 32, 32)
    with pytest.raises(InputSizeError, match="8x8"):
        model(torch.zeros(1, 1, 7, 7, device="meta"))
    # everything but the first layer is the 224 form's: 3*3*1*64 weights instead of the separable stem
    assert _count(model) == _count(_meta(num_classes=10, in_chans=1)) - (7 * 7 * 8 + 8 * 64) + 9 * 64
