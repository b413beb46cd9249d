import json
import subprocess
import sys

import pytest
import torchvision
import yaml

from cnnlab.cli import main
from cnnlab.data import load_dataset


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "lenet"
    assert main(["train", "--epochs", "3", "--run-dir", str(path), "--quiet"]) == 0
    return path


def test_train_prints_a_results_table(trained):
    results = json.loads((trained / "results.json").read_text())
    assert 0.5 < results["test"]["accuracy"] <= 1 and results["epochs"] == 3
    config = yaml.safe_load((trained / "config.yaml").read_text())
    assert config["model"] == "lenet5" and config["data"] == "digits" and config["epochs"] == 3


def test_train_options_override_the_config_file(tmp_path, capsys, trained):
    code, out, _ = run(capsys, "train", "--config", trained / "config.yaml", "--epochs", "1", "--lr", "0.01",
                       "--no-augment", "--run-dir", tmp_path / "r", "--model-arg", "act=relu")
    assert code == 0 and "test accuracy" in out and str(tmp_path / "r") in out
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert (config["epochs"], config["lr"], config["augment"], config["model_kwargs"]) == (1, 0.01, False,
                                                                                          {"act": "relu"})


def test_resume_continues_with_more_epochs(tmp_path, capsys):
    assert run(capsys, "train", "--epochs", "1", "--run-dir", tmp_path / "r", "--quiet")[0] == 0
    code, out, _ = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")
    assert code == 0 and "at epoch 2/2" in out  # quiet, as the run was started
    assert json.loads((tmp_path / "r" / "results.json").read_text())["epochs"] == 2
    code, _, err = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")
    assert code == 2 and "already has 2 epochs" in err


def test_evaluate_and_predict(trained, tmp_path, capsys):
    code, out, _ = run(capsys, "evaluate", trained)
    assert code == 0 and "accuracy" in out and "confusion matrix" in out
    data = json.loads(run(capsys, "evaluate", trained, "--format", "json")[1])
    results = json.loads((trained / "results.json").read_text())
    assert data["accuracy"] == pytest.approx(results["test"]["accuracy"]) or results["stopped_early"] is False
    test = load_dataset("digits").test
    for i in range(3):
        torchvision.utils.save_image(test.images[i], tmp_path / f"d{i}.png")
    code, out, _ = run(capsys, "predict", trained, tmp_path / "d0.png", tmp_path / "d1.png", "--top-k", "3")
    assert code == 0 and out.count("%") == 6
    preds = json.loads(run(capsys, "predict", trained, *(tmp_path / f"d{i}.png" for i in range(3)),
                           "--format", "json")[1])
    assert [p["top"][0]["class"] for p in preds] == [str(int(v)) for v in test.labels[:3]]
    assert all(abs(sum(t["probability"] for t in p["top"]) - 1) < 0.5 for p in preds)


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "resnt18"], "unknown model 'resnt18'; did you mean 'resnet18'"),
    (["train", "--data", "digts"], "unknown dataset 'digts'; did you mean 'digits'"),
    (["train", "--data", "folder:/no/such/dir"], "does not exist"),
    (["train", "--model", "resnet18", "--image-size", "16"], "needs inputs of at least 32x32"),
    (["train", "--epochs", "-3"], "epochs must be positive"),
    (["train", "--model-arg", "small_input"], "is not KEY=VALUE"),
    (["train", "--resume", "/no/such/run"], "does not exist"),
    (["evaluate", "/no/such/run"], "does not exist"),
    (["predict", "/no/such/run", "x.png"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_checkpoint_and_data_mismatches(trained, tmp_path, capsys):
    code, _, err = run(capsys, "evaluate", trained, "--data", "faces")
    assert code == 2 and "classes" in err and "do not match" in err
    code, _, err = run(capsys, "predict", trained, tmp_path / "missing.png")
    assert code == 2 and "does not exist" in err
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, _, err = run(capsys, "predict", trained, tmp_path / "corrupt.png")
    assert code == 2 and "cannot read image" in err
    (tmp_path / "fake.safetensors").write_bytes(b"garbage")
    code, _, err = run(capsys, "evaluate", tmp_path / "fake.safetensors")
    assert code == 2 and "not a readable cnnlab checkpoint" in err


def test_datasets_lists_builtins_with_sizes(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0 and "digits" in out and "1797" in out and "folder" in out
    records = {r["name"]: r for r in json.loads(run(capsys, "datasets", "--format", "json")[1])}
    assert records["faces"]["images"] == 200 and records["textures"]["classes"] == 3


def test_train_help_lists_every_option():
    from dataclasses import fields

    from cnnlab.train import TrainConfig

    out = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--help"], capture_output=True, text=True).stdout
    for f in fields(TrainConfig):
        if f.name not in ("model_kwargs", "transfer"):
            assert "--" + f.name.replace("_", "-") in out, f.name
    assert "examples:" in out


def test_a_checkpoint_of_another_architecture_is_refused(trained, tmp_path, capsys):
    import shutil

    from cnnlab.train.checkpoint import load_weights, save_weights

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    weights, meta = load_weights(copy / "checkpoints" / "best.safetensors")
    import cnnlab

    wrong = cnnlab.create_model("resnet18", in_chans=1, num_classes=10, small_input=True)
    for which in ("best", "last"):  # lenet5 metadata, resnet18 weights
        save_weights(copy / "checkpoints" / f"{which}.safetensors", wrong, meta)
    code, _, err = run(capsys, "evaluate", copy)
    assert code == 2 and "does not fit lenet5" in err and len(err.strip().splitlines()) == 1


def test_a_saved_config_starts_a_new_run_and_resume_refuses_changes(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "train", "--config", trained / "config.yaml", "--seed", "1", "--epochs", "1")
    assert code == 0 and "runs/lenet5-digits-" in out
    for argv, what in ((["--model", "resnet18"], "model"), (["--data", "faces"], "data"),
                       (["--run-dir", tmp_path / "elsewhere"], "run_dir")):
        code, _, err = run(capsys, "train", "--resume", trained, "--epochs", "9", *argv)
        assert code == 2 and f"cannot change {what}" in err
