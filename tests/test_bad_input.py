"""Every kind of bad input a new user tried: one clear line and exit code 2 (or a warning, or a sensible
value), never a traceback, a crash or a silent wrong run; and nothing lost (files keep the umask's
permissions, a run that never completed an epoch can be started again)."""

import os
import stat

import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from tests.conftest import one_line_error, run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "lenet"
    assert main(["train", "--epochs", "1", "--run-dir", str(path), "--quiet"]) == 0
    return path


# --- values checked from their declaration, on the command line -------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["train", "--gamma", "-1"], "--gamma: must be a number above 0 and at most 1, got -1"),
    (["train", "--lr", "1e30"], "--lr: must be a number above 0 and at most 10, got 1e+30"),
    (["train", "--l1", "1e30"], "--l1: must be a number from 0 to 1"),
    (["train", "--aux-weight", "-1"], "--aux-weight: must be a number from 0 to 10"),
    (["train", "--val-fraction", "0"], "--val-fraction: must be a number above 0 and below 1, got 0"),
    (["train", "--epochs", "1.5"], "--epochs: must be an integer from 1 to 100000, got '1.5'"),
    (["train", "--threads", "100000"], "--threads: must be an integer from 1 to 4096"),
    (["train", "--image-size", "0"], "--image-size: must be an integer from 1 to 4096, got 0"),
    (["train", "--image-size", "100000"], "--image-size: must be an integer from 1 to 4096"),
    (["train", "--device", "tpu"], "--device: must be one of auto, cpu, cuda, cuda:N, mps, got 'tpu'"),
    (["ae", "train", "--rnn-hidden", "0"], "--rnn-hidden: must be an integer from 1 to 65536, got 0"),
    (["ae", "train", "--latent-dim", "100000000"], "--latent-dim: must be an integer from 1 to 65536"),
    (["ae", "train", "--image-size", "0"], "--image-size: must be an integer from 1 to 4096"),
    (["segment", "train", "--image-size", "0"], "--image-size: must be an integer from 1 to 4096"),
    (["experiment", "transfer", "--methods", ","], "--methods: must be a comma-separated list"),
    (["experiment", "transfer", "--seeds", "1.5"], "--seeds: must be a comma-separated list, each an integer"),
    (["experiment", "transfer", "--budgets", "0,2"], "--budgets: must be a comma-separated list"),
])
def test_a_value_out_of_its_declared_range_is_one_line(capsys, argv, message):
    assert message in one_line_error(capsys, *argv)


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "RUN", "--batch-size", "0"], "--batch-size: must be an integer from 1 to 65536, got 0"),
    (["evaluate", "RUN", "--batch-size", "-5"], "--batch-size: must be an integer from 1 to 65536, got -5"),
    (["evaluate", "RUN", "--device", "tpu"], "--device: must be one of auto, cpu, cuda, cuda:N, mps"),
    (["segment", "evaluate", "RUN", "--batch-size", "0"], "--batch-size: must be an integer from 1"),
    (["predict", "RUN", "x.png", "--top-k", "0"], "--top-k: must be an integer from 1 to 1000, got 0"),
    (["ae", "generate", "RUN", "-n", "100000000"], "-n: must be an integer from 1 to 1000000"),
    (["ae", "interpolate", "RUN", "1", "2", "--steps", "100000"], "--steps: must be an integer from 2 to 100"),
    (["ae", "features", "RUN", "--labels", "5,,10"], "--labels: must be a comma-separated list"),
])
def test_the_options_of_every_command_are_checked_the_same_way(trained, capsys, argv, message):
    assert message in one_line_error(capsys, *[trained if a == "RUN" else a for a in argv])


def test_a_model_argument_of_the_wrong_type_is_refused(capsys):
    import cnnlab

    assert "lenet5: small_input must be true or false, got 'maybe'" in one_line_error(
        capsys, "train", "--model-arg", "small_input=maybe", "--epochs", "1")
    with pytest.raises(CnnlabError, match="resnet18: zero_init_residual must be true or false, got 1"):
        cnnlab.create_model("resnet18", zero_init_residual=1)


