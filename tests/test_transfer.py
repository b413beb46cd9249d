"""Transfer learning: feature extraction, fine-tuning, partial freezing, incremental classes, and their checks."""

import json
import os

import pytest
import torch

import cnnlab
from cnnlab.classify import ClassifierConfig
from cnnlab.errors import CnnlabError
from cnnlab.run import Run, fit
from cnnlab.transfer import (
    TransferConfig,
    adapt_channels,
    expand_classifier,
    freeze_backbone,
    freeze_stages,
    param_groups,
    read_source,
    set_bn_frozen,
    stage_modules,
    transfer_weights,
)

QUIET = dict(quiet=True, device="cpu")  # on a machine with a GPU too: the tests compare with CPU tensors
RESNET = dict(model="resnet18", model_kwargs={"small_input": True})


def _fit(path, **kwargs):
    return fit(ClassifierConfig(run_dir=str(path), **{**QUIET, **kwargs}), log=lambda *a: None)


def _transfer(path, source, mode, data="digits@classes=5-9@labels=10", epochs=2, model=None, **kwargs):
    return fit(TransferConfig(source=str(source), mode=mode, data=data, epochs=epochs, model=model, run_dir=str(path),
                              **{**QUIET, **kwargs}), log=lambda *a: None)


def _weights(run_dir):
    return Run.open(run_dir).model


@pytest.fixture(scope="module")
def lenet_base(tmp_path_factory):
    """LeNet-5 trained on digits 0-4 (the built-in default source)."""
    return _fit(tmp_path_factory.mktemp("base") / "run", data="digits@classes=0-4", epochs=8).run_dir


@pytest.fixture(scope="module")
def resnet_base(tmp_path_factory):
    """A small-input ResNet-18 (batch norm everywhere) briefly trained on digits 0-4."""
    return _fit(tmp_path_factory.mktemp("rbase") / "run", data="digits@classes=0-4@labels=20", epochs=1,
                batch_size=50, **RESNET).run_dir


def _split(state, model):
    from cnnlab.transfer.freeze import is_head

    return {k: v for k, v in state.items() if not is_head(model, k)}


def test_feature_extraction_leaves_every_backbone_weight_and_bn_statistic_bit_identical(resnet_base, tmp_path):
    source = _weights(resnet_base)
    for cache in ("memory", "off"):  # cached features, and the backbone run every epoch in inference mode
        r = _transfer(tmp_path / cache, resnet_base, "feature-extraction", cache=cache, batch_size=16)
        after = r.model.state_dict()
        backbone = _split(source.state_dict(), source)
        assert any("running_mean" in k for k in backbone)
        for k, v in backbone.items():
            assert torch.equal(after[k].cpu(), v), (cache, k)
        assert not torch.equal(after["head.fc.weight"][:5], source.state_dict()["head.fc.weight"])
        results = json.loads((r.run_dir / "results.json").read_text())
        assert results["transfer"]["mode"] == "feature-extraction"
        assert ("feature_cache" in results["transfer"]) == (cache == "memory")


def test_cached_features_train_the_same_head_as_running_the_backbone(lenet_base, tmp_path):
    kw = dict(augment=False, epochs=3, deterministic=True)
    cached = _transfer(tmp_path / "cached", lenet_base, "feature-extraction", cache="memory", **kw)
    direct = _transfer(tmp_path / "direct", lenet_base, "feature-extraction", cache="off", **kw)
    a, b = cached.model.state_dict(), direct.model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert abs(cached.test["accuracy"] - direct.test["accuracy"]) < 0.02


def test_feature_cache_on_disk_is_used_and_removed(lenet_base, tmp_path):
    r = _transfer(tmp_path / "run", lenet_base, "feature-extraction", cache="disk")
    results = json.loads((r.run_dir / "results.json").read_text())
    assert results["transfer"]["feature_cache"]["where"] == "disk"
    assert not (r.run_dir / "feature_cache").exists()


