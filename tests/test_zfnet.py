"""ZFNet (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014): the layer
table of its Fig. 3 (sizes, widths, parameter count written out), contrast normalisation after the first two
pools, dropout in the two hidden FC layers, the paper's initialisation, and the small-input form."""

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import InputSizeError


def _meta(**kwargs):
    with torch.device("meta"):
        return cnnlab.create_model("zfnet", **kwargs)


def test_zfnet_parameter_count_equals_the_written_out_layer_table():
    # Fig. 3: (kernel, c_in, c_out) of each conv, then the FC layers on the 6x6x256 map; a weight per
    # k*k*c_in*c_out plus a bias per output (no batch norm in 2014)
    convs = [(7, 3, 96), (5, 96, 256), (3, 256, 384), (3, 384, 384), (3, 384, 256)]
    fcs = [(6 * 6 * 256, 4096), (4096, 4096), (4096, 1000)]
    expected = sum(k * k * c_in * c_out + c_out for k, c_in, c_out in convs)
    expected += sum(n_in * n_out + n_out for n_in, n_out in fcs)
    assert expected == 62_357_608
    assert sum(p.numel() for p in _meta().parameters()) == expected
    # the small-input form keeps every width; only conv1 shrinks from 7x7 to 3x3
    assert sum(p.numel() for p in _meta(small_input=True).parameters()) == expected - (7 * 7 - 3 * 3) * 3 * 96


def test_zfnet_reproduces_the_papers_feature_map_sizes_at_224():
    model = _meta().eval()
    sizes = {}
    for name, module in model.features.named_children():
        module.register_forward_hook(lambda m, i, o, name=name: sizes.update({name: tuple(o.shape[1:])}))
    model(torch.zeros(1, 3, 224, 224, device="meta"))
    assert sizes == {
        "conv1": (96, 110, 110), "pool1": (96, 55, 55), "norm1": (96, 55, 55),
        "conv2": (256, 26, 26), "pool2": (256, 13, 13), "norm2": (256, 13, 13),
        "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13), "pool5": (256, 6, 6),
    }
    conv1, conv2 = model.features.conv1.conv, model.features.conv2.conv
    assert (conv1.kernel_size, conv1.stride) == ((7, 7), (2, 2))              # AlexNet's 11x11/4, refined
    assert (conv2.kernel_size, conv2.stride) == ((5, 5), (2, 2))
    assert all(m.groups == 1 for m in model.modules() if isinstance(m, nn.Conv2d))   # dense layers 3-5


def test_contrast_normalisation_follows_the_first_two_pools_only_and_can_be_turned_off():
    names = [n for n, _ in _meta().features.named_children()]
    assert names[names.index("pool1") + 1] == "norm1" and names[names.index("pool2") + 1] == "norm2"
    norms = [m for m in _meta().modules() if isinstance(m, nn.LocalResponseNorm)]
    assert len(norms) == 2 and all((m.size, m.alpha, m.beta, m.k) == (5, 1e-4, 0.75, 2.0) for m in norms)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in _meta(lrn=False).modules())
    # across feature maps: channel c is divided by (k + alpha/n * sum of squares over channels c-2..c+2)^beta
    norm = _meta().features.norm1.to("cpu")
    x = torch.randn(1, 8, 2, 2) * 30
    padded = nn.functional.pad(x.square(), (0, 0, 0, 0, 2, 2))
    window = torch.stack([padded[:, c:c + 5].sum(1) for c in range(8)], 1)
    torch.testing.assert_close(norm(x), x / (2.0 + 1e-4 / 5 * window) ** 0.75)


def test_both_hidden_fc_layers_have_4096_units_and_dropout_after_their_relu():
    head = _meta().head
    layers = [type(m) for m in head.pre_logits]
    assert layers == [nn.Linear, nn.ReLU, nn.Dropout] * 2
    assert [m.out_features for m in head.pre_logits if isinstance(m, nn.Linear)] == [4096, 4096]
    assert all(m.p == 0.5 for m in head.pre_logits if isinstance(m, nn.Dropout))
    assert _meta().head_hidden_size == 4096


def test_weights_start_as_the_papers_n_0_0_01_and_biases_at_zero():
    torch.manual_seed(0)
    model = cnnlab.create_model("zfnet", small_input=True, num_classes=10)
    fc7 = model.head.pre_logits[3]
    assert abs(fc7.weight.std().item() - 0.01) < 2e-4 and abs(fc7.weight.mean().item()) < 2e-4
    assert all((m.bias == 0).all() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_small_input_form_runs_at_16_28_32_and_needs_8_px():
    model = _meta(small_input=True, num_classes=10).eval()
    c1, c2 = model.features.conv1.conv, model.features.conv2.conv
    assert (c1.kernel_size, c1.stride, c2.stride) == ((3, 3), (1, 1), (1, 1))
    for size, side in ((16, 2), (28, 3), (32, 4)):
        x = torch.zeros(2, 3, size, size, device="meta")
        assert model.forward_features(x).shape == (2, 256, side, side)
        assert model(x).shape == (2, 10)
    assert model.min_input_size == (3, 8, 8)
    with pytest.raises(InputSizeError):
        model(torch.zeros(1, 3, 7, 7, device="meta"))
    assert _meta().min_input_size == (3, 47, 47)                 # the 224 form: one 1x1 map after pool5