# --- the same rules for a config file, naming the key and the file ------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("epochs: true\n", "epochs must be an integer from 1 to 100000, got True"),
    ("epochs: 2.5\n", "epochs must be an integer from 1 to 100000, got 2.5"),
    ("quiet: 'no'\n", "quiet must be true or false, got 'no'"),
    ("channels_last: 'yes'\n", "channels_last must be true, false or null (unset), got 'yes'"),  # null: the model's
    ("image_size: big\n", "image_size must be an integer from 1 to 4096, got 'big'"),
    ("val_fraction: half\n", "val_fraction must be a number above 0 and below 1, got 'half'"),
    ("data: 5\n", "data must be text, got 5"),
    ("lr: [0.1, 0.2]\n", "lr must be a number above 0 and at most 10, got [0.1, 0.2]"),
    ("model_kwargs: 3\n", "model_kwargs must be a mapping of key: value, got 3"),
    ("run_kind: spaceship\n", "no kind of run named 'spaceship'"),
    ("model: resnet18\nmodel_kwargs: {small_inputs: true}\n",
     "resnet18 has no argument 'small_inputs'; its arguments: num_classes, in_chans, drop_rate, small_input"),
    ("model: resnet18\nmodel_kwargs: {small_input: 'yes'}\n", "resnet18: small_input must be true or false"),
])
def test_a_config_file_value_of_the_wrong_type_names_the_key_and_the_file(tmp_path, capsys, text, message):
    (tmp_path / "c.yaml").write_text(text)
    err = one_line_error(capsys, "train", "--config", tmp_path / "c.yaml", "--epochs", "1")
    assert message in err and (f"config file '{tmp_path / 'c.yaml'}'" in err or "kind of run" in err)
    assert "--image-size" not in err  # a flag the user never gave is never blamed


def test_a_config_file_that_is_not_yaml_says_what_is_wrong_and_where(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("epochs: [1, 2\nlr: 0.1\n")  # the list never closed
    err = one_line_error(capsys, "train", "--config", tmp_path / "c.yaml")
    assert err.endswith("is not valid YAML: expected ',' or ']', but got ':' (line 2, column 3)"), err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_a_cuda_device_on_a_machine_without_cuda_is_named_as_given(capsys):
    err = one_line_error(capsys, "train", "--device", "cuda:1")
    assert err == "cnnlab: error: --device cuda:1 was asked for but no CUDA GPU is available; use --device cpu or auto"


def test_a_models_arguments_are_checked_before_the_data_loads(tmp_path, capsys, monkeypatch):
    import cnnlab.data

    def no_loading(*args, **kwargs):
        raise AssertionError("the data loaded before the model's arguments were checked")

    monkeypatch.setattr(cnnlab.data, "load_dataset", no_loading)
    err = one_line_error(capsys, "train", "--model", "resnet18", "--model-arg", "small_inputs=true",
                         "--run-dir", tmp_path / "run")
    assert "resnet18 has no argument 'small_inputs'" in err and not (tmp_path / "run").exists()
    with pytest.raises(CnnlabError, match="unknown activation 'relu7'; did you mean 'relu', 'relu6'"):
        cnnlab.ClassifierConfig(model="resnet18", model_kwargs={"act_layer": "relu7"}).validate()


def test_a_config_file_of_random_bytes_or_a_directory_is_one_line(tmp_path, capsys):
    (tmp_path / "noise.yaml").write_bytes(os.urandom(300))
    assert "is not valid YAML" in one_line_error(capsys, "train", "--config", tmp_path / "noise.yaml")
    err = one_line_error(capsys, "train", "--config", tmp_path)
    assert f"config file '{tmp_path}' is a directory, not a file" in err
    (tmp_path / "ae.yaml").write_text("run_kind: autoencoder\nkind: vae\n")
    assert "configures a run of kind autoencoder; use cnnlab ae train --config" in one_line_error(
        capsys, "train", "--config", tmp_path / "ae.yaml")


# --- where a run or a tool writes ---------------------------------------------------------------------------------
def test_a_run_directory_that_cannot_be_written_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    assert "is a file, not a directory" in one_line_error(capsys, "train", "--run-dir", tmp_path / "file")
    assert f"cannot be created: '{tmp_path / 'file'}' is a file" in one_line_error(
        capsys, "train", "--run-dir", tmp_path / "file" / "run")
    (tmp_path / "ro").mkdir(mode=0o555)
    if os.geteuid() == 0:  # root writes anywhere: the file system's refusal is simulated
        from pathlib import Path

        real = Path.mkdir

        def refused(self, *args, **kwargs):
            if str(self).startswith(str(tmp_path / "ro")) or str(self).startswith("runs"):
                raise PermissionError(13, "Permission denied")
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", refused)
    assert "cannot be created: permission denied; choose another --run-dir" in one_line_error(
        capsys, "train", "--run-dir", tmp_path / "ro" / "run")
    monkeypatch.chdir(tmp_path / "ro")  # the default runs/ in a read-only directory
    assert "permission denied" in one_line_error(capsys, "train", "--epochs", "1")


def test_a_tool_output_that_cannot_be_written_is_one_line(tmp_path, capsys):
    from cnnlab.ae import AEConfig
    from cnnlab.train import fit

    r = fit(AEConfig(epochs=1, quiet=True, run_dir=str(tmp_path / "ae")), log=lambda *a: None)
    (tmp_path / "file").write_text("x")
    assert f"output directory '{tmp_path / 'file'}' is a file, not a directory; choose another --out" in one_line_error(
        capsys, "ae", "encode", r.run_dir, "--out", tmp_path / "file")


def test_files_of_a_run_follow_the_umask(tmp_path):
    from cnnlab._io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600


def test_a_trained_runs_files_are_readable_by_others(trained):
    for f in ("config.yaml", "report.html", "checkpoints/last.safetensors", "checkpoints/state.pt"):
        assert stat.S_IMODE((trained / f).stat().st_mode) & 0o044 == 0o044, f


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch):
    from cnnlab.classify import ClassifierConfig
    from cnnlab.train import RunDir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt: "20261201-120000")
    first, second = RunDir.create(ClassifierConfig()), RunDir.create(ClassifierConfig())
    assert first.path.name == "lenet5-digits-20261201-120000" and second.path.name == first.path.name + "-2"