@pytest.mark.skipif(os.name != "posix", reason="POSIX lets a process remove a file it keeps mapped")
def test_an_unlinked_disk_cache_leaves_no_file_even_before_it_is_closed(tmp_path):
    from cnnlab.data.loader import InMemoryLoader
    from cnnlab.transfer import FeatureCache

    model = cnnlab.create_model("lenet5", num_classes=3).eval()
    g = torch.Generator().manual_seed(0)
    loaders = {s: InMemoryLoader(torch.randn(n, 1, 32, 32, generator=g), torch.arange(n) % 3, 4)
               for s, n in (("train", 10), ("val", 6))}
    on_disk = FeatureCache(model, loaders, "disk", tmp_path / "cache", unlinked=True)
    in_memory = FeatureCache(model, loaders, "memory")
    # a process killed here (no close, no exit handlers) leaves nothing: the files are already out of the folder
    assert on_disk.where == "disk" and not (tmp_path / "cache").exists()
    for split in ("train", "val"):
        assert torch.allclose(on_disk.features[split][0], in_memory.features[split][0])
        assert torch.equal(on_disk.features[split][1], in_memory.features[split][1])
    on_disk.close()


def test_a_feature_cache_reads_a_torch_dataloader_in_order(tmp_path):
    """A torch DataLoader cannot be changed once built: setting its batch size raised a bare ValueError. It is
    rebuilt over its dataset, in order, and gives the features of cnnlab's own loader over the same images."""
    from torch.utils.data import DataLoader, TensorDataset

    from cnnlab.data.loader import InMemoryLoader
    from cnnlab.transfer import FeatureCache

    model = cnnlab.create_model("lenet5", num_classes=3).eval()
    g = torch.Generator().manual_seed(0)
    x = {s: torch.randn(n, 1, 32, 32, generator=g) for s, n in (("train", 10), ("val", 6))}
    ours = FeatureCache(model, {s: InMemoryLoader(v, torch.arange(len(v)) % 3, 4) for s, v in x.items()}, "memory")
    torch_loaders = {s: DataLoader(TensorDataset(v, torch.arange(len(v)) % 3), batch_size=4, shuffle=True)
                     for s, v in x.items()}
    for where in ("memory", "disk"):
        theirs = FeatureCache(model, torch_loaders, where, tmp_path / where)
        for split in ("train", "val"):
            torch.testing.assert_close(theirs.features[split][0], ours.features[split][0])
            assert torch.equal(theirs.features[split][1], ours.features[split][1])
        theirs.close()


def test_fine_tune_trains_the_backbone_and_the_bn_policy_decides_its_statistics(resnet_base, tmp_path):
    source = _weights(resnet_base)
    before = source.state_dict()
    key = "layer1.0.conv1.bn"
    frozen = _transfer(tmp_path / "frozen", resnet_base, "fine-tune", batch_size=16).model.state_dict()
    assert not torch.equal(frozen["layer1.0.conv1.conv.weight"], before["layer1.0.conv1.conv.weight"])
    assert not torch.equal(frozen[f"{key}.weight"], before[f"{key}.weight"])  # the affine part learns
    assert torch.equal(frozen[f"{key}.running_mean"], before[f"{key}.running_mean"])  # the default: frozen stats
    trained = _transfer(tmp_path / "train", resnet_base, "fine-tune", bn="train", batch_size=16).model.state_dict()
    assert not torch.equal(trained[f"{key}.running_mean"], before[f"{key}.running_mean"])


def test_warm_start_trains_the_head_alone_first(lenet_base, tmp_path):
    source = _weights(lenet_base).state_dict()
    seen = {}

    def snapshot(end):
        seen[end.epoch] = {k: v.clone() for k, v in end.model.state_dict().items()}

    said = []
    fit(TransferConfig(source=str(lenet_base), mode="fine-tune", head_epochs=1, data="digits@classes=5-9@labels=10",
                       epochs=2, run_dir=str(tmp_path / "r"), **QUIET), log=said.append, on_epoch_end=snapshot)
    assert "61,281 of 61,281 parameters train (the head's 10,589 alone for the first 1 epoch(s))" in "\n".join(said)
    conv = "features.c1.conv.weight"
    assert torch.equal(seen[1][conv], source[conv])          # epoch 1: head only
    assert not torch.equal(seen[2][conv], source[conv])      # epoch 2: every layer
    assert not torch.equal(seen[1]["head.fc.weight"], seen[2]["head.fc.weight"])


