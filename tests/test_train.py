"""The training engine, on the real built-in data."""

import copy
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from cnnlab.classify import ClassificationTask, ClassifierConfig
from cnnlab.errors import CnnlabError, InputSizeError
from cnnlab.run import Run
from cnnlab.train import TrainingDiverged, fit
from cnnlab.train.checkpoint import load_state, load_weights, save_weights

QUIET = dict(quiet=True, device="cpu")  # on a machine with a GPU too (tests/test_cuda.py trains there)


def _fit(tmp_path, name="run", **kwargs):
    return fit(ClassifierConfig(run_dir=str(tmp_path / name), **{**QUIET, **kwargs}), log=lambda *a: None)


def test_lenet5_learns_digits_and_writes_the_run_directory(tmp_path):
    r = _fit(tmp_path, epochs=6)
    assert r.history[-1]["val_loss"] < r.history[0]["val_loss"]
    assert r.test["accuracy"] > 0.85
    run = r.run_dir
    for f in ("config.yaml", "meta.json", "metrics.csv", "results.json", "report.html", "checkpoints/best.safetensors",
              "checkpoints/last.safetensors", "checkpoints/state.pt", "plots/learning_curves.svg",
              "plots/confusion_matrix.svg"):
        assert (run / f).is_file(), f
    results = json.loads((run / "results.json").read_text())
    assert results["test"]["accuracy"] == pytest.approx(r.test["accuracy"])
    assert sum(map(sum, results["confusion_matrix"])) == results["test"]["count"] == 270
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc,val_top5,lr") and len(lines) == 7
    html = (run / "report.html").read_text()
    assert "lenet5 on digits" in html and "data:image/png;base64" in html
    back = Run.open(run)
    assert back.meta["classes"] == [str(i) for i in range(10)] and back.meta["preprocess"]["size"] == [32, 32]
    assert back.evaluate()["accuracy"] == pytest.approx(r.test["accuracy"])  # the same split, read back


def test_saved_config_is_reusable(tmp_path):
    r = _fit(tmp_path, epochs=1, lr=0.002, optimizer="sgd", nesterov=True, scheduler="step")
    config = ClassifierConfig.load(r.run_dir / "config.yaml")
    assert (config.lr, config.optimizer, config.nesterov, config.scheduler) == (0.002, "sgd", True, "step")
    again = fit(config.replace(run_dir=str(tmp_path / "again")), log=lambda *a: None)
    assert again.history[0]["train_loss"] == pytest.approx(r.history[0]["train_loss"], rel=1e-5)


def test_binary_task_uses_one_sigmoid_output(tmp_path):
    r = _fit(tmp_path, data="faces", epochs=8, batch_size=16)
    run = Run.open(r.run_dir)
    assert run.meta["binary"] and run.model.get_classifier().out_features == 1
    assert r.test["accuracy"] > 0.75
    task = ClassificationTask(2, binary=True)
    probs = task.probabilities(torch.tensor([[0.0], [10.0]]))
    assert torch.allclose(probs, torch.tensor([[0.5, 0.5], [1 - torch.sigmoid(torch.tensor(10.0)), 0.9999546]]),
                          atol=1e-6)


def test_googlenet_adds_auxiliary_losses_in_training():
    task = ClassificationTask(3, aux_weight=0.3)
    y = torch.tensor([0, 1])
    main, aux = torch.randn(2, 3), torch.randn(2, 3)
    from cnnlab.models import InceptionOutputs

    loss = task.loss(InceptionOutputs(main, aux, aux), y)
    expected = task.loss(main, y) + 0.6 * task.loss(aux, y)
    assert torch.allclose(loss, expected)


def test_googlenet_trains_end_to_end_with_aux_heads(tmp_path):
    r = _fit(tmp_path, model="googlenet", model_kwargs={"small_input": True}, data="shapes:count=64",
             epochs=1, batch_size=16)
    assert r.test["count"] > 0 and torch.isfinite(torch.tensor(r.history[0]["train_loss"]))


def test_resume_after_a_crash_reproduces_an_uninterrupted_run(tmp_path, monkeypatch):
    common = dict(epochs=4, deterministic=True, seed=3, dropout=0.3)
    straight = _fit(tmp_path, "straight", **common)
    from cnnlab.train.rundir import RunDir

    original = RunDir.log_epoch

    def crash_after_two(self, history):
        original(self, history)
        if len(history) == 2:
            raise KeyboardInterrupt  # the process dies right after epoch 2's checkpoint

    monkeypatch.setattr(RunDir, "log_epoch", crash_after_two)
    with pytest.raises(KeyboardInterrupt) as interrupted:
        _fit(tmp_path, "resumed", **common)
    assert interrupted.value.resume == ("cnnlab train", tmp_path / "resumed")  # the command line offers it
    monkeypatch.setattr(RunDir, "log_epoch", original)
    config = ClassifierConfig.load(tmp_path / "resumed" / "config.yaml")
    resumed = fit(config, resume=tmp_path / "resumed", log=lambda *a: None)
    a = [(h["train_loss"], h["val_loss"]) for h in straight.history]
    b = [(h["train_loss"], h["val_loss"]) for h in resumed.history]
    assert a == b
    assert resumed.test == straight.test
    assert len((tmp_path / "resumed" / "metrics.csv").read_text().splitlines()) == 5


