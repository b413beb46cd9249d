"""cnnlab.explain: each view checked against an independent computation, on every model of the zoo, and
hook-safe (in-place activations, hooks removed, models left as they were)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.explain import (
    METHODS,
    cams_by_method,
    capture,
    class_activation_maps,
    feature_maps,
    filter_images,
    filters,
    guided,
    guided_backprop,
    maximize,
    normalise_maps,
    parse_channels,
    stage_layers,
    unit_activations,
)
from cnnlab.explain.checks import centre_hits, delete, deletion_drop, pointing_hits
from cnnlab.nn.act import ACT_LAYERS, ScaledTanh
from cnnlab.nn.mobile import SqueezeExcite

from .conftest import build_filled


def _placed(cam: torch.Tensor, centres, side: int) -> torch.Tensor:
    """relu(cam) (N x h x w) spread over side x side pixels with NumPy: unit i's value at pixel centres[i], linear
    in between, constant beyond the first and last centre; then each map scaled to [0, 1]."""
    cam = F.relu(cam).detach().numpy()
    pixels = np.arange(side)
    out = [np.stack([np.interp(pixels, centres, row) for row in
                     np.stack([np.interp(pixels, centres, col) for col in c.T], 1)]) for c in cam]
    return normalise_maps(torch.from_numpy(np.stack(out)).float())


# ResNet-18 (small input) at 32x32: layer4's units are 8 pixels apart, the first on pixel 0 (each stride-2
# 3x3 convolution with one pixel of padding puts its unit 0 on its input's unit 0)
RESNET_LAYER4 = [0, 8, 16, 24]


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet18", num_classes=5, small_input=True).eval()
    for m in model.modules():  # random batch-norm statistics, so that no layer is an identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return model


def test_gradcam_on_a_pooled_linear_head_is_the_original_cam(resnet):
    """Global average pooling then a linear layer: d logit_c / d A_k(i,j) = w_ck / HW, so Grad-CAM is Zhou et al.'s
    CAM, relu(sum_k w_ck A_k), computed here from forward_features and the fc weights, no gradients at all."""
    x = torch.rand(3, 3, 32, 32)
    targets = torch.tensor([0, 3, 4])
    with torch.no_grad():
        a = resnet.forward_features(x)
    w = resnet.get_classifier().weight
    expected = _placed(torch.einsum("nk,nkhw->nhw", w[targets], a), RESNET_LAYER4, 32)
    got = class_activation_maps(resnet, x, targets, "gradcam", layer="layer4")
    assert torch.allclose(got.maps, expected, atol=1e-5)
    assert torch.allclose(got.scores, resnet(x)[torch.arange(3), targets], atol=1e-5)


def test_gradcam_pp_and_layercam_follow_their_closed_forms_on_a_pooled_linear_head(resnet):
    """With g_k = w_ck / HW constant over positions: Grad-CAM++ weighs channel k by HW relu(g_k) / (2 + g_k sum(A_k))
    (its alpha = g^2 / (2 g^2 + sum(A) g^3)); LayerCAM is relu(sum_k relu(g_k) A_k)."""
    x = torch.rand(2, 3, 32, 32)
    targets = torch.tensor([1, 2])
    with torch.no_grad():
        a = resnet.forward_features(x)
    hw = a.shape[2] * a.shape[3]
    g = resnet.get_classifier().weight[targets] / hw                     # N x K
    s = a.sum(dim=(2, 3))
    pp = hw * F.relu(g) / (2 + g * s)
    pp = torch.where(g != 0, pp, torch.zeros_like(pp))
    assert torch.allclose(class_activation_maps(resnet, x, targets, "gradcam++", "layer4").maps,
                          _placed(torch.einsum("nk,nkhw->nhw", pp, a), RESNET_LAYER4, 32), atol=1e-5)
    assert torch.allclose(class_activation_maps(resnet, x, targets, "layercam", "layer4").maps,
                          _placed(torch.einsum("nk,nkhw->nhw", F.relu(g), a), RESNET_LAYER4, 32), atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_cams_at_an_inner_layer_equal_the_formulas_on_autograd_computed_by_hand(method):
    """LeNet-5's features split by hand at S4 (a tanh network: maps with negative values), the gradient of the
    logit taken with respect to that tensor with no hooks, each method's formula written out per position."""
    model = cnnlab.create_model("lenet5").eval()
    x = torch.rand(4, 1, 32, 32)
    a = model.features[:4](x).detach().requires_grad_(True)                    # the output of features.s4
    logits = model.forward_head(model.features[4](a))
    targets = logits.argmax(1)
    (g,) = torch.autograd.grad(logits[torch.arange(4), targets].sum(), a)
    a = a.detach()
    if method == "gradcam":
        cam = (g.mean(dim=(2, 3), keepdim=True) * a).sum(1)
    elif method == "layercam":
        cam = (F.relu(g) * a).sum(1)
    else:  # alpha_kij = g^2 / (2 g^2 + sum_ab A_kab g^3), in [0, 1/2] where the maps are non-negative
        alpha = g**2 / (2 * g**2 + a.sum(dim=(2, 3), keepdim=True) * g**3)
        alpha = torch.nan_to_num(alpha).clamp(0, 0.5)
        cam = ((alpha * F.relu(g)).sum(dim=(2, 3), keepdim=True) * a).sum(1)
    # S4's units are 4 pixels apart, the first centred on pixel 7.5 (valid 5x5 convolutions, 2x2 pools), so its
    # 5 x 5 map covers pixels 7.5 to 23.5, not the whole image as a plain resize would make it
    expected = _placed(cam, 7.5 + 4 * np.arange(5), 32)
    got = class_activation_maps(model, x, method=method, layer="features.s4")
    assert torch.equal(got.targets, targets)                                   # the predicted class by default
    assert torch.allclose(got.maps, expected, atol=1e-5)


