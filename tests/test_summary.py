import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.errors import CnnlabError

from .conftest import build, build_meta


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "densenet121", "mobilenet_v2", "vgg11_bn", "lenet5"])
def test_macs_and_params_agree_with_pytorch_counters(name):
    model = build(name, small_input=name != "lenet5").eval()
    s = cnnlab.summary(model)
    c, h, w = model.default_input_size
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, c, h, w))
    assert s.total_macs == counter.get_total_flops() // 2
    used = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("aux"))
    assert sum(r.params for r in s.rows) == used
    assert s.total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_every_model_has_a_summary_whose_totals_are_its_parameters(name):
    model = build_meta(name, small_input=name != "lenet5")
    s = cnnlab.summary(model)
    assert s.total_params == sum(p.numel() for p in model.parameters()) and s.total_macs > 0
    assert sum(r.params for r in s.rows) <= s.total_params  # layers the forward pass never reaches add none


def test_rows_are_data():
    s = cnnlab.summary(build_meta("lenet5"))
    assert [r.name for r in s.rows if r.type.endswith("Conv2d")] == ["features.c1.conv", "features.c3.conv",
                                                                      "features.c5.conv"]
    c5 = next(r for r in s.rows if r.name == "features.c5.conv")  # computed as a matrix product, counted as the conv
    assert c5.type == "WholeInputConv2d" and c5.kernel == (5, 5) and c5.macs == 120 * 16 * 25
    c1 = s.rows[0]
    assert (c1.kernel, c1.stride, c1.padding, c1.dilation) == ((5, 5), (1, 1), (0, 0), (1, 1))
    assert c1.output_shape == (6, 28, 28) and c1.params == 156 and c1.macs == 6 * 28 * 28 * 25
    assert s.rows[-1].output_shape == (10,)
    assert s.to_dicts()[0]["name"] == "features.c1.conv"
    table = str(s)
    assert "features.c3.conv" in table and "61,706" in table


def test_receptive_fields_match_known_values():
    """Textbook values: VGG-16 conv5_3 sees 196 px and pool5 212 px, AlexNet pool5 195 px, ResNet-50's last
    block 427 px, LeNet-5's C5 the whole 32x32 input."""
    rf = lambda s, name: next(r.receptive_field for r in s.rows if r.name == name)  # noqa: E731
    vgg = cnnlab.summary(build_meta("vgg16"))
    assert rf(vgg, "stages.4.2.act") == (196, 196)
    assert rf(vgg, "stages.4.3") == (212, 212)  # after the last max-pool
    assert rf(cnnlab.summary(build_meta("alexnet")), "features.pool5") == (195, 195)
    assert rf(cnnlab.summary(build_meta("resnet50")), "layer4.2.act") == (427, 427)
    assert rf(cnnlab.summary(build_meta("lenet5")), "features.c5.act") == (32, 32)


def test_receptive_field_follows_every_branch_and_dilation():
    block = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, dilation=2), torch.nn.Conv2d(1, 1, 3, stride=2),
                                torch.nn.Conv2d(1, 1, 3))
    s = cnnlab.summary(block, (1, 32, 32))
    assert [r.receptive_field for r in s.rows] == [(5, 5), (7, 7), (11, 11)]
    # Inception: the 1x1 branch alone sees less than the module output, which takes the widest branch
    g = cnnlab.summary(build_meta("googlenet"))
    assert rf_of(g, "inception3a.branch1.act") < rf_of(g, "inception3a.branch2.1.act")


def rf_of(s, name):
    return next(r.receptive_field for r in s.rows if r.name == name)


@pytest.mark.parametrize("name", ["resnet18", "inception_v3"])
def test_a_summary_on_meta_is_the_summary_on_the_cpu(name):
    """Batch norm is shortcut on the meta device (a tensor like its input): every row, shape, count and field
    must still be what a real forward pass gives."""
    meta, cpu = (cnnlab.summary(m, "3x32x32") for m in (build_meta(name, small_input=True),
                                                        build(name, small_input=True)))
    assert meta.to_dicts() == cpu.to_dicts() and len(meta.rows) > 50
    assert any(r.type == "BatchNorm2d" for r in meta.rows)


def test_summary_runs_on_meta_without_memory_and_restores_training_mode():
    model = build_meta("vgg19")
    model.train()
    s = cnnlab.summary(model, "3x224x224")
    assert model.training
    assert s.total_macs > 19e9 and s.output_shape == (1000,)


def test_summary_input_errors():
    with pytest.raises(CnnlabError, match="CxHxW"):
        cnnlab.summary(build_meta("resnet18"), (1, 2, 3, 4))
    with pytest.raises(CnnlabError, match="at least 32x32"):
        cnnlab.summary(build_meta("resnet18"), (3, 16, 16))
    with pytest.raises(CnnlabError, match="needs input_size"):
        cnnlab.summary(torch.nn.Conv2d(1, 1, 3))
    with pytest.raises(CnnlabError, match="input size is CxHxW, channels first: 3x224x224, not 224x224x3"):
        cnnlab.summary(build_meta("resnet18"), (224, 224, 3))
