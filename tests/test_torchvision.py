"""Equivalence with torchvision: its state dicts load into cnnlab models and give the same outputs."""

import math

import pytest
import torch
import torchvision
from safetensors.torch import save_file

import cnnlab
from cnnlab.errors import CnnlabError, WeightsError

TORCHVISION = [n for n in cnnlab.list_models() if cnnlab.model_meta(n).torchvision]


def _torchvision_model(name, **kwargs):
    """torchvision's model with random weights: built on the meta device and then filled, since drawing both
    networks' own init was most of this test's time (VGG's 138M weights) and the init is not what it tests.
    Weights are uniform with Kaiming's variance (2 / fan-in), so that activations keep their scale through
    VGG's 19 layers without batch norm; biases and batch norm are random too, so a mis-paired tensor shows."""
    if name in ("googlenet", "inception_v3"):
        kwargs = {"aux_logits": True, "init_weights": False, **kwargs}
    with torch.device("meta"):
        model = getattr(torchvision.models, cnnlab.model_meta(name).torchvision)(**kwargs)
    model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in model.state_dict().values():
            if not t.is_floating_point():
                t.zero_()  # num_batches_tracked
            elif t.dim() > 1:
                bound = math.sqrt(6 / t[0].numel())
                t.uniform_(-bound, bound, generator=g)
            else:
                t.uniform_(-0.1, 0.1, generator=g)
    _randomise_bn_statistics(model)
    return model


def _randomise_bn_statistics(model):
    """Non-trivial running statistics, so that a mis-paired BN buffer cannot go unnoticed."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_state_dict_loads_and_outputs_match(name):
    theirs = _torchvision_model(name, num_classes=10).eval()
    with torch.device("meta"):  # without drawing an init: every value is loaded
        ours = cnnlab.create_model(name, num_classes=10)
    ours = ours.to_empty(device="cpu").eval()
    result = cnnlab.load_torchvision_weights(ours, theirs.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    size = max(64, ours.min_input_size[-1])
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)
    if name == "googlenet":  # the auxiliary heads load too
        with torch.no_grad():
            a = ours.inception4a(ours.pool3(ours.inception3b(ours.inception3a(ours.stem(x)))))
            b = theirs.inception4a(theirs.maxpool3(theirs.inception3b(theirs.inception3a(
                theirs.maxpool2(theirs.conv3(theirs.conv2(theirs.maxpool1(theirs.conv1(x)))))))))
            torch.testing.assert_close(ours.aux1(a), theirs.aux1(b), rtol=1e-4, atol=1e-5)


def test_loads_from_pth_and_safetensors_files(tmp_path):
    theirs = torchvision.models.resnet18(num_classes=10).eval()
    _randomise_bn_statistics(theirs)
    torch.save(theirs.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    save_file(theirs.state_dict(), tmp_path / "resnet18.safetensors")
    x = torch.randn(1, 3, 64, 64)
    for file in ("resnet18-f37072fd.pth", "resnet18.safetensors"):
        ours = cnnlab.create_model("resnet18", num_classes=10).eval()
        cnnlab.load_torchvision_weights(ours, tmp_path / file)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x))
    # the same through create_model(weights=...) and init="file:..."
    with torch.no_grad():
        a = cnnlab.create_model("resnet18", num_classes=10, weights=str(tmp_path / "resnet18.safetensors")).eval()
        b = cnnlab.create_model("resnet18", num_classes=10, init=f"file:{tmp_path / 'resnet18-f37072fd.pth'}")
        torch.testing.assert_close(a(x), theirs(x))
        torch.testing.assert_close(b.eval()(x), theirs(x))


def test_googlenet_without_auxiliary_weights_loads_into_a_model_with_them():
    theirs = torchvision.models.googlenet(aux_logits=False, init_weights=True).eval()
    ours = cnnlab.create_model("googlenet").eval()
    result = cnnlab.load_torchvision_weights(ours, theirs.state_dict())
    assert result.missing_keys and all(k.startswith(("aux1.", "aux2.")) for k in result.missing_keys)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_another_architecture_is_refused_and_named():
    ours = cnnlab.create_model("resnet18")
    with pytest.raises(WeightsError, match="another architecture.*looks like resnet34"):
        cnnlab.load_torchvision_weights(ours, torchvision.models.resnet34().state_dict())


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0", "resnet18"])
def test_a_small_input_model_refuses_torchvision_weights_even_where_their_shapes_fit(name, tmp_path):
    """A small-input MobileNet or EfficientNet keeps every tensor's shape (only strides change), so torchvision's
    weights loaded into it silently; a small-input ResNet was refused only for its stem's shape."""
    torch.save(getattr(torchvision.models, name)().state_dict(), tmp_path / "tv.pth")
    with pytest.raises(WeightsError, match=f"torchvision's weights are for {name}'s ImageNet form, not the "
                                           f"small_input=True one built here"):
        cnnlab.create_model(name, small_input=True, weights=str(tmp_path / "tv.pth"))
    cnnlab.create_model(name, weights=str(tmp_path / "tv.pth"))  # the ImageNet form takes them
    own = cnnlab.create_model(name, small_input=True)
    torch.save(own.state_dict(), tmp_path / "own.pth")  # a small-input model's own weights still load
    cnnlab.create_model(name, small_input=True, weights=str(tmp_path / "own.pth"))