def test_partial_freezes_the_first_stages_only(resnet_base, tmp_path):
    source = _weights(resnet_base).state_dict()
    after = _transfer(tmp_path / "p", resnet_base, "partial", freeze_stages=2, batch_size=16).model.state_dict()
    for k in source:
        if k.startswith(("stem.", "layer1.", "layer2.")):
            assert torch.equal(after[k], source[k]), k
    assert not torch.equal(after["layer3.0.conv1.conv.weight"], source["layer3.0.conv1.conv.weight"])


def test_stage_modules_follow_feature_info():
    model = cnnlab.create_model("resnet18", small_input=True)
    names = stage_modules(model, 1)
    assert names[0] == "stem" and names[-1].startswith("layer1.") and not any(n.startswith("layer2") for n in names)
    with pytest.raises(CnnlabError, match="between 0 and 4"):
        stage_modules(model, 5)
    frozen = freeze_stages(model, 4)
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("head."))
    assert all(p.requires_grad for p in model.head.parameters()) and frozen


def test_frozen_batch_norm_stays_in_inference_mode_through_train():
    model = cnnlab.create_model("resnet18", small_input=True, num_classes=3)
    freeze_backbone(model)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns) and model.head.training
    mean = bns[0].running_mean.clone()
    model(torch.randn(4, 3, 32, 32) * 5 + 3)
    assert torch.equal(bns[0].running_mean, mean)
    set_bn_frozen(model, False)
    model.train()
    assert all(m.training for m in bns)


def test_param_groups_give_the_backbone_a_fraction_of_the_learning_rate():
    model = cnnlab.create_model("lenet5")
    groups = param_groups(model, 0.01, 0.1)
    assert [g["name"] for g in groups] == ["head", "backbone"]
    assert groups[0]["lr"] == 0.01 and groups[1]["lr"] == pytest.approx(0.001)
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_loading_replaces_only_the_head_and_backbone_weights_are_the_sources(lenet_base):
    source = read_source(lenet_base)
    torch.manual_seed(123)
    model = cnnlab.create_model("lenet5", num_classes=3)
    random_init = {k: v.clone() for k, v in model.state_dict().items()}
    kept_new = transfer_weights(model, source)
    assert kept_new == ["head.fc.bias", "head.fc.weight"]
    for k, v in model.state_dict().items():
        if k.startswith("head.fc."):
            assert torch.equal(v, random_init[k])
        else:
            assert torch.equal(v, source.state[k]) and not torch.equal(v, random_init[k]), k


def test_channel_adaptation_keeps_the_response_to_gray_images():
    torch.manual_seed(0)
    gray = cnnlab.create_model("resnet18", in_chans=1, num_classes=4, small_input=True).eval()
    rgb = cnnlab.create_model("resnet18", in_chans=3, num_classes=4, small_input=True).eval()
    state = gray.state_dict()
    state["stem.conv.conv.weight"] = adapt_channels(state["stem.conv.conv.weight"], 3)  # repeat, / 3
    rgb.load_state_dict(state)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(rgb(x.repeat(1, 3, 1, 1)), gray(x), atol=1e-4, rtol=1e-4)
    back = adapt_channels(state["stem.conv.conv.weight"], 1)  # sum
    torch.testing.assert_close(back, gray.state_dict()["stem.conv.conv.weight"])
    with pytest.raises(CnnlabError, match=r"convolution of 4 input channel\(s\) to 3: summing .*convert the images"):
        adapt_channels(torch.zeros(8, 4, 3, 3), 3)
    with pytest.raises(CnnlabError, match=r"of 3 input channel\(s\) to 1 by repeat: .*--adapt-channels sum \(or auto"):
        adapt_channels(torch.zeros(8, 3, 3, 3), 1, "repeat")  # the way that fits is named