def _linearised(model: nn.Module) -> nn.Module:
    """A copy in which each unit's input gradient is non-zero exactly on its receptive field: activations and
    normalisations are identities, max-pools average-pools, every weight positive."""
    m = copy.deepcopy(model).double().eval()
    for parent in list(m.modules()):
        for key, child in list(parent.named_children()):
            # a squeeze-and-excitation gate scales whole maps: it moves no unit, and without it the gradient
            # of a unit stays on its own window (with it, on the whole image)
            if isinstance(child, (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.BatchNorm2d, nn.Dropout, ScaledTanh,
                                  SqueezeExcite)):
                setattr(parent, key, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                setattr(parent, key, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                  ceil_mode=child.ceil_mode))
    for p in m.parameters():
        p.data.fill_(1.0)
    return m


@pytest.mark.parametrize("name, small, side, layer", [
    ("resnet18", True, 128, None), ("googlenet", True, 128, None), ("alexnet", False, 227, None),
    ("vgg11", True, 160, None), ("mobilenet_v2", True, 160, None), ("mobilenet_v1", True, 128, None),
    ("densenet121", True, 96, "stages.1"), ("lenet5", False, 32, None), ("mobilenet_v3_small", True, 224, None),
    ("efficientnet_b0", True, 224, None)])
def test_cam_units_are_placed_where_their_receptive_fields_are_centred(name, small, side, layer):
    """Each unit of the default CAM layer at the centre of its receptive field, measured independently: the
    span of the input gradient of one unit in a linearised copy of the network (inputs large enough for the
    field of the middle unit to lie inside the image)."""
    from cnnlab.explain.cam import _default_layer
    from cnnlab.inspect.summary import unit_fields

    model = cnnlab.create_model(name, num_classes=3, **({"small_input": True} if small else {})).eval()
    x = torch.rand(1, model.in_chans, side, side)
    layer = layer or _default_layer(model, x)
    _, _, jump, _, start, _ = unit_fields(model, x, [layer])[layer]
    lin = _linearised(model)
    inp = torch.zeros(1, model.in_chans, side, side, dtype=torch.float64, requires_grad=True)
    with capture(lin, [layer]) as out:
        lin(inp)
    h = out[layer].shape[-1]
    i = h // 2                                                                 # an inner unit: its field unclipped
    (g,) = torch.autograd.grad(out[layer][0, :, i, i].sum(), inp)
    rows = torch.nonzero(g[0].abs().sum(0).sum(1)).flatten()
    assert rows[0] > 0 and rows[-1] < side - 1, "the field reaches the border: use a larger input"
    assert start + jump * i == pytest.approx((rows[0] + rows[-1]).item() / 2, abs=0.51)