def test_k_epochs_and_resume_to_n_equal_n_epochs_straight(tmp_path):
    """With a schedule that does not depend on the total (step), extending a run is exact too."""
    common = dict(deterministic=True, seed=1, scheduler="step", step_size=1, gamma=0.7)
    straight = _fit(tmp_path, "straight", epochs=3, **common)
    _fit(tmp_path, "short", epochs=1, **common)
    config = ClassifierConfig.load(tmp_path / "short" / "config.yaml").replace(epochs=3)
    resumed = fit(config, resume=tmp_path / "short", log=lambda *a: None)
    assert [h["train_loss"] for h in straight.history] == [h["train_loss"] for h in resumed.history]


def test_early_stopping_restores_the_best_weights(tmp_path):
    # a rising learning rate with no schedule makes validation worse quickly
    r = _fit(tmp_path, epochs=30, early_stopping=2, lr=0.05, scheduler="none", optimizer="sgd", momentum=0.99)
    results = json.loads((r.run_dir / "results.json").read_text())
    assert results["stopped_early"] and len(r.history) < 30
    best, _ = load_weights(r.run_dir / "checkpoints" / "best.safetensors")
    assert all(torch.equal(best[k], v) for k, v in r.model.state_dict().items())
    best_epoch = min(r.history, key=lambda h: h["val_loss"])["epoch"]
    assert len(r.history) - best_epoch == 2
    config = ClassifierConfig.load(r.run_dir / "config.yaml")
    with pytest.raises(CnnlabError, match="stopped early after .*continue it with --early-stopping 0"):
        fit(config, resume=r.run_dir, log=lambda *a: None)
    done = len(r.history)
    again = fit(config.replace(epochs=done + 1, early_stopping=0), resume=r.run_dir, log=lambda *a: None)
    assert len(again.history) == done + 1  # continued as the message says
    with pytest.raises(CnnlabError, match=f"already has {done + 1} epochs"):  # not 'stopped early': it is done
        fit(config.replace(epochs=done + 1), resume=r.run_dir, log=lambda *a: None)


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = ClassificationTask.loss

    def poisoned(self, output, y):
        calls["n"] += 1
        loss = original(self, output, y)
        return loss * float("nan") if calls["n"] > 60 else loss  # 40 batches per epoch: NaN in epoch 2

    monkeypatch.setattr(ClassificationTask, "loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"diverged in epoch 2.*last good checkpoint"):
        _fit(tmp_path, epochs=5)
    state = load_state(tmp_path / "run" / "checkpoints" / "state.pt")
    assert state["epoch"] == 1
    weights, meta = load_weights(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert meta["epoch"] == 1 and all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_divergence_before_the_first_checkpoint_removes_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(ClassificationTask, "loss", lambda self, output, y: output.sum() * float("nan"))
    with pytest.raises(TrainingDiverged, match=r"diverged in epoch 1.*no epoch completed.*was removed"):
        _fit(tmp_path, epochs=3)
    assert not (tmp_path / "run").exists()
    (tmp_path / "mine").mkdir()  # a directory the user made stays, emptied of what the run wrote
    with pytest.raises(TrainingDiverged):
        _fit(tmp_path, "mine", epochs=3)
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())


def test_resume_rewrites_the_config_trains_with_it_and_clears_stale_temporary_files(tmp_path):
    """The optimiser's saved state brought back the first session's rate, weight decay and momentum, though
    config.yaml said the new ones; safetensors' own temporary file and the plots' were left behind by a kill."""
    _fit(tmp_path, epochs=1, optimizer="sgd", scheduler="none")
    run = tmp_path / "run"
    leftovers = [run / ".metrics.csv.123.tmp", run / "checkpoints" / ".last.safetensors.9.tmp",
                 run / "checkpoints" / ".tmpbmhfJh", run / "plots" / ".learning_curves.svg.7.tmp"]
    for f in leftovers:
        f.write_bytes(b"half a file")  # what a kill in the middle of a write leaves
    config = ClassifierConfig.load(run / "config.yaml").replace(epochs=2, lr=0.001, weight_decay=0.01,
                                                                momentum=0.5, nesterov=True)
    fit(config, resume=run, log=lambda *a: None)
    saved = ClassifierConfig.load(run / "config.yaml")
    assert (saved.epochs, saved.lr) == (2, 0.001)
    assert not any(f.exists() for f in leftovers)
    group = load_state(run / "checkpoints" / "state.pt")["optimizer"]["param_groups"][0]
    assert (group["lr"], group["weight_decay"], group["momentum"], group["nesterov"]) == (0.001, 0.01, 0.5, True)
    assert [row["lr"] for row in Run.open(run).history] == [0.003, 0.001]  # the second epoch at the new rate


def test_resume_refuses_another_optimiser_before_changing_the_run(tmp_path):
    """Adam's moments are no SGD state: resuming with --optimizer sgd crashed (KeyError: 'momentum') after
    config.yaml said sgd, so that every later resume crashed too."""
    _fit(tmp_path, epochs=1)
    config = ClassifierConfig.load(tmp_path / "run" / "config.yaml")
    with pytest.raises(CnnlabError, match="cannot change optimizer"):
        fit(config.replace(epochs=2, optimizer="sgd"), resume=tmp_path / "run", log=lambda *a: None)
    assert ClassifierConfig.load(tmp_path / "run" / "config.yaml").optimizer == "adam"
    fit(config.replace(epochs=2), resume=tmp_path / "run", log=lambda *a: None)


def test_resume_refuses_a_folder_whose_classes_were_renamed_even_when_their_number_is_the_same(tmp_path):
    """The same number of classes loads into the same head: a renamed class folder trained output 2 ("c5") as
    "c9", and results.json then named the new classes, so that evaluate could no longer notice."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("c3", "c4", "c5"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    config = ClassifierConfig(data=f"folder:{tmp_path / 'imgs'}", epochs=1, batch_size=8, quiet=True,
                              run_dir=str(tmp_path / "run"))
    fit(config, log=lambda *a: None)
    (tmp_path / "imgs" / "c5").rename(tmp_path / "imgs" / "c9")
    with pytest.raises(CnnlabError, match=r"trained on 3 classes \(c3, c4, c5\) but .* now gives 3 \(c3, c4, c9\)"):
        fit(config.replace(epochs=2), resume=tmp_path / "run", log=lambda *a: None)
    assert Run.open(tmp_path / "run").meta["classes"] == ["c3", "c4", "c5"]
    (tmp_path / "imgs" / "c9").rename(tmp_path / "imgs" / "c5")
    assert len(fit(config.replace(epochs=2), resume=tmp_path / "run", log=lambda *a: None).history) == 2


def test_a_run_that_cannot_be_written_is_refused_before_it_resumes(tmp_path, monkeypatch):
    _fit(tmp_path, epochs=1)
    run = tmp_path / "run"
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == run / "checkpoints" else real(p, mode))
    config = ClassifierConfig.load(run / "config.yaml").replace(epochs=2)
    with pytest.raises(CnnlabError, match=r"checkpoints' cannot be written \(a read-only file system"):
        fit(config, resume=run, log=lambda *a: None)


def test_a_full_disk_is_one_line_and_leaves_the_previous_file(tmp_path, monkeypatch):
    """torch.save and safetensors say a full disk in their own words (RuntimeError 'unexpected pos',
    SafetensorError): a traceback; now one line, the file as it was."""
    import shutil
    from collections import namedtuple

    from cnnlab import _io

    target = tmp_path / "state.pt"
    target.write_bytes(b"the previous state")

    def fails(tmp):
        Path(tmp).write_bytes(b"part of a state")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(300_000, 299_000, 1_000))
    with pytest.raises(CnnlabError, match=r"cannot write '.*state.pt': no space left on the device"):
        _io.atomic_write(target, fails)
    assert target.read_bytes() == b"the previous state" and [p.name for p in tmp_path.iterdir()] == ["state.pt"]
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 10**9, 10**11))
    with pytest.raises(RuntimeError, match="unexpected pos"):  # with room left, an error is not a full disk
        _io.atomic_write(target, fails)


def test_the_default_checkpoint_is_the_one_the_results_came_from(tmp_path):
    r = _fit(tmp_path, epochs=2)
    run = Run.open(r.run_dir)
    assert run.file.name == "last.safetensors" and run.results["checkpoint"] == "last"
    assert run.meta["epoch"] == 2
    assert all(torch.equal(v, r.model.state_dict()[k]) for k, v in run.model.state_dict().items())
    stopped = _fit(tmp_path, "stopped", epochs=2, early_stopping=5)
    assert Run.open(stopped.run_dir).file.name == "best.safetensors"


@pytest.mark.parametrize("data, name", [
    ("digits", "digits"), ("shapes:size=64", "shapes_size_64"), ("folder:/home/me/pets/", "pets"),
    ("npz:data/set.npz", "set"),  # a file by its stem, as ae encode names files after it
])
def test_default_run_directory_names(data, name):
    from cnnlab.train import default_run_dir

    path = default_run_dir(ClassifierConfig(model="resnet18", data=data))
    assert path.parent.name == "runs" and path.name.startswith(f"resnet18-{name}-")


def test_an_interrupted_checkpoint_write_leaves_the_previous_file(tmp_path, monkeypatch):
    import safetensors.torch

    model = torch.nn.Linear(2, 2)
    path = tmp_path / "w.safetensors"
    save_weights(path, model, {"epoch": 1})

    def dies_half_way(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_weights(path, torch.nn.Linear(2, 2), {"epoch": 2})
    weights, meta = load_weights(path)
    assert meta["epoch"] == 1 and torch.equal(weights["weight"], model.weight.detach())
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_killing_the_process_never_corrupts_the_checkpoint(tmp_path):
    """SIGKILL at arbitrary moments (many of them inside a save): the last completed epoch's weights and a
    training state of that same epoch are always there, and the run continues from them."""
    from cnnlab.train.checkpoint import Checkpoints, read_metadata

    run = tmp_path / "killed"
    checkpoints = Checkpoints(run / "checkpoints")

    def epoch() -> int:
        return read_metadata(checkpoints.last)["epoch"] if checkpoints.exists() else 0

    for attempt, delay in enumerate((0.05, 0.37, 0.81)):
        cmd = [sys.executable, "-m", "cnnlab", "train", "--epochs", "500", "--quiet"]
        cmd += ["--resume", str(run)] if attempt else ["--run-dir", str(run)]
        before = epoch()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120  # start-up is slow on a loaded machine: wait for a new checkpoint
        while time.monotonic() < deadline and proc.poll() is None and epoch() <= before:
            time.sleep(0.05)
        time.sleep(delay)  # then kill at an arbitrary moment of training (often inside a save)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        weights, state = checkpoints.resume()
        assert state["epoch"] == epoch() > before
        with pytest.warns(UserWarning, match="did not finish"):  # (killed: no results.json)
            assert Run.open(run, "last").model is not None


def test_precision_and_memory_format_options(tmp_path, monkeypatch):
    import cnnlab.train.precision as precision

    monkeypatch.setattr(precision, "native_bf16", lambda: True)  # bf16 autocast runs on any CPU, slowly without
    r = _fit(tmp_path, epochs=1, precision="bf16", channels_last=True, model="resnet18", device="cpu",
             model_kwargs={"small_input": True}, data="shapes:size=16,count=40", batch_size=16)
    assert torch.isfinite(torch.tensor(r.history[0]["train_loss"]))
    assert json.loads((r.run_dir / "meta.json").read_text())["precision"] == "bf16"


def test_a_cpu_run_trains_the_models_declared_faster_channels_last_so_and_the_others_contiguous(tmp_path, monkeypatch):
    import cnnlab.train.precision as precision

    monkeypatch.setattr(precision, "native_bf16", lambda: False)  # auto: fp32 without measuring, on any CPU
    lines = []
    r = fit(ClassifierConfig(run_dir=str(tmp_path / "lenet"), epochs=1, data="digits@labels=5", device="cpu",
                             quiet=True), log=lines.append)
    assert yaml.safe_load((r.run_dir / "config.yaml").read_text())["channels_last"] is None  # what was asked
    assert json.loads((r.run_dir / "meta.json").read_text())["channels_last"] is True       # what it ran with
    assert r.model.features.c3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert "on cpu, channels-last, input 1x32x32" in lines[0]
    html = (r.run_dir / "report.html").read_text()  # the report says what ran beside what was asked
    assert "<td>channels_last</td><td>None (ran: true)</td>" in html and "<td>auto (ran: fp32)</td>" in html
    r = _fit(tmp_path, "resnet", epochs=1, model="resnet18", model_kwargs={"small_input": True}, batch_size=16,
             data="shapes:size=16,count=40", device="cpu")
    assert json.loads((r.run_dir / "meta.json").read_text())["channels_last"] is False
    r = _fit(tmp_path, "off", epochs=1, data="digits@labels=5", device="cpu", channels_last=False)
    assert json.loads((r.run_dir / "meta.json").read_text())["channels_last"] is False
    assert not r.model.features.c3.conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_the_layout_is_what_was_asked_else_the_models_declaration_on_a_cpu_only():
    from cnnlab.ae import create_autoencoder
    from cnnlab.models import create_model
    from cnnlab.train.layout import resolve_channels_last

    cpu, gpu = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    lenet, resnet = create_model("lenet5"), create_model("resnet18")
    assert resolve_channels_last(None, lenet, cpu) and not resolve_channels_last(None, resnet, cpu)
    assert not resolve_channels_last(None, lenet, gpu)  # not measured there: contiguous
    assert not resolve_channels_last(False, lenet, cpu) and resolve_channels_last(True, resnet, cpu)
    assert not resolve_channels_last(None, create_autoencoder("conv", (1, 28, 28)), cpu)  # declares nothing


@pytest.mark.parametrize("before", [False, True])
def test_a_run_resumed_in_the_other_layout_takes_the_same_steps_as_in_its_own(tmp_path, before):
    # Adam's saved moments keep the layout they were saved in, and the fused step pairs them with the weights in
    # memory order: unmatched, the resumed steps went wrong (test loss 0.373 against 0.356 after three epochs)
    common = dict(data="digits@labels=5", device="cpu", augment=False, deterministic=True)
    histories = []
    for name, after in (("same", before), ("other", not before)):
        _fit(tmp_path, name, epochs=1, channels_last=before, **common)
        config = ClassifierConfig.load(tmp_path / name / "config.yaml").replace(epochs=3, channels_last=after)
        r = fit(config, resume=tmp_path / name, log=lambda *a: None)
        assert r.model.features.c3.conv.weight.is_contiguous(
            memory_format=torch.channels_last if after else torch.contiguous_format)
        assert json.loads((r.run_dir / "meta.json").read_text())["channels_last"] is after  # this session's
        histories.append([loss for h in r.history for loss in (h["train_loss"], h["val_loss"])])
    assert histories[1] == pytest.approx(histories[0], rel=1e-4)


def test_optimizer_state_takes_its_parameters_layout_after_loading():
    from cnnlab.train.layout import match_state_layout

    torch.manual_seed(0)
    grads = [torch.randn(6, 4, 3, 3) for _ in range(2)]
    start = torch.randn(6, 4, 3, 3)

    def adam(layout, state=None):
        p = torch.nn.Parameter(start.clone().contiguous(memory_format=layout))
        opt = torch.optim.Adam([p], lr=0.1, fused=True)
        if state is not None:
            opt.load_state_dict(copy.deepcopy(state))  # a step updates the state it loaded in place
            match_state_layout(opt)
        return p, opt

    p, opt = adam(torch.channels_last)
    p.grad = grads[0].contiguous(memory_format=torch.channels_last)
    opt.step()
    saved = opt.state_dict()
    reference = p.detach().clone()
    for layout in (torch.channels_last, torch.contiguous_format):  # continued in its own layout, then the other
        q, opt = adam(layout, saved)
        with torch.no_grad():
            q.copy_(reference)
        assert opt.state[q]["exp_avg"].stride() == q.stride()
        q.grad = grads[1].contiguous(memory_format=layout)
        opt.step()
        if layout is torch.channels_last:
            expected = q.detach().clone()
        else:
            torch.testing.assert_close(q.detach(), expected)


def test_auto_is_fp32_on_a_cpu_without_native_bf16_and_bf16_or_fp16_without_their_units_refused(tmp_path, monkeypatch):
    import cnnlab.train.precision as precision

    monkeypatch.setattr(precision, "native_bf16", lambda: False)  # with it, auto measures (tests/test_precision.py)
    r = _fit(tmp_path, "auto", epochs=1, data="digits@labels=5", device="cpu")
    assert yaml.safe_load((r.run_dir / "config.yaml").read_text())["precision"] == "auto"  # what was asked
    assert json.loads((r.run_dir / "meta.json").read_text())["precision"] == "fp32"        # what it ran with
    with pytest.raises(CnnlabError, match=r"^--precision bf16: this CPU \(.*\) has no native bf16 .* use --precision "
                                          r"fp32 \(or auto\)$"):
        _fit(tmp_path, "bf16", epochs=1, precision="bf16", data="digits@labels=5", device="cpu")
    assert not (tmp_path / "bf16").exists()
    monkeypatch.setattr(precision, "native_fp16", lambda: False)  # fp16 without AMX-FP16: many times slower too
    with pytest.raises(CnnlabError, match=r"^--precision fp16: this CPU \(.*\) has no AMX-FP16, so fp16 would run "
                                          r"many times slower than fp32; use --precision fp32 \(or auto\)$"):
        _fit(tmp_path, "fp16", epochs=1, precision="fp16", data="digits@labels=5", device="cpu")
    assert not (tmp_path / "fp16").exists()


def test_a_loop_given_a_configs_auto_precision_runs_in_fp32_on_a_cpu():
    from cnnlab.train.precision import autocast

    x = torch.randn(2, 3)
    with autocast(torch.device("cpu"), "auto"):  # what train_one_epoch gets when called outside fit()
        assert not torch.is_autocast_enabled("cpu")
        assert (x @ x.T).dtype == torch.float32
    with autocast(torch.device("cpu"), "fp16"):
        assert torch.is_autocast_enabled("cpu")


def test_penalties_schedules_and_optimisers_run(tmp_path):
    for i, kwargs in enumerate([dict(optimizer="adamw", weight_decay=0.05, l1=1e-5, l2=1e-4, scheduler="onecycle"),
                                dict(optimizer="sgd", scheduler="step", step_size=1, warmup_epochs=0.5,
                                     grad_clip=1.0, augment=False, label_smoothing=0.0)]):
        r = _fit(tmp_path, f"r{i}", epochs=2, **kwargs)
        assert r.history[-1]["train_loss"] < r.history[0]["train_loss"] * 1.5


def test_lr_schedules_have_the_documented_shape():
    from cnnlab.train.setup import lr_factor

    f = lr_factor(ClassifierConfig(epochs=10, scheduler="cosine", warmup_epochs=2), steps_per_epoch=10)
    assert f(0) == pytest.approx(0.05) and f(19) == pytest.approx(1.0) and f(99) < 0.01
    f = lr_factor(ClassifierConfig(epochs=10, scheduler="step", step_size=3, gamma=0.5), steps_per_epoch=10)
    assert (f(0), f(30), f(60)) == (1.0, 0.5, 0.25)
    f = lr_factor(ClassifierConfig(epochs=10, scheduler="onecycle"), steps_per_epoch=10)
    assert f(0) == pytest.approx(1 / 25) and f(30) == pytest.approx(1.0) and f(99) < 0.01


def test_the_lr_column_is_the_rate_each_epoch_began_with(tmp_path):
    r = _fit(tmp_path, data="digits@classes=0-1", epochs=3, lr=0.01, scheduler="step", step_size=1, gamma=0.5)
    assert [h["lr"] for h in r.history] == pytest.approx([0.01, 0.005, 0.0025])


def test_a_run_continued_with_more_epochs_takes_its_next_step_on_the_stretched_schedule(tmp_path):
    """The saved rate is the 2-epoch cosine's end (0); the third epoch must start where a 4-epoch cosine is."""
    small = dict(data="digits@classes=0-1", lr=0.01, scheduler="cosine")
    _fit(tmp_path, epochs=2, **small)
    r = fit(ClassifierConfig(run_dir=str(tmp_path / "run"), epochs=4, quiet=True, **small), resume=tmp_path / "run",
            log=lambda *a: None)
    assert [h["lr"] for h in r.history][2:] == pytest.approx([0.01 * 0.5 * (1 + math.cos(math.pi * e / 4))
                                                              for e in (2, 3)])


def test_tensorboard_logging(tmp_path):
    pytest.importorskip("tensorboard")
    r = _fit(tmp_path, epochs=1, tensorboard=True)
    assert any(p.name.startswith("events.out.tfevents") for p in (r.run_dir / "tensorboard").iterdir())


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(model="resnt18"), CnnlabError, "did you mean 'resnet18'"),
    (dict(data="digts"), CnnlabError, "did you mean 'digits'"),
    (dict(data="folder:/no/such/place"), CnnlabError, "does not exist"),
    (dict(data="photos"), CnnlabError, "has no labels"),
    (dict(model="resnet18", image_size=16), InputSizeError, "at least 32x32.*--small-input"),
    (dict(model="lenet5", image_size=64), InputSizeError, "exactly 32x32"),
    (dict(optimizer="rmsprop"), CnnlabError, "optimizer must be one of"),
    (dict(batch_size=0), CnnlabError, "batch_size must be an integer from 1"),
    (dict(loss="bce"), CnnlabError, "needs a two-class dataset"),
    (dict(epochs=3, warmup_epochs=3), CnnlabError, "warmup_epochs .3. must be fewer than epochs"),
    (dict(epochs=3, warmup_epochs=1, scheduler="onecycle"), CnnlabError, "onecycle schedule has its own warm-up"),
])
def test_bad_configurations_are_clear_errors(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        _fit(tmp_path, **{"epochs": 1, **kwargs})


def test_a_run_that_sets_none_of_the_data_defaulted_options_trains_with_the_datasets_own(tmp_path):
    from cnnlab.data import train_defaults
    from cnnlab.train import RunConfig

    digits = train_defaults("digits")
    assert set(digits) == {"epochs", "batch_size", "lr", "augment"} and digits["epochs"] < RunConfig.epochs
    r = fit(ClassifierConfig(run_dir=str(tmp_path / "run"), quiet=True), log=lambda *a: None,
            on_epoch_end=lambda end: end.epoch == 2)  # two epochs are enough to see what the run was given
    saved = yaml.safe_load((r.run_dir / "config.yaml").read_text())
    assert {k: saved[k] for k in digits} == digits
    cosine = 0.5 * (1 + math.cos(math.pi / digits["epochs"]))  # one epoch of the dataset's epochs done
    assert [h["lr"] for h in r.history] == pytest.approx([digits["lr"], digits["lr"] * cosine])


@pytest.mark.parametrize("given", [dict(epochs=2), dict(batch_size=16), dict(lr=1e-3), dict(augment=False)])
def test_setting_any_data_defaulted_option_gives_the_general_defaults_for_the_others(given):
    from cnnlab.train import RunConfig

    config = ClassifierConfig(**given).resolved()
    for key in ("epochs", "batch_size", "lr", "augment"):
        assert getattr(config, key) == given.get(key, getattr(RunConfig, key)), key


def test_data_without_training_defaults_gets_the_general_ones_and_a_transfer_always_does():
    from cnnlab.train import RunConfig
    from cnnlab.transfer import TransferConfig

    general = {k: getattr(RunConfig, k) for k in ("epochs", "batch_size", "lr", "augment")}
    for data in ("textures", "digits@classes=0-4", "digits+textures", "shapes:size=64", "folder:/x"):
        assert {k: getattr(ClassifierConfig(data=data).resolved(), k) for k in general} == general, data
    assert ClassifierConfig(data="digits:").resolved().epochs == ClassifierConfig().resolved().epochs != 40
    assert {k: getattr(TransferConfig(source="x"), k) for k in general} == general


def test_a_run_continued_from_python_keeps_its_own_values_of_what_the_config_leaves_unset(tmp_path):
    d = str(tmp_path / "run")
    fit(ClassifierConfig(run_dir=d, quiet=True), log=lambda *a: None, on_epoch_end=lambda end: True)
    r = fit(ClassifierConfig(run_dir=d, quiet=True, epochs=2), resume=d, log=lambda *a: None)
    saved = yaml.safe_load((r.run_dir / "config.yaml").read_text())
    assert (saved["epochs"], saved["batch_size"], saved["lr"], saved["augment"]) == (2, 64, 0.01, False)
    assert len(r.history) == 2


def test_a_dataset_whose_defaults_name_another_option_is_refused(monkeypatch):
    import cnnlab.classify.config as classifier_config

    monkeypatch.setattr(classifier_config, "train_defaults", lambda spec: {"epochs": 3, "momentum": 0.5})
    with pytest.raises(ValueError, match=r"set \['momentum'\]; a dataset may set only epochs, batch_size"):
        ClassifierConfig().resolved()


def test_the_dataset_defaults_are_checked_as_the_options_they_fill(tmp_path):
    with pytest.raises(CnnlabError, match=r"warmup_epochs \(20\) must be fewer than epochs \(15\)"):
        fit(ClassifierConfig(warmup_epochs=20, run_dir=str(tmp_path / "run"), quiet=True), log=lambda *a: None)
    assert not (tmp_path / "run").exists()


def test_existing_run_directory_is_not_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "precious.txt").write_text("keep")
    with pytest.raises(CnnlabError, match="already exists"):
        _fit(tmp_path, epochs=1)
    assert (tmp_path / "run" / "precious.txt").read_text() == "keep"