def test_the_model_comes_first_and_a_name_in_its_place_is_refused(tmp_path):
    with pytest.raises(CnnlabError, match="loads into a model .*, not 'resnet18'"):
        cnnlab.load_torchvision_weights("resnet18", tmp_path / "resnet18.pth")


def test_head_size_mismatch_is_an_error_unless_skipped():
    state = torchvision.models.resnet18().state_dict()  # 1000 classes
    ours = cnnlab.create_model("resnet18", num_classes=10)
    with pytest.raises(WeightsError, match="'fc.weight' has shape \\(1000, 512\\).*skip_head=True"):
        cnnlab.load_torchvision_weights(ours, state)
    head_before = ours.get_classifier().weight.clone()
    result = cnnlab.load_torchvision_weights(ours, state, skip_head=True)
    assert result.missing_keys == ["head.fc.bias", "head.fc.weight"]
    assert result.unexpected_keys == ["fc.weight", "fc.bias"]
    assert torch.equal(ours.get_classifier().weight, head_before)
    assert torch.equal(ours.stem.conv.conv.weight, state["conv1.weight"])


def test_files_are_never_unpickled_unrestricted(tmp_path):
    class Payload:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    torch.save({"conv1.weight": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="cannot read weights"):
        cnnlab.load_torchvision_weights(cnnlab.create_model("resnet18"), tmp_path / "evil.pth")


def test_missing_empty_and_corrupt_files_are_clear_errors(tmp_path):
    model = cnnlab.create_model("lenet5")
    with pytest.raises(CnnlabError, match="does not exist"):
        cnnlab.load_torchvision_weights(model, tmp_path / "nope.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="is empty"):
        cnnlab.load_torchvision_weights(model, tmp_path / "empty.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(WeightsError, match="cannot read weights"):
        cnnlab.load_torchvision_weights(model, tmp_path / "junk.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="does not hold a state dict"):
        cnnlab.load_torchvision_weights(model, tmp_path / "list.pt")


def test_home_paths_skip_head_through_create_model_and_cnnlab_state_dicts(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    theirs = torchvision.models.resnet18()
    torch.save(theirs.state_dict(), tmp_path / "r18.pth")
    model = cnnlab.create_model("resnet18", num_classes=10, weights="~/r18.pth", skip_head=True)
    assert torch.equal(model.stem.conv.conv.weight, theirs.conv1.weight)
    # a state dict with cnnlab's own keys loads through the same function
    other = cnnlab.create_model("resnet18", num_classes=10)
    assert cnnlab.load_torchvision_weights(other, model.state_dict()) == ([], [])
    assert torch.equal(other.stem.conv.conv.weight, theirs.conv1.weight)


def test_a_cnnlab_state_dict_of_another_classifier_size_or_form_says_which_tensor_and_loads_with_skip_head(tmp_path):
    """cnnlab's own keys with one shape that differs went down torchvision's key pairing and were refused as
    "not torchvision resnet18's keys ... (it looks like resnet18)", with skip_head=True too."""
    source = cnnlab.create_model("resnet18", num_classes=10)
    torch.save(source.state_dict(), tmp_path / "r18.pt")
    wider = cnnlab.create_model("resnet18", num_classes=100)
    with pytest.raises(WeightsError, match=r"'head\.fc\.weight' has shape \(10, 512\) but resnet18 here needs "
                                           r"\(100, 512\) \(pass skip_head=True"):
        cnnlab.load_torchvision_weights(wider, source.state_dict())
    head_before = wider.get_classifier().weight.clone()
    result = cnnlab.load_weights_file(wider, tmp_path / "r18.pt", skip_head=True)
    assert result == (["head.fc.bias", "head.fc.weight"], ["head.fc.bias", "head.fc.weight"])
    assert torch.equal(wider.get_classifier().weight, head_before)
    assert torch.equal(wider.layer4[1].conv2.conv.weight, source.layer4[1].conv2.conv.weight)
    small = cnnlab.create_model("resnet18", num_classes=10, small_input=True)
    with pytest.raises(WeightsError, match=r"'stem\.conv\.conv\.weight' has shape \(64, 3, 7, 7\) but resnet18 here "
                                           r"needs \(64, 3, 3, 3\) \(its small_input=True form\)$"):
        cnnlab.create_model("resnet18", num_classes=10, small_input=True, weights=tmp_path / "r18.pt")
    with pytest.raises(WeightsError, match=r"'stem\.conv\.conv\.weight' .*needs \(64, 3, 7, 7\)$"):
        cnnlab.load_torchvision_weights(source, small.state_dict(), skip_head=True)