def test_a_cnnlab_state_dict_without_metadata_in_a_safetensors_file_transfers(tmp_path):
    """Its keys come back in alphabetical order, where the last 2-D weight is F6's (84 rows), not the
    classifier's: the file was read as an 84-class LeNet-5 and refused as 'another architecture?'."""
    from safetensors.torch import save_file

    source = cnnlab.create_model("lenet5", num_classes=10)
    save_file(source.state_dict(), tmp_path / "lenet.safetensors")  # no cnnlab metadata
    r = _transfer(tmp_path / "run", tmp_path / "lenet.safetensors", "feature-extraction", model="lenet5", epochs=1,
                  data="digits@labels=3")
    assert torch.equal(r.model.state_dict()["features.c3.conv.weight"], source.state_dict()["features.c3.conv.weight"])


def test_a_torchvision_weights_file_transfers_to_grayscale_data(tmp_path):
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=7)
    torch.save(tv.state_dict(), tmp_path / "resnet18.pth")
    r = _transfer(tmp_path / "run", tmp_path / "resnet18.pth", "feature-extraction", model="resnet18", epochs=1,
                  data="digits@labels=3")
    conv = r.model.state_dict()["stem.conv.conv.weight"]
    torch.testing.assert_close(conv, tv.conv1.weight.sum(1, keepdim=True))  # RGB kernels summed for gray images
    assert torch.equal(r.model.state_dict()["layer4.1.conv2.bn.running_var"], tv.layer4[1].bn2.running_var)
    with pytest.raises(CnnlabError, match="pass --model"):
        _transfer(tmp_path / "no-model", tmp_path / "resnet18.pth", "fine-tune", epochs=1)
    with pytest.raises(CnnlabError, match="another architecture"):
        _transfer(tmp_path / "wrong", tmp_path / "resnet18.pth", "fine-tune", model="vgg11", epochs=1)
    with pytest.raises(CnnlabError, match="ImageNet form, not the small_input=True one .*: drop --small-input"):
        _transfer(tmp_path / "small", tmp_path / "resnet18.pth", "fine-tune", epochs=1, **RESNET)


def test_expand_classifier_keeps_the_old_classes_weights():
    model = cnnlab.create_model("lenet5", num_classes=5)
    old_w, old_b = model.head.fc.weight.detach().clone(), model.head.fc.bias.detach().clone()
    expand_classifier(model, 3)
    assert model.num_classes == 8 and model.head.fc.weight.shape == (8, 84)
    assert torch.equal(model.head.fc.weight[:5], old_w) and torch.equal(model.head.fc.bias[:5], old_b)


def test_incremental_reports_forgetting_and_rehearsal_beats_naive(lenet_base, tmp_path):
    r = _transfer(tmp_path / "inc", lenet_base, "incremental", data="digits@classes=5-9", epochs=6, memory=20)
    report = json.loads((r.run_dir / "results.json").read_text())["incremental"]
    assert report["base_classes"] == ["0", "1", "2", "3", "4"] and report["new_classes"] == ["5", "6", "7", "8", "9"]
    assert report["before"]["new"] == 0 and report["before"]["old"] > 0.9
    assert report["naive"]["old"] < 0.3 < report["naive"]["new"]           # naive fine-tuning forgets
    assert report["rehearsal"]["old"] > report["naive"]["old"] + 0.4       # a small memory keeps most of it
    assert report["rehearsal"]["all"] > report["naive"]["all"]
    meta = json.loads((r.run_dir / "meta.json").read_text())
    assert meta["classes"] == [str(i) for i in range(10)] and "+" in meta["data"]
    assert (r.run_dir / "naive" / "results.json").is_file()
    # each page links to the other (the baseline's page had no way back, the run's none to its baseline)
    assert '<a href="naive/report.html">the run it holds: naive</a>' in (r.run_dir / "report.html").read_text()
    assert '<a href="../report.html">the run it is part of (inc)</a>' in (
        r.run_dir / "naive" / "report.html").read_text()