def test_config_file_errors(tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(CnnlabError, match="unknown option.*learning_rate"):
        ClassifierConfig.load(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("epochs: [\n")
    with pytest.raises(CnnlabError, match="not valid YAML"):
        ClassifierConfig.load(tmp_path / "d.yaml")
    assert yaml.safe_load(yaml.safe_dump(ClassifierConfig().to_dict()))["model"] == "lenet5"


def test_checkpoints_are_skipped_only_within_the_time_budget_and_a_resume_replays_the_rest(tmp_path, monkeypatch):
    """With writing allowed no time at all, only the first and the last epoch are written; the best epoch's
    weights wait in memory; a run killed in between resumes from the first and ends exactly as the straight run."""
    from cnnlab.train.checkpoint import Checkpoints, read_metadata
    from cnnlab.train.rundir import RunDir

    # a rising learning rate with no schedule: the best validation loss comes early, not last
    common = dict(epochs=5, deterministic=True, seed=5, early_stopping=10, lr=0.05, scheduler="none",
                  optimizer="sgd", momentum=0.99)
    straight = _fit(tmp_path, "straight", **common)
    best_epoch = min(straight.history, key=lambda h: h["val_loss"])["epoch"]
    assert 1 < best_epoch < 5
    monkeypatch.setattr("cnnlab.train.checkpoint.BUDGET", 0.0)
    written = []
    original_save = Checkpoints.save

    def save(self, model, meta, state, best):
        written.append(state["epoch"])
        original_save(self, model, meta, state, best)

    monkeypatch.setattr(Checkpoints, "save", save)
    original_log = RunDir.log_epoch

    def killed_after_three(self, history):
        original_log(self, history)
        if len(history) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "log_epoch", killed_after_three)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, "resumed", **common)
    assert written == [1] and read_metadata(tmp_path / "resumed" / "checkpoints" / "last.safetensors")["epoch"] == 1
    monkeypatch.setattr(RunDir, "log_epoch", original_log)
    resumed = fit(ClassifierConfig.load(tmp_path / "resumed" / "config.yaml"), resume=tmp_path / "resumed",
                  log=lambda *a: None)
    assert written == [1, 2, 5]  # the first epoch after resuming, then the last
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in straight.history]
    assert resumed.test == straight.test  # the best weights, restored from memory or from best.safetensors
    assert read_metadata(tmp_path / "resumed" / "checkpoints" / "best.safetensors")["epoch"] == best_epoch