def _small_net(inplace: bool) -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(8, 8, 3, padding=1),
                         nn.ReLU(inplace=inplace), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


@pytest.mark.parametrize("method", METHODS)
def test_an_in_place_relu_after_the_layer_changes_no_map_and_every_hook_is_removed(method):
    x = torch.rand(2, 3, 12, 12)
    plain, inplace = _small_net(False), _small_net(True)
    a = class_activation_maps(plain, x, [0, 2], method, layer="0")
    b = class_activation_maps(inplace, x, [0, 2], method, layer="0")
    assert torch.allclose(a.maps, b.maps, atol=1e-6) and a.maps.abs().sum() > 0
    assert _no_hooks(inplace)
    out_before = inplace(x)
    with pytest.raises(CnnlabError, match="no layer named 'nope'"):
        class_activation_maps(inplace, x, layer="nope")
    assert _no_hooks(inplace) and torch.equal(inplace(x), out_before)


def test_every_method_from_one_pass_gives_each_methods_own_maps(resnet):
    x = torch.rand(3, 3, 32, 32)
    together = cams_by_method(resnet, x, [1, 4, 0], ("layercam", "gradcam"), batch_size=2)
    assert list(together) == ["layercam", "gradcam"]
    for method, cam in together.items():
        alone = class_activation_maps(resnet, x, [1, 4, 0], method)
        assert cam.method == method and cam.layer == alone.layer and torch.equal(cam.targets, alone.targets)
        assert torch.allclose(cam.maps, alone.maps, atol=1e-5) and torch.allclose(cam.scores, alone.scores)
    assert not torch.allclose(together["layercam"].maps, together["gradcam"].maps, atol=1e-3)
    for bad, said in ((("gradcam", "scorecam"), "unknown CAM method 'scorecam'"), ((), "no CAM method given"),
                      (None, "no CAM method given")):
        with pytest.raises(CnnlabError, match=said):
            cams_by_method(resnet, x, methods=bad)
    with pytest.raises(CnnlabError, match=r"take a batch N x C x H x W, got a tensor of shape \(3, 32, 32\)"):
        cams_by_method(resnet, x[0])  # the image itself, not the first row of it


def test_the_captured_output_is_the_layers_own_even_when_an_in_place_op_follows():
    net = _small_net(True)
    x = torch.rand(1, 3, 12, 12)
    with capture(net, ["0"]) as out:
        net(x)
    assert torch.allclose(out["0"], net[0](x)) and (out["0"] < 0).any()   # not rectified by the ReLU after it


def test_one_target_per_image_gives_each_image_its_own_map(resnet):
    x = torch.rand(2, 3, 32, 32)
    both = class_activation_maps(resnet, x, [1, 4])
    assert torch.allclose(both.maps[0], class_activation_maps(resnet, x[:1], 1).maps[0], atol=1e-5)
    assert torch.allclose(both.maps[1], class_activation_maps(resnet, x[1:], 4).maps[0], atol=1e-5)
    with pytest.raises(CnnlabError, match="3 target classes for 2 images"):
        class_activation_maps(resnet, x, [1, 2, 3])
    same = class_activation_maps(resnet, x, torch.tensor([1.0, 4.0]))  # whole numbers as floats are classes
    assert torch.equal(same.targets, both.targets) and torch.equal(same.maps, both.maps)
    for bad, shown in (([0.5, 1], r"\[0.5, 1.0\]"), ([[1], [4]], r"\[\[1\], \[4\]\]"),
                       ([True, False], r"\[True, False\]"),
                       (torch.zeros(3, 4), r"a torch.float32 tensor of shape \(3, 4\)")):
        with pytest.raises(CnnlabError, match=rf"class indices, one for all images or one per image; got {shown}"):
            class_activation_maps(resnet, x, bad)  # not truncated or flattened into classes


