"""Registry-driven tests: every registered model is tested the moment it is registered."""

import pytest
import torch
import torchvision

import cnnlab
from cnnlab.errors import InputSizeError
from cnnlab.models import InceptionOutputs

from .conftest import build, build_filled, build_meta

MODELS = cnnlab.list_models()
TORCHVISION = [n for n in MODELS if cnnlab.model_meta(n).torchvision]
SMALL = [n for n in MODELS if n != "lenet5"]  # lenet5's small_input is its 28x28 form, tested below


def _logits(out):
    return out.logits if isinstance(out, InceptionOutputs) else out


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_every_parameter_gets_a_gradient(name):
    """The ImageNet form at its minimum input, filled (the family's own init, in the small-input form, is the
    training test's below; drawing it for VGG's 130M weights was half of this test's time)."""
    model = build_filled(name, num_classes=7, in_chans=1, small_input=False).train()
    _, h, w = model.min_input_size
    x = torch.randn(2, 1, h, w)
    out = model(x)
    outputs = [o for o in out if o is not None] if isinstance(out, InceptionOutputs) else [out]
    assert all(o.shape == (2, 7) for o in outputs)
    assert all(torch.isfinite(o).all() for o in outputs)
    sum(o.square().mean() for o in outputs).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad[:5]}"
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "head.fc" in n)


@pytest.mark.parametrize("name", MODELS)
def test_head_contract(name):
    model = build_filled(name, num_classes=5, small_input=name != "lenet5").eval()
    c, h, w = model.default_input_size
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        features, logits = model.forward_features(x), model(x)
        assert features.dim() == 4 and features.shape[1] == model.num_features
        assert torch.equal(logits, model.forward_head(features))
        pre = model.forward_head(features, pre_logits=True)
        assert pre.shape == (2, model.head_hidden_size)
        assert torch.equal(model.get_classifier()(pre), logits)
    assert model.get_classifier().out_features == model.num_classes == 5
    model.reset_classifier(3)
    assert model.num_classes == 3 and model.get_classifier().out_features == 3
    with torch.no_grad():
        assert model(x).shape == (2, 3)
    model.reset_classifier(0)  # a pure feature extractor
    with torch.no_grad():
        assert model(x).shape == (2, model.head_hidden_size)


def _stage_outputs(model, size):
    modules = dict(model.named_modules())
    seen, handles = {}, []
    for info in model.feature_info:
        hook = lambda m, i, o, key=info.module: seen.setdefault(key, o)  # noqa: E731
        handles.append(modules[info.module].register_forward_hook(hook))
    model(torch.zeros(1, model.in_chans, size, size, device="meta"))
    for h in handles:
        h.remove()
    return seen


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("small", [False, True])
def test_feature_info_names_real_stages_with_their_channels_and_reduction(name, small, meta_shapes):
    model = build_meta(name, small_input=small).eval()
    assert model.feature_info[-1].num_chs == model.num_features
    if model.fixed_input_size:
        seen = _stage_outputs(model, model.min_input_size[-1])
        assert [seen[i.module].shape[1] for i in model.feature_info] == [i.num_chs for i in model.feature_info]
        return
    # the reduction is the cumulative stride: growing the input by 512 px grows a stage by 512 / reduction
    small_out, big_out = _stage_outputs(model, 320), _stage_outputs(model, 832)
    for info in model.feature_info:
        out = small_out[info.module]
        assert out.shape[1] == info.num_chs == info["num_chs"], info
        assert 512 // (big_out[info.module].shape[-1] - out.shape[-1]) == info.reduction, info
    reductions = [i.reduction for i in model.feature_info]
    assert reductions == sorted(reductions)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("small", [False, True])
def test_declared_minimum_input_size_is_real(name, small, meta_shapes):
    model = build_meta(name, small_input=small).eval()
    c, h, w = model.min_input_size
    assert model(torch.zeros(1, c, h, w, device="meta")).shape[-1] == model.num_classes
    with pytest.raises(InputSizeError, match=rf"{h}x{w}"):
        model(torch.zeros(1, c, h - 1, w - 1, device="meta"))
    with pytest.raises(InputSizeError, match="input channel"):
        model(torch.zeros(1, c + 1, h, w, device="meta"))
    # the minimum is tight: below it, the backbone itself breaks, or the last feature map would be
    # smaller than one unit per reduction step
    if model.fixed_input_size:
        return
    reduction = model.feature_info[-1].reduction
    assert h >= reduction or model.forward_features(torch.zeros(1, c, h, w, device="meta")).shape[-1] >= 1
    if h > reduction:
        with pytest.raises(RuntimeError):
            model.forward_features(torch.zeros(1, c, h - 1, w - 1, device="meta"))
    else:
        assert h == reduction