def test_config_files_from_before_kinds_of_run_still_load():
    """A config.yaml written by cnnlab 0.1 before kinds of run (one flat classifier config with a section per
    other kind) loads as its kind's config; the placeholders it carried (a model name for an autoencoder) go."""
    from pathlib import Path

    from cnnlab.ae import AEConfig
    from cnnlab.run import load_config
    from cnnlab.transfer import TransferConfig

    legacy = Path(__file__).parent / "expect" / "legacy_autoencoder_config.yaml"
    config = load_config(legacy)
    assert isinstance(config, AEConfig) and (config.kind, config.epochs, config.augment) == ("vae", 1, False)
    text = legacy.read_text().replace("transfer: null", "transfer:\n  source: runs/base\n  mode: partial\n")
    text = text.replace("autoencoder:\n  kind: vae", "autoencoder_was:\n  kind: vae")
    values = yaml.safe_load(text)
    values["autoencoder"] = values.pop("autoencoder_was") and None
    config = ClassifierConfig.from_dict(values)
    assert isinstance(config, TransferConfig) and (config.source, config.mode) == ("runs/base", "partial")
    assert config.model == "vae_ae"  # a classifier's option, kept


def test_a_kill_between_the_state_and_the_weights_resumes_and_survives_a_second_kill(tmp_path):
    """Epoch 2's state written, its weights not (a kill in between): epoch 1 resumes, its state becomes
    state.pt again, and a second kill at the same place still leaves a matching pair."""
    from cnnlab.train.checkpoint import Checkpoints, save_state

    checkpoints, model = Checkpoints(tmp_path), torch.nn.Linear(2, 2)
    checkpoints.save(model, {}, {"epoch": 1}, best=True)
    for _ in range(2):
        os.replace(checkpoints.state, checkpoints.previous_state)  # what save() does first for epoch 2 ...
        save_state(checkpoints.state, {"epoch": 2})               # ... then the kill, before the weights
        weights, state = checkpoints.resume()
        assert state["epoch"] == 1 and load_state(checkpoints.state)["epoch"] == 1
        assert not checkpoints.previous_state.exists() and torch.equal(weights["weight"], model.weight.detach())