def test_guided_backprop_is_the_gradient_with_negative_gradients_stopped_at_each_relu():
    """y = v . relu(W x): the guided gradient is W^T [(W x > 0) * relu(v)], computed by hand."""
    torch.manual_seed(2)
    lin1, lin2 = nn.Linear(6, 5, bias=False), nn.Linear(5, 1, bias=False)
    net = nn.Sequential(nn.Flatten(), lin1, nn.ReLU(inplace=True), lin2)
    x = torch.rand(3, 1, 2, 3)
    h = x.flatten(1) @ lin1.weight.T
    expected = ((h > 0).float() * F.relu(lin2.weight[0])) @ lin1.weight
    got = guided_backprop(net, x, torch.ones(3, dtype=torch.long))          # a single logit: class 1 is +logit
    assert torch.allclose(got.flatten(1), expected, atol=1e-6)
    assert isinstance(net[2], nn.ReLU) and _no_hooks(net)                     # the ReLU is back


@pytest.mark.parametrize("act", sorted(ACT_LAYERS))
def test_guided_backprop_guides_every_activation_a_model_can_be_built_with(act):
    """A network of SELU or Softplus units (act_layer=selu) was refused: 'has no activation modules'."""
    net = nn.Sequential(nn.Conv2d(1, 3, 3), ACT_LAYERS[act](), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    with guided(net) as n:
        assert n == 1
    assert guided_backprop(net, torch.rand(2, 1, 6, 6)).shape == (2, 1, 6, 6)
    assert type(net[1]) is ACT_LAYERS[act] and _no_hooks(net)


def test_guided_restores_the_activations_after_an_error():
    net = _small_net(True)
    with pytest.raises(RuntimeError), guided(net) as n:
        assert n == 2
        raise RuntimeError("boom")
    assert [type(m) for m in net] == [type(m) for m in _small_net(True)]


def test_an_empty_layer_name_a_class_name_and_an_empty_batch_are_one_line_and_a_layer_name_alone_is_a_layer(resnet):
    """``layer=""`` meant the default layer (or, for maximize, the class scores); a class name and an empty batch
    were torch's errors; feature_maps(model, x, "layer1") looked for layers 'l', 'a', 'y', ..."""
    x = torch.rand(2, 3, 16, 16)
    for call in (lambda: class_activation_maps(resnet, x, layer=""), lambda: feature_maps(resnet, x, [""]),
                 lambda: maximize(resnet, (3, 16, 16), layer="", channels=[0], steps=1)):
        with pytest.raises(CnnlabError, match=r"a layer is named by a module's name, such as \w+; got ''"):
            call()
    with pytest.raises(CnnlabError, match=r"class indices, .*got 'cat' \(a class name: its index is its place"):
        class_activation_maps(resnet, x, targets="cat")
    with pytest.raises(CnnlabError, match="at least one image; got an empty batch"):
        class_activation_maps(resnet, x[:0])
    assert list(feature_maps(resnet, x, "layer1")) == ["layer1"]


def test_filters_of_a_dense_first_layer_are_images_of_the_input():
    w = torch.randn(4, 2 * 3 * 5)
    tiles, _ = filter_images(w, (2, 3, 5))
    assert tiles.shape == (8, 1, 3, 5) and tiles.min() >= 0 and tiles.max() <= 1
    assert torch.isclose(tiles.flatten()[w.abs().flatten().argmax()], torch.tensor(0.0 if w.flatten()[
        w.abs().flatten().argmax()] < 0 else 1.0))                            # the largest weight is black or white
    with pytest.raises(CnnlabError, match="not an image"):
        filter_images(w, (1, 3, 5))


def test_channels_parse_as_ranges_and_lists():
    assert parse_channels("0-3") == [0, 1, 2, 3] and parse_channels("5, 1,7-8") == [5, 1, 7, 8]
    for bad in ("3-1", "a", "1,1", "-2", "1-", ""):
        with pytest.raises(CnnlabError):
            parse_channels(bad)
    assert parse_channels("0-15", count=16) == list(range(16))
    with pytest.raises(CnnlabError, match=r"the layer has 16 channels \(0-15\); channels 3,0-1000000000 names"):
        parse_channels("3,0-1000000000", count=16)  # refused before the range is expanded


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_every_view_works_on_every_model_of_the_zoo(name):
    small = {} if name == "lenet5" else {"small_input": True}
    model = build_filled(name, num_classes=3, **small).train()
    _, h, w = model.min_input_size
    h, w = max(h, 16), max(w, 16)
    if name == "lenet5":
        h, w = model.default_input_size[1:]
    state = copy.deepcopy(model.state_dict())
    x = torch.rand(2, model.in_chans, h, w)
    k = filters(model)
    assert k.dim() == 4 and k.shape[1] == model.in_chans
    maps = feature_maps(model, x)
    assert [m.shape[1] for m in maps.values()] == [f["num_chs"] for f in model.feature_info]
    cams = cams_by_method(model, x, [0, 2])  # every method, from one forward and backward pass
    assert list(cams) == list(METHODS)
    for cam in cams.values():
        assert cam.maps.shape == (2, h, w) and torch.isfinite(cam.maps).all()
        assert cam.maps.min() >= 0 and cam.maps.max() <= 1
    g = guided_backprop(model, x, 1)
    assert g.shape == x.shape and torch.isfinite(g).all()
    first = stage_layers(model)[0]
    m = maximize(model, (model.in_chans, h, w), layer=first, channels=[0, 1], steps=2)
    assert m.images.shape == (2, model.in_chans, h, w) and m.images.min() >= 0 and m.images.max() <= 1
    assert _no_hooks(model) and model.training and all(mod.training for mod in model.modules())
    assert all(torch.equal(v, state[n]) for n, v in model.state_dict().items())  # nothing trained or changed
    assert all(p.requires_grad for p in model.parameters())


def test_maximize_can_stop_at_the_layer():
    net = _small_net(False)
    called = []
    net[6].register_forward_hook(lambda *a: called.append(1))
    maximize(net, (3, 12, 12), layer="1", channels=[0], steps=3)
    assert not called                                                    # the layers after it never ran
    with pytest.raises(CnnlabError, match="has 8 channels"):
        maximize(net, (3, 12, 12), layer="1", channels=[9], steps=1)
    with pytest.raises(CnnlabError, match=r"has 8 channels \(0-7\); channel 999999 does not exist"):
        maximize(net, (3, 12, 12), layer="1", channels=list(range(10 ** 6)), steps=1)  # before 10^6 images exist


def test_the_pointing_game_and_the_deletion_check_count_what_they_say():
    maps = torch.zeros(2, 6, 6)
    maps[0, 1, 1] = 1.0                           # on the object of image 0
    maps[1, 5, 5] = 1.0                           # two pixels away from the object of image 1
    masks = torch.zeros(2, 6, 6, dtype=torch.long)
    masks[0, :3, :3] = 1
    masks[1, 2:4, 2:4] = 2
    assert pointing_hits(maps, masks).tolist() == [True, False]
    assert pointing_hits(maps, masks, tolerance=2).tolist() == [True, True]
    assert centre_hits(masks).tolist() == [False, True]
    x = torch.ones(1, 2, 2, 2)
    assert delete(x, torch.tensor([[3, 0, 1, 2]]), 0.5, fill=-1.0).tolist() == \
        [[[[-1.0, 1.0], [1.0, -1.0]]] * 2]
    # a "model" whose score is the sum of the pixels: deleting the brightest quarter costs the most
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 1, bias=False))
    nn.init.ones_(net[1].weight)
    img = torch.arange(16.0).view(1, 1, 4, 4)
    top, rand = deletion_drop(net, img, img[:, 0], torch.ones(1, dtype=torch.long), 0.25)
    assert top.item() == 12 + 13 + 14 + 15 and top.item() > rand.item()