@pytest.mark.parametrize("name", SMALL)
def test_small_input_runs_at_16_and_28_pixels(name, meta_shapes):
    """(and 32: the head-contract, export and explain tests run every small-input form at 32x32); inception_v4
    needs 17."""
    model = build_meta(name, in_chans=1, num_classes=10, small_input=True).eval()
    for size in (max(16, model.min_input_size[-1]), 28):
        assert model(torch.zeros(2, 1, size, size, device="meta")).shape == (2, 10), (name, size)


def test_a_batch_with_its_channels_last_or_of_bytes_is_told_how_to_make_it_fit():
    model = cnnlab.create_model("resnet18", small_input=True)
    with pytest.raises(InputSizeError, match=r"channels first; this one \(2x32x32x3\) has its 3 channels last: "
                                             r"x.permute\(0, 3, 1, 2\) puts them first"):
        model(torch.zeros(2, 32, 32, 3))
    with pytest.raises(InputSizeError, match="built for 3 input channel.s. but got 1"):  # not channels last
        model(torch.zeros(2, 1, 32, 32))
    with pytest.raises(InputSizeError, match=r"takes a floating-point batch, got uint8 values \(for 8-bit pixels: "
                                             r"x.float\(\) / 255"):
        model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_lenet5s_small_input_form_takes_exactly_28x28():
    lenet = build("lenet5", small_input=True).eval()
    assert lenet(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(InputSizeError, match="exactly 28x28"):
        lenet(torch.zeros(1, 1, 32, 32))


@pytest.fixture(scope="module")
def digits():
    """Four digits of the training split (8x8) with their labels."""
    from cnnlab.data import load_dataset

    train = load_dataset("digits").train
    return train.images[:4], train.labels[:4]


@pytest.mark.parametrize("name", MODELS)
def test_the_small_input_form_trains_on_16x16_digits(name, digits):
    """Every parameter gets a finite gradient, and the loss of four digits, enlarged to 16x16 (or the form's
    minimum: 17 for inception_v4, LeNet-5's exactly 28) and standardised (every output's cross-entropy:
    auxiliary classifiers too), has a gradient that goes downhill: a step against it lowers the loss, for the
    first of the lengths 1e-2 ... 1e-6 that does. Deep networks at initialisation, with batch statistics over
    four images, are sharply curved (the plain 56-layer network's loss rises along its gradient beyond a length
    of about 1e-4). The same seed before each pass gives the same dropout and drop-path draws. (At the
    smallest size, not at 32: the head-contract, export and explain tests run every small-input form at its
    default 32x32, and here the deepest networks took seconds per pass.)"""
    model = build(name, num_classes=10, in_chans=1, small_input=True).train()
    size = max(16, model.min_input_size[-1])
    x = torch.nn.functional.interpolate(digits[0], size=size, mode="bilinear")
    x, y = (x - x.mean()) / x.std(), digits[1]

    def loss():
        torch.manual_seed(1)
        out = model(x)
        outputs = [o for o in out if o is not None] if isinstance(out, InceptionOutputs) else [out]
        return sum(torch.nn.functional.cross_entropy(o, y) for o in outputs)

    before = loss()
    before.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad[:5]}"
    params = list(model.parameters())
    norm = torch.sqrt(sum(p.grad.square().sum() for p in params))
    assert torch.isfinite(before) and norm > 0
    start = [p.detach().clone() for p in params]
    losses = []
    with torch.no_grad():
        for length in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
            for p, p0 in zip(params, start, strict=True):
                p.copy_(p0 - length * p.grad / norm)
            losses.append(loss().item())
            if losses[-1] < before.item():
                break
    assert losses[-1] < before.item(), (before.item(), losses)


def test_lenet5_takes_exactly_32x32_and_says_how_to_use_28x28():
    model = build("lenet5")
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 10)
    with pytest.raises(InputSizeError, match="exactly 32x32.*small_input=True"):
        model(torch.zeros(1, 1, 28, 28))