def test_incremental_with_distillation_runs_and_is_reported(lenet_base, tmp_path):
    r = _transfer(tmp_path / "d", lenet_base, "incremental", data="digits@classes=5-9@labels=20", epochs=2,
                  memory=0, distill=1.0, compare_naive=False)
    report = json.loads((r.run_dir / "results.json").read_text())["incremental"]
    assert set(report) >= {"before", "distillation"} and 0 <= report["distillation"]["all"] <= 1


@pytest.mark.parametrize("channels_last", [True, False, None])  # None: the model's own (LeNet-5: channels-last)
def test_the_distillation_teacher_runs_in_the_students_memory_layout(lenet_base, tmp_path, channels_last):
    from cnnlab.train import get_kind

    recipe = get_kind("transfer").recipe()
    config = TransferConfig(source=str(lenet_base), mode="incremental", data="digits@classes=5-9@labels=10",
                            epochs=1, memory=0, distill=1.0, compare_naive=False, channels_last=channels_last,
                            run_dir=str(tmp_path / "d"), **QUIET)
    fit(config, log=lambda *a: None, recipe=recipe)
    conv = next(p for p in recipe.old_model.parameters() if p.dim() == 4 and p.shape[1] > 1)  # 1 channel is both
    expected = channels_last is not False  # on a CPU
    assert conv.is_contiguous(memory_format=torch.channels_last) == expected
    assert conv.is_contiguous() != expected


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="fine-tune", model="resnet18"), "is a lenet5 but the model asked for is resnet18"),
    (dict(mode="incremental", data="digits@classes=3-7"), "must differ from the base classes"),
    (dict(mode="partial", freeze_stages=9), "freeze_stages .--freeze-stages. must be between 0 and 3"),
    (dict(mode="fine-tune", epochs=2, head_epochs=2), "head_epochs .2. must be fewer than epochs"),
])
def test_bad_transfers_are_one_line_errors(lenet_base, tmp_path, kwargs, message):
    kwargs = {"epochs": 1, **kwargs}
    with pytest.raises(CnnlabError, match=message) as e:
        _transfer(tmp_path / "x", lenet_base, **kwargs)
    assert "\n" not in str(e.value)


def test_bad_sources_are_one_line_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("not weights")
    (tmp_path / "empty").mkdir()
    for source, message in ((tmp_path / "missing", "does not exist"), (tmp_path / "notes.txt", "not a checkpoint"),
                            (tmp_path / "empty", "not a cnnlab run")):
        with pytest.raises(CnnlabError, match=message):
            read_source(source)


# one of each family and block kind (all share the same code path; VGG-16/19 and deep ResNets only add layers)
FAMILIES = ["lenet5", "alexnet", "vgg11_bn", "googlenet", "inception_v3", "xception", "resnet18", "resnet50",
            "pyramidnet110_a48", "fractalnet20", "attention56", "densenet121", "mobilenet_v1", "mobilenet_v2",
            "efficientnet_b0"]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_architecture_family_transfers_through_the_contract(name):
    """Checked loading with channel adaptation, freezing and stages: written once, for every model."""
    from pathlib import Path

    from cnnlab.transfer import Source, count_trainable, head_parameters

    torch.manual_seed(0)
    source = cnnlab.create_model(name, num_classes=4, in_chans=3)
    target = cnnlab.create_model(name, num_classes=3, in_chans=1)
    new = transfer_weights(target, Source(Path(name), source.state_dict(), name))
    assert new and all(k.startswith(("head.", "aux1.", "aux2.")) for k in new)
    # every kernel that takes the image (FractalNet: one per column of its first block) is adapted to gray
    theirs = source.state_dict()
    convs = [k for k, v in target.state_dict().items() if v.dim() == 4 and theirs[k].shape[1] != v.shape[1]]
    assert convs and (len(convs) == 3 if name == "fractalnet20" else len(convs) == 1)
    for k in convs:
        torch.testing.assert_close(target.state_dict()[k], theirs[k].sum(1, keepdim=True))
    freeze_backbone(target)
    trainable, _ = count_trainable(target)
    assert trainable == sum(p.numel() for p in head_parameters(target))
    assert stage_modules(target, len(target.feature_info))