def test_a_unit_that_never_fires_is_named_as_dead_rather_than_shown_as_if_maximised():
    """A ReLU output at 0 from the start has no gradient: its picture is only the smoothed random start, and the
    command printed "objective reached: 0" with nothing else."""
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU()).eval()
    with torch.no_grad():
        model[0].weight.fill_(0.1)
        model[0].bias.copy_(torch.tensor([-100.0, 1.0]))  # channel 0 is off for every image in [0, 1]
    result = maximize(model, (1, 8, 8), layer="1", channels=[0, 1], steps=5)
    assert result.dead == [0] and result.objective[0] == 0 and result.objective[1] > 0
    assert maximize(model, (1, 8, 8), layer="0", channels=[0, 1], steps=5).dead == []  # before the ReLU


def test_the_ascent_raises_the_activation_it_maximises():
    model = cnnlab.create_model("resnet18", num_classes=3, small_input=True).eval()
    kw = dict(layer="layer2.1.conv2", channels=[0, 5], lr=0.1, shift=0.0, scale=0.0, degrees=0.0,
              tv=0.0)  # before the ReLU: a unit that is off still has a gradient
    few, many = maximize(model, (3, 32, 32), steps=1, **kw), maximize(model, (3, 32, 32), steps=40, **kw)
    assert (many.objective > few.objective + 0.1).all(), (few.objective, many.objective)
    again = unit_activations(model, torch.stack([many.images[0]]), "layer2.1.conv2", [0])
    assert again[0, 0] == pytest.approx(float(many.objective[0]), rel=1e-4)   # measured the same way
    with pytest.raises(CnnlabError, match="numbered from 0"):
        maximize(model, (3, 32, 32), layer="layer2.1.conv2", channels=[-1], steps=1)
    with pytest.raises(CnnlabError, match="class 7 does not exist"):
        maximize(model, (3, 32, 32), classes=[7], steps=1)