# --- memory and cores: refused before they crash -------------------------------------------------------------------
def test_data_resized_beyond_the_memory_is_refused_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr("cnnlab.data.prepare.available_memory", lambda *a: 2**30)
    err = one_line_error(capsys, "train", "--data", "faces", "--model", "resnet18", "--image-size", "2048")
    assert "resizing the 200 images of 'faces' to 2048x2048 would take 3.1 GiB" in err and "1.0 GiB are free" in err


def test_a_training_step_beyond_the_memory_is_refused_in_one_line(capsys, monkeypatch):
    from cnnlab.train.setup import step_memory

    monkeypatch.setattr("cnnlab.train.setup.available_memory", lambda *a: 2**30)
    err = one_line_error(capsys, "train", "--data", "faces", "--model", "resnet18", "--small-input", "--image-size",
                         "256")
    assert "one training step needs about" in err and "lower --batch-size or --image-size" in err
    model = __import__("cnnlab").create_model("resnet18", small_input=True)
    weights = 16 * sum(p.numel() for p in model.parameters())  # weights, gradients and two optimiser moments
    small, large = step_memory(model, (2, 3, 32, 32)) - weights, step_memory(model, (8, 3, 32, 32)) - weights
    assert large == 4 * small > 0  # the activations grow with the batch, the weights do not


# --- options a kind ignores are said, not silently used -----------------------------------------------------------
def test_sparse_options_on_a_plain_autoencoder_are_warned_about_and_ignored(tmp_path, capsys):
    code, out, err = run(capsys, "ae", "train", "--kind", "conv", "--topk", "2", "--beta", "4", "--epochs", "1",
                         "--quiet", "--device", "cpu", "--run-dir", tmp_path / "r")
    assert code == 0 and "--topk applies to --kind sparse; --kind conv ignores it" in err
    assert "--beta applies to --kind vae" in err
    assert "active code units  100.0%" in out  # not made sparse


def test_noise_needs_a_level(capsys):
    assert "noise 'gaussian' needs a level (example: gaussian:0.3)" in one_line_error(
        capsys, "ae", "train", "--noise", "gaussian", "--epochs", "1")