def test_a_depthwise_convolution_over_the_image_is_refused_in_one_line_that_says_why():
    from pathlib import Path

    from cnnlab.transfer import Source

    source = cnnlab.create_model("inception_v2", num_classes=4, in_chans=3)  # its separable stem
    target = cnnlab.create_model("inception_v2", num_classes=3, in_chans=1)
    with pytest.raises(CnnlabError, match=r"^the source's '.*' is a depthwise convolution over the image's "
                                          r"channels, 24 filters where inception_v2 here has 8: .*separable_stem="
                                          r"False\)$"):
        transfer_weights(target, Source(Path("v2"), source.state_dict(), "inception_v2"))
    plain = {"separable_stem": False}
    source = cnnlab.create_model("inception_v2", num_classes=4, in_chans=3, **plain)
    target = cnnlab.create_model("inception_v2", num_classes=3, in_chans=1, **plain)
    assert transfer_weights(target, Source(Path("v2"), source.state_dict(), "inception_v2"))


def test_a_disk_cache_goes_into_the_default_run_directory(lenet_base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = fit(TransferConfig(source=str(lenet_base), mode="feature-extraction", cache="disk",
                           data="digits@classes=5-9@labels=10", epochs=1, quiet=True), log=lambda *a: None)
    results = json.loads((r.run_dir / "results.json").read_text())
    assert results["transfer"]["feature_cache"]["where"] == "disk" and r.run_dir.parent.name == "runs"


def test_incremental_learning_splits_the_base_classes_as_the_source_did(lenet_base, tmp_path):
    with pytest.raises(CnnlabError, match="splits the base classes as the source did; use --seed 0"):
        _transfer(tmp_path / "x", lenet_base, "incremental", data="digits@classes=5-9", seed=1)


def test_incremental_learning_refuses_a_source_folder_that_gained_images_since(tmp_path):
    """Drawn again from more images, the base classes' test split held images the source had trained on (47 of 83
    in a user's folder), and their accuracy "before" was no longer the source's own."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)

    def images(folder, classes, count, start=0):
        for c in classes:
            (folder / c).mkdir(parents=True, exist_ok=True)
            for i in range(start, start + count):
                Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / c / f"{i}.png")

    images(tmp_path / "old", ("a", "b", "d"), 20)
    images(tmp_path / "new", ("c",), 20)
    base = _fit(tmp_path / "base", data=f"folder:{tmp_path / 'old'}", epochs=1, batch_size=8).run_dir
    images(tmp_path / "old", ("a",), 6, start=20)
    with pytest.raises(CnnlabError, match=r"no longer splits as it did \(42/9/9 train/val/test images then, "
                                          r"46/10/10 now"):
        _transfer(tmp_path / "inc", base, "incremental", data=f"folder:{tmp_path / 'new'}", epochs=1,
                  compare_naive=False)


def test_a_disk_cache_without_room_is_one_line_not_a_bus_error(tmp_path, monkeypatch):
    """The cache file is mapped sparse: a write the disk had no room for killed the process with SIGBUS
    (exit 135, no message). Its blocks are now allocated first."""
    import errno
    import os

    from cnnlab.data.loader import InMemoryLoader
    from cnnlab.errors import CnnlabError
    from cnnlab.transfer.features import extract_features

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    model = cnnlab.create_model("lenet5").eval()
    loader = InMemoryLoader(torch.rand(8, 1, 32, 32), torch.zeros(8, dtype=torch.long), 4)
    with pytest.raises(CnnlabError, match=r"feature cache '.*train.npy' \(.* MiB\) cannot be written: No space left"):
        extract_features(model, loader, "disk", tmp_path / "train.npy")
    assert not (tmp_path / "train.npy").exists()


def test_resume_refuses_new_freezing_or_batch_norm_and_drops_an_option_the_mode_ignores(lenet_base, tmp_path, capsys):
    """The frozen stages, the batch norm's handling, the head's warm start and the channel adaptation shaped the
    epochs already trained: a resume that changed them trained 10,589 parameters where the first epochs trained
    61,125, and config.yaml described the whole run by the new value. An option the run's mode ignores is warned
    about once and not recorded (recorded, it was warned about again at every later resume)."""
    import yaml

    from tests.conftest import one_line_error, run

    _transfer(tmp_path / "p", lenet_base, "partial", epochs=1, freeze_stages=1)
    for flag, value in (("--freeze-stages", "2"), ("--bn", "train"), ("--adapt-channels", "repeat")):
        assert f"cannot change {flag}" in one_line_error(capsys, "transfer", "--resume", tmp_path / "p", "--epochs",
                                                         "2", flag, value)
    assert yaml.safe_load((tmp_path / "p" / "config.yaml").read_text())["freeze_stages"] == 1
    _transfer(tmp_path / "fe", lenet_base, "feature-extraction", epochs=1)
    code, _, err = run(capsys, "transfer", "--resume", tmp_path / "fe", "--epochs", "2", "--freeze-stages", "1",
                       "--quiet")
    assert code == 0 and "--freeze-stages applies to --mode partial; --mode feature-extraction ignores it" in err
    assert yaml.safe_load((tmp_path / "fe" / "config.yaml").read_text())["freeze_stages"] == 2
    code, _, err = run(capsys, "transfer", "--resume", tmp_path / "fe", "--epochs", "3", "--quiet")
    assert code == 0 and "warning" not in err


def test_a_transfer_run_resumes_after_its_source_was_moved_away(tmp_path, capsys):
    """The checkpoint holds every weight and config.yaml the architecture: a resume no longer needs the source
    (it was refused: "source ... does not exist"), except an incremental run's, whose base model it compares with."""
    import shutil

    from tests.conftest import run

    base = _fit(tmp_path / "base", data="digits@classes=0-4", epochs=1).run_dir
    _transfer(tmp_path / "fe", base, "feature-extraction", epochs=1)
    _transfer(tmp_path / "ft", base, "fine-tune", epochs=1)
    shutil.move(base, tmp_path / "moved")
    for name in ("fe", "ft"):
        code, _, err = run(capsys, "transfer", "--resume", tmp_path / name, "--epochs", "2", "--quiet")
        assert code == 0, err
        assert len(Run.open(tmp_path / name).history) == 2


def test_the_experiment_with_a_given_model_a_warns_only_about_options_that_were_given(lenet_base):
    """--quick's own 3 source epochs were warned about as given ("--source, --source-epochs and --small-input
    ... what was given is ignored") when none of them was."""
    import dataclasses
    import warnings

    from cnnlab.experiments.transfer import QUICK, check_settings

    quick = dataclasses.replace(QUICK, source_run=str(lenet_base))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_settings(quick)
    with pytest.warns(UserWarning) as said:
        check_settings(dataclasses.replace(quick, source_epochs=7))
    assert [str(w.message) for w in said] == [
        "--source-epochs shapes the model A the experiment trains; with --from, model A is the run and this is ignored"]


def test_a_run_on_cached_features_records_that_it_trained_without_augmentation(lenet_base, tmp_path):
    """Cached features cannot be augmented: config.yaml said augment: true of a run that never augmented."""
    import yaml

    for cache, augmented in (("auto", False), ("off", True)):
        r = _transfer(tmp_path / cache, lenet_base, "feature-extraction", epochs=1, cache=cache)
        assert yaml.safe_load((r.run_dir / "config.yaml").read_text())["augment"] is augmented, cache