def test_a_frozen_model_gets_its_maps_and_keeps_its_flags(resnet):
    frozen = copy.deepcopy(resnet)
    for p in frozen.parameters():
        p.requires_grad_(False)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(class_activation_maps(frozen, x, [1, 2]).maps, class_activation_maps(resnet, x, [1, 2]).maps)
    assert guided_backprop(frozen, x, 1).abs().sum() > 0
    assert not any(p.requires_grad for p in frozen.parameters()) and all(p.requires_grad for p in resnet.parameters())
    with pytest.raises(CnnlabError, match="target class 5 does not exist: the model has 5 classes"):
        class_activation_maps(resnet, x, 5)


def test_a_segmentation_score_is_the_mean_logit_over_the_pixels_given_the_class():
    from cnnlab.explain import class_score

    out = torch.zeros(1, 3, 2, 2)
    out[0, 1] = torch.tensor([[4.0, 1.0], [0.0, 0.0]])   # class 1 wins the top-left pixel only
    out[0, 2, 0, 1] = 2.0                                 # class 2 the top-right one
    assert class_score(out, torch.tensor([1])).item() == 4.0
    assert class_score(out, torch.tensor([2])).item() == 2.0
    out[0, 0] = 10.0                                      # background everywhere: class 1 over the whole image
    assert class_score(out, torch.tensor([1])).item() == pytest.approx(5 / 4)


def test_a_segmentation_cam_says_when_no_pixel_is_predicted_as_its_class():
    """The score then falls back to the class's mean logit over the whole image; the caption said nothing of it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 3, 1)).eval()
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([0.0, 50.0, -50.0]))  # class 1 wins every pixel, class 2 none
    x = torch.rand(2, 1, 8, 8)
    assert cams_by_method(model, x, 2, "gradcam", "0")["gradcam"].whole_image.tolist() == [True, True]
    assert cams_by_method(model, x, 1, "gradcam", "0")["gradcam"].whole_image.tolist() == [False, False]
    assert cams_by_method(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(144, 3)), x, 1, "gradcam",
                          "0")["gradcam"].whole_image is None  # a classifier's score is its logit


def test_a_picture_of_panels_titles_each_panel_over_it_and_leaves_the_panels_unchanged():
    from cnnlab.viz.images import tile, titled

    grid = tile(torch.zeros(3, 1, 20, 30), 3, pad=2)  # three black 30-pixel panels, white pads: 98 wide
    out = titled(grid, ["a", "a title far too long for thirty pixels", "c"], pad=2)
    assert (out[-grid.shape[0]:] == grid).all() and out.shape[0] > grid.shape[0]
    ink = (out[:-grid.shape[0]] < 128).any(axis=(0, 2))  # the strip's columns with dark pixels
    assert all(ink[2 + 32 * i:2 + 32 * i + 30].any() for i in range(3))  # each panel has its title
    assert not ink[[0, 1, 32, 33, 64, 65, 96, 97]].any()  # none over the gaps: the long title is cut to fit