# --- messages that lead somewhere ---------------------------------------------------------------------------------
def test_an_interrupted_autoencoder_run_is_continued_by_its_own_command(tmp_path, monkeypatch):
    from cnnlab.ae import AEConfig
    from cnnlab.train import RunDir, fit

    original = RunDir.log_epoch

    def interrupted(self, history):
        original(self, history)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "log_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt) as e:
        fit(AEConfig(epochs=3, quiet=True, run_dir=str(tmp_path / "ae")), log=lambda *a: None)
    assert e.value.resume == ("cnnlab ae train", tmp_path / "ae")


def test_a_run_killed_in_its_first_epoch_can_be_resumed_or_started_again(trained, tmp_path, capsys):
    import shutil

    for how in ("--resume", "--run-dir"):
        dead = tmp_path / how.strip("-")
        dead.mkdir()
        for name in ("config.yaml", "meta.json"):  # what a SIGKILL in epoch 1 leaves
            shutil.copy(trained / name, dead / name)
        (dead / ".metrics.csv.1.tmp").write_text("half")
        argv = ["--resume", dead, "--epochs", "1"] if how == "--resume" else ["--run-dir", dead, "--epochs", "1"]
        code, out, err = run(capsys, "train", *argv, "--quiet")
        assert code == 0 and "test accuracy" in out, err
        assert (dead / "checkpoints" / "last.safetensors").is_file() and not (dead / ".metrics.csv.1.tmp").exists()


def test_a_corrupt_training_state_is_one_line_without_pytorchs_notice(trained, tmp_path, capsys):
    import shutil

    shutil.copytree(trained, tmp_path / "run")
    for junk in (os.urandom(200), b"\x80\x10" + os.urandom(198)):  # the second: a pickle header torch warns of
        (tmp_path / "run" / "checkpoints" / "state.pt").write_bytes(junk)
        err = one_line_error(capsys, "train", "--resume", tmp_path / "run", "--epochs", "2")
        assert "is not a readable training state (corrupt, or not written by cnnlab)" in err
        assert "weights_only" not in err and "Weights only" not in err


def test_a_directory_where_a_checkpoint_file_belongs_is_called_a_directory(tmp_path, capsys):
    from cnnlab.train.checkpoint import load_weights

    (tmp_path / "w.safetensors").mkdir()
    with pytest.raises(CnnlabError, match="is a directory, not a file"):
        load_weights(tmp_path / "w.safetensors")


def test_an_image_argument_that_is_a_non_ascii_digit_is_read_as_a_file(tmp_path, capsys):
    from cnnlab.ae import AEConfig
    from cnnlab.train import fit

    r = fit(AEConfig(epochs=1, quiet=True, run_dir=str(tmp_path / "ae")), log=lambda *a: None)
    assert "image '²' does not exist" in one_line_error(capsys, "ae", "interpolate", r.run_dir, "²", "1")
    assert "image '٣' does not exist" in one_line_error(capsys, "ae", "interpolate", r.run_dir, "٣", "1")


def test_a_checkpoint_file_means_what_its_run_directory_means(tmp_path, capsys):
    """Tools given RUN/checkpoints/last.safetensors split the data with the run's seed and write into RUN."""
    import json

    from cnnlab.ae import AEConfig
    from cnnlab.train import fit

    r = fit(AEConfig(epochs=2, seed=7, quiet=True, run_dir=str(tmp_path / "ae")), log=lambda *a: None)
    code, _, _ = run(capsys, "ae", "evaluate", r.run_dir / "checkpoints" / "last.safetensors")
    assert code == 0 and not (r.run_dir / "checkpoints" / "evaluate").exists()
    result = json.loads((r.run_dir / "evaluate" / "evaluate.json").read_text())
    own = next(v for k, v in result.items() if "training distribution" in k)
    assert own["mse"] == pytest.approx(r.test["mse"], rel=1e-4) and own["count"] == r.test["count"]
    copied = tmp_path / "lone.safetensors"  # outside its run: its metadata still says how the data was split
    copied.write_bytes((r.run_dir / "checkpoints" / "last.safetensors").read_bytes())
    from cnnlab.run import Run

    assert Run.open(copied).split == {"seed": 7, "val_fraction": 0.15, "test_fraction": 0.15}
    assert Run.open(copied).evaluate()["mse"] == pytest.approx(r.test["mse"], rel=1e-4)