def test_a_run_stopped_after_its_last_epoch_resumes_to_its_results(tmp_path):
    r = _fit(tmp_path, epochs=2)
    for f in ("results.json", "report.html"):
        (r.run_dir / f).unlink()  # killed while finishing: the epochs are done, the results are not
    again = fit(ClassifierConfig.load(r.run_dir / "config.yaml"), resume=r.run_dir, log=lambda *a: None)
    assert again.test == r.test and (r.run_dir / "results.json").is_file() and len(again.history) == 2
    with pytest.raises(CnnlabError, match="already has 2 epochs"):
        fit(ClassifierConfig.load(r.run_dir / "config.yaml"), resume=r.run_dir, log=lambda *a: None)


def test_a_run_stopped_midway_is_not_finished_short_by_a_resume_asking_fewer_epochs_than_it_has(tmp_path):
    r = _fit(tmp_path, epochs=3)
    for f in ("results.json", "report.html"):
        (r.run_dir / f).unlink()  # as if stopped after epoch 3 of a longer run
    before = (r.run_dir / "config.yaml").read_text()
    config = ClassifierConfig.load(r.run_dir / "config.yaml")
    with pytest.raises(CnnlabError, match="already has 3 epochs, more than --epochs 2; pass --epochs 3 to finish"):
        fit(config.replace(epochs=2), resume=r.run_dir, log=lambda *a: None)
    assert (r.run_dir / "config.yaml").read_text() == before and not (r.run_dir / "results.json").exists()
    again = fit(config, resume=r.run_dir, log=lambda *a: None)  # --epochs 3: finished as it is
    assert len(again.history) == 3 and (r.run_dir / "results.json").is_file()


