import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.inspect.summary import unit_fields

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


def test_the_summary_names_the_stages_that_freeze_stages_counts(capsys):
    """The transfer docs send users to `cnnlab summary MODEL` for the stages `--freeze-stages K` counts; it
    showed none. They are the model's feature_info, in the order freezing takes them."""
    import json

    from cnnlab.cli import main
    from cnnlab.transfer import stage_modules

    model = build("resnet18", small_input=True)
    stages = cnnlab.summary(model, (3, 32, 32)).stages
    assert [g["module"] for g in stages] == ["layer1", "layer2", "layer3", "layer4"]
    assert [g["channels"] for g in stages] == [f.num_chs for f in model.feature_info]
    assert "layer2" in stage_modules(model, 2) and "layer3" not in stage_modules(model, 2)
    assert main(["summary", "lenet5"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "stages (transfer --freeze-stages K freezes 1..K): 1 features.s2 (6 ch, /2), 2 features.s4 (16 ch, /4), "
        "3 features.c5 (120 ch, /4)")
    assert main(["summary", "lenet5", "--format", "json"]) == 0
    assert [g["module"] for g in json.loads(capsys.readouterr().out)["stages"]] == ["features.s2", "features.s4",
                                                                                  "features.c5"]


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


def _gradient_field(model: torch.nn.Module, size: tuple[int, int, int]) -> int:
    """The receptive field of the middle unit of ``model``'s output, measured independently of the arithmetic:
    the rows of the input its gradient reaches, with every weight 1 (no cancellation) in float64."""
    model = copy.deepcopy(model).double().eval()
    for p in model.parameters():
        p.data.fill_(1.0)
    x = torch.ones(1, *size, dtype=torch.float64, requires_grad=True)
    out = model(x)
    (g,) = torch.autograd.grad(out[0, :, out.shape[-2] // 2, out.shape[-1] // 2].sum(), x)
    rows = torch.nonzero(g[0].abs().sum((0, 2))).flatten()
    assert rows[0] > 0 and rows[-1] < size[1] - 1, "the field reaches the border: use a larger input"
    return int(rows[-1] - rows[0] + 1)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_up_sampling_brings_units_closer_and_widens_the_field_by_the_inputs_it_reads(mode):
    """A unit of a nearest up-sampling reads one input unit, a bilinear one two; the units after it are half as
    far apart, so a 3x3 convolution there adds 2 pixels where before the up-sampling it added 4."""
    nn = torch.nn
    layers = [nn.Conv2d(1, 1, 3, padding=1), nn.AvgPool2d(2), nn.Upsample(scale_factor=2, mode=mode),
              nn.Conv2d(1, 1, 3, padding=1)]
    s = cnnlab.summary(nn.Sequential(*layers), (1, 32, 32))
    assert [r.receptive_field[0] for r in s.rows] == [3, 4, 4 if mode == "nearest" else 6, 6 if mode == "nearest"
                                                      else 8]
    for n in (3, 4):  # the arithmetic against the gradient, after the up-sampling and after the convolution
        assert s.rows[n - 1].receptive_field[0] == _gradient_field(nn.Sequential(*layers[:n]), (1, 32, 32))
    _, _, jump, _, start, _ = unit_fields(nn.Sequential(*layers), torch.zeros(1, 1, 32, 32), ["3"])["3"]
    # the pool's unit 0 lies on pixel 0.5; up-sampled unit i reads it at (i + 0.5) / 2 - 0.5 (bilinear), or, on
    # average, floor(i / 2) = i / 2 - 0.25 (nearest): the units lie on i + 0.5 - 0.5
    assert jump == 1 and start == 0


def test_a_squeeze_excitation_gate_lets_every_unit_see_the_whole_image_and_moves_none():
    """The gate is computed on a global pool of the map and scales it: each unit after it depends on the whole
    image (its gradient reaches every pixel), the same region for all units, so the 3x3 convolutions after it
    do not widen it; and the units stay where they were (one pixel apart, unit 0 on pixel 0)."""
    from cnnlab.nn.mobile import SqueezeExcite

    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), SqueezeExcite(8, 4), nn.Conv2d(8, 8, 3, padding=1),
                        nn.Conv2d(8, 8, 3, padding=1))
    s = cnnlab.summary(net, (3, 32, 32))
    whole = 3 + 31  # the pool's 32 units, one pixel apart, each seeing 3 pixels (padding included)
    assert [rf_of(s, n)[0] for n in ("0", "1.pool", "1.gate", "2", "3")] == [3, whole, whole, whole, whole]
    x = torch.ones(1, 3, 32, 32, requires_grad=True)
    (g,) = torch.autograd.grad(net(x)[0, :, 16, 16].sum(), x)
    assert bool((g[0].abs().sum(0) > 0).all())  # every pixel of the image reaches the middle unit
    assert unit_fields(net, torch.zeros(1, 3, 32, 32), ["3"])["3"] == (whole, whole, 1, 1, 0, 0)


def test_adaptive_pooling_fields_are_its_widest_window_and_slices_and_padding_move_units():
    nn = torch.nn
    # PyTorch's windows for 5 -> 3: [0, 2), [1, 4), [3, 5): the middle one is 3 wide
    s = cnnlab.summary(nn.Sequential(nn.AdaptiveAvgPool2d(3)), (1, 5, 5))
    assert s.rows[0].receptive_field == (3, 3)

    class Crop(nn.Module):
        def forward(self, x):
            return F.pad(x, (2, 0, 3, 0))[:, :, 1::2, ::2]  # 3 rows on top, 2 columns left, then every other one

    net = nn.Sequential(nn.Conv2d(1, 1, 3), Crop(), nn.Conv2d(1, 1, 3))
    rf_h, rf_w, jh, jw, sh, sw = unit_fields(net, torch.zeros(1, 1, 32, 32), ["2"])["2"]
    # unit 0 of the first conv is centred on pixel 1; the padding puts 3 (2) units before it; the slice takes
    # every other unit from 1 (0); the last conv's window centres one unit in
    assert (jh, jw) == (2, 2) and (sh, sw) == (1 - 3 + 1 + 2, 1 - 2 + 0 + 2)
    assert (rf_h, rf_w) == (3 + 2 * 2, 3 + 2 * 2)


def test_parameters_of_a_module_with_children_count_as_used():
    nn = torch.nn

    class Scaled(nn.Module):  # a learned scale beside a child layer (LayerScale's pattern)
        def __init__(self):
            super().__init__()
            self.conv, self.gamma = nn.Conv2d(3, 4, 3), nn.Parameter(torch.ones(4, 1, 1))

        def forward(self, x):
            return self.conv(x) * self.gamma

    s = cnnlab.summary(nn.Sequential(Scaled(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)), (3, 8, 8))
    assert s.used_params == s.total_params == 112 + 4 + 290 and "at inference" not in s.totals()


def test_a_residual_attention_module_keeps_its_trunks_places():
    """H(x) = (1 + M(x)) T(x): the trunk T is padded convolutions (unit i on pixel i); the mask M pools down and
    up-samples back, whose places are the arithmetic's average. A sum or product of paths takes its places from
    its most direct path, so stacked modules do not drift (attention56's last map had drifted 34 pixels)."""
    from cnnlab.nn.attention import AttentionModule

    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), AttentionModule(8, depth=2), AttentionModule(8, depth=2))
    for layer in ("1", "2"):
        rf_h, _, jump, _, start, _ = unit_fields(net, torch.zeros(1, 3, 128, 128), [layer])[layer]
        assert (jump, start) == (1, 0) and rf_h > 40  # the mask's field is wider than the trunk's few 3x3s