def test_the_engine_can_be_given_any_recipe(tmp_path):
    """A kind of run is a package: the loop takes a recipe it has never heard of."""
    from cnnlab.classify import ClassifierConfig, ClassifierRecipe
    from cnnlab.train import fit

    class Frozen(ClassifierRecipe):  # trains only the classifier head of a new model
        def param_groups(self, config, model):
            for p in model.parameters():
                p.requires_grad_(False)
            model.get_classifier().requires_grad_(True)
            return None

    r = fit(ClassifierConfig(epochs=1, quiet=True, run_dir=str(tmp_path / "r")), recipe=Frozen(),
            log=lambda *a: None)
    first = dict(r.model.named_parameters())["features.c1.conv.weight"]
    assert not first.requires_grad and torch.isfinite(first).all()


def test_threads_above_the_cores_available_are_refused(capsys):
    from cnnlab._machine import available_cores

    err = one_line_error(capsys, "train", "--threads", available_cores() + 1, "--epochs", "1")
    assert f"--threads must be at most the {available_cores()} CPU cores this process may use" in err


def test_a_hand_written_config_keeps_its_run_directory(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(f"epochs: 1\nquiet: true\nrun_dir: {tmp_path / 'mine'}\n")
    code, out, _ = run(capsys, "train", "--config", tmp_path / "c.yaml")
    assert code == 0 and (tmp_path / "mine" / "results.json").is_file()


# --- what a second new-user pass found ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    from cnnlab.ae import AEConfig
    from cnnlab.train import fit

    return fit(AEConfig(epochs=1, quiet=True, run_dir=str(tmp_path_factory.mktemp("ae") / "conv")),
               log=lambda *a: None).run_dir


def _npz(path, **arrays):
    import numpy as np

    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_files_that_cannot_mean_one_thing_are_refused(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    x4 = rng.integers(0, 255, (40, 8, 8, 4), dtype=np.uint8)
    y = np.arange(40) % 2
    assert "neither N x H x W x C nor N x C x H x W with C 1 (gray) or 3 (RGB)" in one_line_error(
        capsys, "train", "--data", _npz(tmp_path / "four.npz", x=x4, y=y), "--epochs", "1")
    x = rng.integers(0, 255, (40, 8, 8), dtype=np.uint8)
    gaps = np.array([0, 2, 4] * 13 + [0])  # labels 1 and 3 unused
    assert "labels 1, 3 have no image; number the classes 0..K-1 without gaps" in one_line_error(
        capsys, "train", "--data", _npz(tmp_path / "gaps.npz", x=x, y=gaps), "--epochs", "1")
    assert "'classes' names 'a' more than once" in one_line_error(
        capsys, "train", "--data", _npz(tmp_path / "names.npz", x=x, y=y, classes=np.array(["a", "a"])))


def test_a_transfer_keeps_the_sources_architecture(trained, tmp_path, capsys):
    for argv in (["--model-arg", "act=relu"], ["--small-input"]):
        err = one_line_error(capsys, "transfer", "--from", trained, "--data", "digits@classes=5-9", "--epochs", "1",
                             "--run-dir", tmp_path / "t", *argv)
        assert "the source was built with the default" in err and "the architecture comes from the source" in err


@pytest.mark.parametrize("argv, flag", [(["--init", "xavier_uniform"], "--init"),
                                        (["--monitor", "val_acc"], "--monitor")])
def test_resume_refuses_options_that_shaped_what_was_trained(trained, capsys, argv, flag):
    assert f"cannot change {flag}" in one_line_error(capsys, "train", "--resume", trained, "--epochs", "5", *argv)


def test_a_run_whose_checkpoints_are_gone_is_not_trained_over(trained, tmp_path, capsys):
    import shutil

    shutil.copytree(trained, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "checkpoints")
    err = one_line_error(capsys, "train", "--resume", tmp_path / "run", "--epochs", "3")
    assert "has trained epochs but no checkpoint" in err and (tmp_path / "run" / "results.json").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--from", "RUN", "--model", "resnet18"], "drop --model"),
    (["--seeds", "0,0"], "--seeds: names 0 twice in [0, 0]; give each once"),
    (["--methods", "scratch,scratch"], "names 'scratch' twice"),
    (["--target", "a=digits@classes=5-9", "--target", "a=textures"], "--target a is given twice"),
    (["--run-dir", "FILE"], "is a file, not a directory"),
])
def test_experiment_settings_that_cannot_mean_one_thing_are_refused(trained, tmp_path, capsys, argv, message):
    (tmp_path / "file").write_text("x")
    argv = [trained if a == "RUN" else tmp_path / "file" if a == "FILE" else a for a in argv]
    assert message in one_line_error(capsys, "experiment", "transfer", *argv)