def test_resuming_from_python_refuses_what_defines_the_run_too(tmp_path):
    r = _fit(tmp_path, epochs=1)
    config = ClassifierConfig.load(r.run_dir / "config.yaml")
    with pytest.raises(CnnlabError, match="cannot change data, seed"):
        fit(config.replace(epochs=2, data="faces", seed=3), resume=r.run_dir, log=lambda *a: None)


def test_a_failed_resume_of_a_run_without_epochs_keeps_its_config(tmp_path, monkeypatch):
    import shutil

    from cnnlab.classify import ClassifierRecipe

    r = _fit(tmp_path, epochs=1)
    shutil.rmtree(r.run_dir / "checkpoints")  # a run killed in its first epoch
    config = ClassifierConfig.load(r.run_dir / "config.yaml")

    def unreadable(self, config):
        raise CnnlabError("the data cannot be read right now")

    monkeypatch.setattr(ClassifierRecipe, "load_data", unreadable)
    for _ in range(2):  # it fails, and can be tried again: the run is still there
        with pytest.raises(CnnlabError, match="cannot be read right now"):
            fit(config, resume=r.run_dir, log=lambda *a: None)
        assert (r.run_dir / "config.yaml").is_file() and (r.run_dir / "meta.json").is_file()


def test_a_saved_thread_count_never_stops_a_run_from_opening(tmp_path):
    from cnnlab.run import Run

    r = _fit(tmp_path, epochs=1)
    text = (r.run_dir / "config.yaml").read_text().replace("threads: null", "threads: 4096")
    (r.run_dir / "config.yaml").write_text(text)  # trained on a machine with many cores
    assert Run.open(r.run_dir).config.threads == 4096
    with pytest.raises(CnnlabError, match="threads must be at most the"):
        fit(ClassifierConfig(threads=4096, run_dir=str(tmp_path / "x")), log=lambda *a: None)