# parameter counts at the ImageNet configuration, equal to torchvision's, without any forward pass

@pytest.mark.parametrize("name", TORCHVISION)
def test_parameter_count_equals_torchvision(name):
    tv_name = cnnlab.model_meta(name).torchvision
    kwargs = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    with torch.device("meta"):
        ours = cnnlab.create_model(name, **{k: v for k, v in kwargs.items() if k != "init_weights"})
        theirs = getattr(torchvision.models, tv_name)(**kwargs)
    n_ours = sum(p.numel() for p in ours.parameters())
    assert n_ours == sum(p.numel() for p in theirs.parameters())


def test_headline_parameter_counts():
    expected = {"resnet18": 11_689_512, "vgg16": 138_357_544, "alexnet": 61_100_840, "densenet121": 7_978_856,
                "mobilenet_v2": 3_504_872, "resnet50": 25_557_032}
    for name, n in expected.items():
        assert sum(p.numel() for p in build_meta(name).parameters()) == n, name
    googlenet = build_meta("googlenet", aux_logits=False)
    assert sum(p.numel() for p in googlenet.parameters()) == 6_624_904
    # the paper's MobileNet 1.0 has 4.2 million parameters (Table 8, "1.0 MobileNet-224: 4.2")
    n = sum(p.numel() for p in build_meta("mobilenet_v1").parameters())
    assert round(n / 1e6, 1) == 4.2
    # the CIFAR ResNets of He et al. 2016, Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M; plain nets have the same
    for depth, millions in ((20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)):
        n = sum(p.numel() for p in build_meta(f"resnet{depth}").parameters())
        assert round(n / 1e6, 2 if depth < 110 else 1) == millions, depth
        if depth < 110:
            assert sum(p.numel() for p in build_meta(f"plain{depth}").parameters()) == n
    # LeNet-5 with a fully connected C3: 156 + 2,416 + 48,120 + 10,164 + 850
    assert sum(p.numel() for p in build("lenet5").parameters()) == 61_706


def test_mobilenet_v1_width_multiplier_thins_every_layer():
    full = sum(p.numel() for p in build_meta("mobilenet_v1").parameters())
    half = sum(p.numel() for p in build_meta("mobilenet_v1", width_mult=0.5).parameters())
    # paper Table 6: 0.5 MobileNet-224 has 1.3M parameters
    assert round(half / 1e6, 1) == 1.3 and half < full


# GoogLeNet's auxiliary classifiers exist only in training

@pytest.mark.parametrize("name", ["googlenet", "googlenet_paper"])
def test_googlenet_auxiliary_heads_only_in_training(name):
    model = build(name, num_classes=4, small_input=True)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    out = model(x)
    assert isinstance(out, InceptionOutputs)
    assert out.logits.shape == out.aux1.shape == out.aux2.shape == (2, 4)
    model.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4)
    no_aux = build(name, num_classes=4, small_input=True, aux_logits=False).train()
    assert isinstance(no_aux(x), torch.Tensor)
    model.reset_classifier(6)
    model.train()
    assert all(o.shape == (2, 6) for o in model(x))


def test_googlenet_paper_differs_from_torchvision_form_as_documented():
    tv_form, paper = build_meta("googlenet"), build_meta("googlenet_paper")
    bn = lambda m: sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    lrn = lambda m: sum(isinstance(x, torch.nn.LocalResponseNorm) for x in m.modules())  # noqa: E731
    assert bn(tv_form) > 0 and bn(paper) == 0
    assert lrn(tv_form) == 0 and lrn(paper) == 2
    assert tv_form.inception3a.branch3[1].conv.kernel_size == (3, 3)
    assert paper.inception3a.branch3[1].conv.kernel_size == (5, 5)


@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn", "densenet121", "mobilenet_v2"])
def test_layer_types_are_injectable(name):
    model = build_meta(name, act_layer=torch.nn.Tanh)
    assert any(isinstance(m, torch.nn.Tanh) for m in model.modules())
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6)) for m in model.modules())


def test_without_batch_norm_the_resnet_uses_the_given_norm():
    model = build_meta("resnet18", norm_layer=lambda c: torch.nn.GroupNorm(8, c))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_reset_classifier_keeps_the_device_and_dtype():
    model = build("resnet18", small_input=True).to(torch.float64)
    model.reset_classifier(3)
    assert model.get_classifier().weight.dtype == torch.float64