@pytest.mark.parametrize("argv, message", [
    (["efficiency", "--quick", "--channels", "8", "--reduce", "64"], "--reduce 64 leaves no channel of --channels 8"),
    (["transfer", "--model", "nosuch"], "unknown model 'nosuch'"),
    *([] if torch.cuda.is_available() else [([name, "--quick", "--device", "cuda"], "--device cuda")
                                            for name in ("depth", "activations", "init", "regularization",
                                                         "architectures", "transfer")]),
])
def test_an_experiment_that_cannot_run_here_creates_nothing(tmp_path, capsys, argv, message):
    """Refused after its directory was made (a traceback for --reduce above --channels; a device this machine
    lacks), an experiment left one that could neither be resumed ("--device cuda ... no CUDA GPU") nor reused
    ("already exists")."""
    assert message in one_line_error(capsys, "experiment", *argv, "--run-dir", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_an_unfinished_efficiency_directory_is_not_offered_a_resume_it_does_not_have(tmp_path, capsys):
    from cnnlab.experiments import EfficiencySettings
    from cnnlab.experiments._study import Study

    Study.create("efficiency", EfficiencySettings(), tmp_path / "eff", resumable=False)  # stopped before its end
    for argv in (("experiment", "efficiency", "--quick", "--run-dir", tmp_path / "eff"), ("report", tmp_path / "eff")):
        err = one_line_error(capsys, *argv)
        assert "--resume" not in err, err


def test_the_report_of_a_damaged_experiment_directory_is_one_line(tmp_path, capsys):
    (tmp_path / "experiment.json").write_text('{"experiment": "efficiency", "settings": {}}')
    for text, message in (("[]", "holds an array, not a JSON object"), ('{"summary": 5}', "holds no table"),
                          ('{"summary": [1]}', "holds no table"), ("{", "is not valid JSON")):
        (tmp_path / "summary.json").write_text(text)
        assert f"summary.json' {message}" in one_line_error(capsys, "report", tmp_path)
    (tmp_path / "summary.json").write_text('{"summary": []}')
    (tmp_path / "experiment.json").write_text("[1]")
    assert "experiment.json' holds an array, not a JSON object; the experiment directory is damaged" in \
        one_line_error(capsys, "report", tmp_path)


def test_a_damaged_experiment_json_is_one_line(tmp_path, capsys):
    for text in ("[1, 2]", '{"experiment": "transfer", "settings": [1]}', "not json"):
        (tmp_path / "experiment.json").write_text(text)
        assert "is not an experiment directory" in one_line_error(capsys, "experiment", "transfer", "--resume",
                                                                  tmp_path)


def test_a_resumed_run_whose_meta_json_is_damaged_is_one_line_and_continues_once_it_is_deleted(trained, tmp_path,
                                                                                              capsys):
    import json
    import shutil

    run_dir = shutil.copytree(trained, tmp_path / "run")
    meta = run_dir / "meta.json"
    for data, message in ((b"{not json", "is not valid JSON"), (b"\xff\xfe\x00", "is not valid JSON"),
                          (b"null", "holds null, not a JSON object"),  # (it said 'a JSON NoneType', Python's)
                          (b"[]", "holds an array, not a JSON object")):
        meta.write_bytes(data)
        line = one_line_error(capsys, "train", "--resume", run_dir, "--epochs", "2", "--quiet")
        assert message in line and "delete that file to continue the run" in line
    assert "holds an array, not a JSON object; the run directory is damaged; delete that file to read the run " \
           "without its record of the sessions it trained in" in one_line_error(capsys, "report", run_dir)
    meta.unlink()  # as the lines say: the checkpoints hold what the run needs
    assert run(capsys, "report", run_dir)[0] == 0
    # --device cpu: auto would take a GPU where there is one
    assert run(capsys, "train", "--resume", run_dir, "--epochs", "2", "--quiet", "--device", "cpu")[0] == 0
    (session,) = json.loads(meta.read_text())["sessions"]  # its earlier sessions are not known: not guessed
    assert {k: session[k] for k in ("from_epoch", "device", "precision", "channels_last")} == {
        "from_epoch": 2, "device": "cpu", "precision": "fp32", "channels_last": True}


def test_the_autoencoder_tools_refuse_what_they_cannot_do(ae_run, tmp_path, capsys):
    from cnnlab.ae import AEConfig
    from cnnlab.train import fit

    assert "--labels 1000: the training split of 'digits' has" in one_line_error(
        capsys, "ae", "features", ae_run, "--labels", "5,1000")
    photos = fit(AEConfig(data="photos", kind="dense", epochs=1, quiet=True, run_dir=str(tmp_path / "p")),
                 log=lambda *a: None).run_dir
    assert "has no labels to train a classifier with" in one_line_error(capsys, "ae", "features", photos)
    assert "index -1 is outside the test split" in one_line_error(capsys, "ae", "interpolate", ae_run, "-1", "2")
    assert "is unlabelled); --arithmetic needs labelled data" in one_line_error(
        capsys, "ae", "interpolate", photos, "1", "2", "--arithmetic", "a", "b")
    assert "must be at most --epochs" in one_line_error(capsys, "ae", "train", "--kind", "vae", "--kl-warmup", "10",
                                                        "--epochs", "2")
    assert "output directory is an empty path; give one with --out" in one_line_error(
        capsys, "ae", "encode", ae_run, "--out", "")


def test_a_denoising_runs_config_says_what_trained(tmp_path):
    from cnnlab.ae import AEConfig
    from cnnlab.run import load_config
    from cnnlab.train import fit

    r = fit(AEConfig(kind="denoising", epochs=1, quiet=True, run_dir=str(tmp_path / "d")), log=lambda *a: None)
    config = load_config(r.run_dir / "config.yaml")
    assert (config.body, config.noise) == ("conv", "gaussian:0.3")


@pytest.mark.parametrize("argv, warning", [
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum applies to --optimizer sgd"),
    (["--scheduler", "cosine", "--step-size", "5"], "--step-size applies to --scheduler step"),
    (["--aux-weight", "0.5"], "--aux-weight applies to models with auxiliary classifiers"),
])
def test_options_a_setting_ignores_are_warned_about(tmp_path, capsys, argv, warning):
    code, _, err = run(capsys, "train", "--epochs", "1", "--quiet", "--run-dir", tmp_path / "r", *argv)
    assert code == 0 and f"cnnlab: warning: {warning}" in err


def test_command_line_slips_are_one_line(capsys, tmp_path):
    assert one_line_error(capsys) == "cnnlab: error: choose a command (see 'cnnlab --help')"
    assert one_line_error(capsys, "experiment") == (  # it named only the first of the seven
        "cnnlab: error: choose a command: cnnlab experiment transfer, efficiency, depth, activations, init, "
        "regularization, architectures (see 'cnnlab experiment --help')")
    assert "(see 'cnnlab segment train --help')" in one_line_error(capsys, "segment", "train", "--model", "x")
    assert "unrecognized arguments: --ep 1" in one_line_error(capsys, "train", "--ep", "1")  # no abbreviations
    assert "lenet5 has no argument 'foo'; its arguments: num_classes, in_chans, act" in one_line_error(
        capsys, "train", "--model-arg", "foo=1")
    assert "init 'normal': std must be a number, got 'abc'" in one_line_error(capsys, "train", "--init",
                                                                             "normal:std=abc")
    assert f"weights file '{tmp_path}' is a directory" in one_line_error(capsys, "train", "--init", f"file:{tmp_path}")
    assert "joins nothing on one side of its '+'" in one_line_error(capsys, "train", "--data", "+digits")
    (tmp_path / "dup.yaml").write_text("epochs: 1\nepochs: 2\n")
    assert "the key 'epochs' appears twice" in one_line_error(capsys, "train", "--config", tmp_path / "dup.yaml")


def test_training_time_adds_up_over_a_resume(tmp_path):
    import json

    from cnnlab.classify import ClassifierConfig
    from cnnlab.train import fit

    first = fit(ClassifierConfig(epochs=2, quiet=True, run_dir=str(tmp_path / "r")), log=lambda *a: None)
    before = json.loads((first.run_dir / "results.json").read_text())["train_seconds"]
    fit(ClassifierConfig.load(first.run_dir / "config.yaml").replace(epochs=3), resume=first.run_dir,
        log=lambda *a: None)
    assert json.loads((first.run_dir / "results.json").read_text())["train_seconds"] > before


def test_python_callers_get_a_cnnlab_error_for_arguments_of_the_wrong_kind(trained):
    import cnnlab

    for call, message in [(lambda: cnnlab.list_models(3), "list_models takes a name pattern such as 'resnet*'"),
                          (lambda: cnnlab.fit({"model": "lenet5"}), "fit takes a run's config, e.g. cnnlab."),
                          (lambda: cnnlab.Run.open(trained, holds="banana"),
                           "holds must be one of autoencoder, classifier, segmenter, got 'banana'")]:
        with pytest.raises(CnnlabError) as e:
            call()
        assert message in str(e.value)


def test_an_option_the_transfer_mode_ignores_is_not_checked_against_the_others(trained, tmp_path, capsys):
    code, _, err = run(capsys, "transfer", "--from", trained, "--mode", "feature-extraction", "--head-epochs", "1",
                       "--data", "digits@classes=5-9@labels=10", "--epochs", "1", "--quiet",
                       "--run-dir", tmp_path / "t")
    assert code == 0 and "--head-epochs applies to --mode fine-tune" in err, err  # a warning, not 'fewer than'
    assert "must be fewer than --epochs (1)" in one_line_error(
        capsys, "transfer", "--from", trained, "--mode", "fine-tune", "--head-epochs", "1", "--data", "digits",
        "--epochs", "1")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes (POSIX)")
def test_a_path_that_exists_but_is_no_regular_file_is_not_said_to_be_missing(tmp_path, capsys):
    """A named pipe (or /dev/zero) given as an image, a config, a checkpoint or weights was said not to exist."""
    import re

    import cnnlab
    from cnnlab._images import read_image_file

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    said = f"'{fifo}' is not a regular file (a pipe, socket or device); give a file"
    assert one_line_error(capsys, "train", "--config", fifo) == f"cnnlab: error: config file {said}"
    assert one_line_error(capsys, "evaluate", fifo) == f"cnnlab: error: checkpoint {said}"
    with pytest.raises(CnnlabError, match=f"^weights file {re.escape(said)}$"):
        cnnlab.create_model("lenet5", weights=str(fifo))
    with pytest.raises(CnnlabError, match=f"^image {re.escape(said)}$"):
        read_image_file(fifo, 1)  # what predict reads its images with
    assert one_line_error(capsys, "train", "--config", tmp_path / "none.yaml").endswith("' does not exist")


def test_a_damaged_metrics_csv_or_results_json_is_one_line_naming_the_file(trained, tmp_path, capsys):
    """cnnlab report was a traceback for a metrics.csv row longer or shorter than its header (a TypeError from
    float()), for bytes that are no text, and for a results.json whose 'test' is no table; a results.json naming
    another checkpoint sent every tool looking for '7.safetensors'."""
    import shutil

    run_dir = shutil.copytree(trained, tmp_path / "run")
    csv, results = run_dir / "metrics.csv", run_dir / "results.json"
    kept = csv.read_bytes()
    for data, message in ((b"epoch,loss\n1,0.5,9\n", "line 2 has 3 values where its header names 2"),
                          (b"epoch,loss\n1\n", "line 2 has 1 values where its header names 2"),
                          (b"\xff\xfe\x00garbage", "is not a readable CSV table")):
        csv.write_bytes(data)
        assert f"'{csv}' {message}" in one_line_error(capsys, "report", run_dir)
    csv.write_bytes(kept.replace(b"\n", b"\n\n"))  # blank lines are no rows
    assert run(capsys, "report", run_dir)[0] == 0
    results.write_text('{"test": "x", "checkpoint": "last"}')
    assert f"'{results}' has no table of test metrics under 'test'" in one_line_error(capsys, "report", run_dir)
    results.write_text('{"checkpoint": 7}')
    assert f"'{results}' names the checkpoint 7, not best or last" in one_line_error(capsys, "evaluate", run_dir)