def test_numbers_yaml_reads_as_text_are_numbers_in_a_config_file(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nweight_decay: 5E-4\n")
    config = ClassifierConfig.load(tmp_path / "c.yaml")
    assert (config.lr, config.weight_decay) == (0.001, 0.0005)


def test_an_unknown_checkpoint_name_is_refused(tmp_path):
    from cnnlab.run import Run

    r = _fit(tmp_path, epochs=1)
    with pytest.raises(CnnlabError, match="checkpoint must be best or last, got 'epoch3'"):
        Run.open(r.run_dir, "epoch3")


def test_a_run_directory_in_use_by_another_process_is_refused_in_one_line(tmp_path):
    from cnnlab.run import write_any_report
    from cnnlab.train.rundir import lock_dir, unlock_dir

    _fit(tmp_path, "r", epochs=1, data="digits@labels=5")
    held = lock_dir(tmp_path / "r")  # as another process training it would hold it
    if held is None:
        pytest.skip("no flock on this platform")
    before = sorted(p.name for p in (tmp_path / "r").rglob("*"))
    try:
        with pytest.raises(CnnlabError, match=r"run directory '.*r' is in use by another cnnlab process"):
            fit(ClassifierConfig(epochs=2, data="digits@labels=5", quiet=True), resume=tmp_path / "r",
                log=lambda *a: None)
        with pytest.raises(CnnlabError, match="is in use by another cnnlab process"):
            _fit(tmp_path, "r", epochs=1, data="digits@labels=5")
        report = (tmp_path / "r" / "report.html").stat().st_mtime_ns
        with pytest.raises(CnnlabError, match="is in use by another cnnlab process"):  # `cnnlab report`: the
            write_any_report(tmp_path / "r")  # report of a run half done, soon replaced by its own
        assert (tmp_path / "r" / "report.html").stat().st_mtime_ns == report
        assert sorted(p.name for p in (tmp_path / "r").rglob("*")) == before  # nothing touched
    finally:
        unlock_dir(held)
    r = fit(ClassifierConfig(epochs=2, data="digits@labels=5", quiet=True), resume=tmp_path / "r",
            log=lambda *a: None)  # once it is free, the run continues (fit released its own lock, too)
    assert len(r.history) == 2


def test_finishing_a_run_written_before_the_svg_charts_leaves_one_chart_of_each(tmp_path):
    # a run resumed from an earlier version held matplotlib PNGs of the same charts; they would show stale twice
    from cnnlab.train.rundir import RunDir

    plots = tmp_path / "plots"
    plots.mkdir()
    for name in ("learning_curves.png", "confusion_matrix.png", "overlays.png"):
        (plots / name).write_bytes(b"\x89PNG old")
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "val_acc": 0.5}]
    RunDir(tmp_path).finish({"confusion_matrix": [[1, 0], [0, 1]], "classes": ["a", "b"]}, history, "t")
    assert sorted(p.name for p in plots.iterdir()) == ["confusion_matrix.svg", "learning_curves.svg", "overlays.png"]


def test_a_stop_between_the_results_and_the_report_is_finished_by_resume(tmp_path, monkeypatch):
    """The line on stopping said 'continue with --resume', which then refused ('already has 1 epoch'), and the
    report was missing, or had lost its charts."""
    from cnnlab.train import engine

    written = engine._report

    def stopped(path):
        (path / "plots" / "learning_curves.svg").unlink()  # a stop among the charts
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_report", stopped)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, epochs=1)
    run = tmp_path / "run"
    assert (run / "results.json").is_file() and not (run / "report.html").is_file()
    monkeypatch.setattr(engine, "_report", written)
    config = ClassifierConfig.load(run / "config.yaml")
    fit(config, resume=run, log=lambda *a: None)
    assert (run / "report.html").is_file() and (run / "plots" / "learning_curves.svg").is_file()
    with pytest.raises(CnnlabError, match="already has 1 epoch"):
        fit(config, resume=run, log=lambda *a: None)


def test_a_run_resumed_with_another_batch_size_keeps_its_place_on_the_schedule(tmp_path):
    """The schedule counts steps: 2 epochs of batch 64 continued with batch 16 were taken for half an epoch, so
    the cosine restarted near its peak; now epoch 3 has the rate an uninterrupted batch-16 run has there."""
    _fit(tmp_path, epochs=2, batch_size=64)
    run = tmp_path / "run"
    fit(ClassifierConfig.load(run / "config.yaml").replace(epochs=4, batch_size=16), resume=run, log=lambda *a: None)
    straight = _fit(tmp_path, "straight", epochs=4, batch_size=16)
    assert Run.open(run).history[2]["lr"] == pytest.approx(straight.history[2]["lr"], rel=1e-9)
