import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torchvision
import yaml
from PIL import Image

from cnnlab._machine import cpu_description
from cnnlab.cli import main
from cnnlab.data import load_dataset
from tests.conftest import one_line_error, run


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
    # --quiet concerns the command that ran, not the run: continued without it, the epochs show
    assert code == 0 and "at epoch 2/2" in out and "epoch   2/2  train_loss" in out, out
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["quiet"] is False
    code, out, _ = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "3", "--quiet")
    assert code == 0 and "at epoch 3/3" in out and "train_loss" not in out, out
    assert json.loads((tmp_path / "r" / "results.json").read_text())["epochs"] == 3
    code, _, err = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "3")
    assert code == 2 and "already has 3 epochs" in err


def test_evaluate_and_predict(trained, tmp_path, capsys):
    code, out, _ = run(capsys, "evaluate", trained)
    assert code == 0 and "accuracy" in out and "confusion matrix" in out
    data = json.loads(run(capsys, "evaluate", trained, "--format", "json")[1])
    results = json.loads((trained / "results.json").read_text())
    assert data["accuracy"] == pytest.approx(results["test"]["accuracy"]) or results["stopped_early"] is False
    assert data["classes"] == [str(c) for c in range(10)] and len(data["confusion_matrix"]) == 10  # rows: classes
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
    (["train", "--epochs", "-3"], "argument --epochs: must be an integer from 1 to 100000, got -3"),
    (["train", "--model-arg", "small_input"], "is not KEY=VALUE"),
    (["train", "--resume", "/no/such/run"], "does not exist"),
    (["evaluate", "/no/such/run"], "does not exist"),
    (["predict", "/no/such/run", "x.png"], "does not exist"),
    (["train", "--data", "textures:size=-4"], "textures: size must be an integer from 8 to 102, got -4"),
    (["train", "--data", "shapes:count=0"], "shapes: count must be an integer >= 4, got 0"),
    (["train", "--data", "shapes:size=3"], "shapes: size must be an integer >= 8, got 3"),
    (["train", "--data", "photos:size=x"], "photos: size must be an integer from 8 to 90, got x"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1




def test_checkpoint_and_data_mismatches(trained, tmp_path, capsys):
    err = one_line_error(capsys, "evaluate", trained, "--data", "faces")
    assert "trained on 10 classes (0, 1, 2, 3, 4, 5, 6, 7, ...) but 'faces' has 2 (non-face, face)" in err
    err = one_line_error(capsys, "evaluate", trained, "--data", "textures")
    assert "10 classes" in err and "'textures' has 3 (brick, grass, gravel)" in err and "same names" in err
    err = one_line_error(capsys, "evaluate", trained, "--data", "shapes")
    assert "'shapes' has 4 (circle, square, triangle, cross)" in err
    (tmp_path / "fake.safetensors").write_bytes(b"garbage")
    assert "not a readable cnnlab checkpoint" in one_line_error(capsys, "evaluate", tmp_path / "fake.safetensors")


def test_a_run_without_results_says_it_is_unfinished_and_one_another_process_trains_says_so(trained, tmp_path,
                                                                                            capsys):
    import shutil

    from cnnlab.train.rundir import lock_dir, unlock_dir

    partial = tmp_path / "partial"
    shutil.copytree(trained, partial)
    code, _, err = run(capsys, "evaluate", partial)
    assert code == 0 and "warning" not in err, err  # finished: nothing to say
    (partial / "results.json").unlink()  # as a run stopped after epoch 3 leaves it
    code, out, err = run(capsys, "evaluate", partial)
    assert code == 0 and "accuracy" in out
    assert err == (f"cnnlab: warning: '{partial}' did not finish (no results.json): this reads its last checkpoint, "
                   f"epoch 3 of 3; cnnlab train --resume {partial} finishes it\n")
    held = lock_dir(partial)  # this process's own lock (cnnlab report holds one while it reads): not another's
    try:
        assert "did not finish" in run(capsys, "evaluate", partial)[2]
    finally:
        unlock_dir(held)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                               "os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
                               "time.sleep(60)", str(partial)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"  # as a process still training it holds it
        code, _, err = run(capsys, "predict", partial, trained.parent / "missing.png")
        assert err.startswith(f"cnnlab: warning: '{partial}' is still training (another cnnlab process is writing "
                              "it): this reads its last checkpoint so far, epoch 3 of 3\n"), err
    finally:
        holder.kill()
        holder.wait()


def test_a_checkpoint_whose_metadata_does_not_fit_its_run_is_one_line_for_every_tool(trained, tmp_path, capsys):
    """Another kind of run's checkpoint copied in, one without cnnlab metadata, metadata that lost a key or is not
    an object: predict, transfer --from and the autoencoder and segmentation tools were tracebacks (KeyError
    'model_kwargs', 'autoencoder', 'segment', 'preprocess'), where evaluate said one line."""
    import shutil
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    from cnnlab.train.checkpoint import read_metadata

    ae = tmp_path / "ae"
    assert main(["ae", "train", "--epochs", "1", "--run-dir", str(ae), "--quiet"]) == 0
    own = trained / "checkpoints" / "last.safetensors"
    weights, meta = load_file(own), read_metadata(own)
    cases = {
        "other-kind": (ae / "checkpoints" / "last.safetensors", "holds an autoencoder, but '{run}' is a classifier "
                                                                 "run (its config.yaml): the file is another run's"),
        "no-metadata": ({}, "has no cnnlab metadata"),
        "no-preprocess": ({k: v for k, v in meta.items() if k != "preprocess"},
                          "has none as its 'preprocess' where a classifier run's checkpoint has a dict"),
        "a-list": ([1, 2], "has no cnnlab metadata (not a JSON object)"),
    }
    for name, (content, message) in cases.items():
        run_dir = tmp_path / name
        shutil.copytree(trained, run_dir)
        for which in ("last", "best"):
            target = run_dir / "checkpoints" / f"{which}.safetensors"
            if isinstance(content, Path):
                shutil.copy(content, target)
            elif target.exists():
                save_file(weights, target, metadata={"cnnlab": json.dumps(content)} if content else None)
        for argv in (["predict", run_dir, trained.parent / "x.png"], ["evaluate", run_dir], ["export", run_dir],
                     ["transfer", "--from", run_dir, "--data", "digits", "--run-dir", tmp_path / f"t-{name}"],
                     ["ae", "encode", run_dir], ["segment", "evaluate", run_dir], ["explain", "filters", run_dir]):
            wrong_tool = name == "no-preprocess" and argv[0] in ("ae", "segment")  # a classifier run still
            expected = "holds a classifier, not " if wrong_tool else message.format(run=run_dir)
            assert expected in one_line_error(capsys, *argv), (name, argv)


def test_a_short_label_budget_is_said_when_the_run_trains_not_again_when_it_is_evaluated(tmp_path, capsys):
    spec = "digits@classes=0-1@labels=500"  # each class has about 125 training images
    code, _, err = run(capsys, "train", "--data", spec, "--epochs", "1", "--run-dir", tmp_path / "r", "--quiet")
    assert code == 0 and err.count("fewer training images") == 1, err
    code, out, err = run(capsys, "evaluate", tmp_path / "r")
    assert code == 0 and "accuracy" in out and "fewer training images" not in err, err


def test_evaluate_needs_the_same_class_names_in_the_same_order(trained, tmp_path, capsys):
    test = load_dataset("digits").test
    x = (test.images[:, 0] * 255).round().byte().numpy()
    y = test.labels.numpy()
    np.savez(tmp_path / "same.npz", x=x, y=y)  # classes 0..9 by default: the run's own
    code, out, _ = run(capsys, "evaluate", trained, "--data", f"npz:{tmp_path / 'same.npz'}")
    assert code == 0 and "accuracy" in out
    np.savez(tmp_path / "letters.npz", x=x, y=y, classes=np.array(list("abcdefghij")))
    err = one_line_error(capsys, "evaluate", trained, "--data", f"npz:{tmp_path / 'letters.npz'}")
    assert "trained on 10 classes (0, 1, 2" in err and "has 10 (a, b, c, d, e, f, g, h, ...)" in err
    np.savez(tmp_path / "reversed.npz", x=x, y=9 - y, classes=np.array(list("9876543210")))
    err = one_line_error(capsys, "evaluate", trained, "--data", f"npz:{tmp_path / 'reversed.npz'}")
    assert "the same 10 classes in another order (9, 8, 7" in err


@pytest.mark.parametrize("streamed", [False, True])
def test_evaluate_split_all_scores_every_image_of_a_held_out_folder(trained, tmp_path, capsys, monkeypatch,
                                                                    streamed):
    """--split test on a folder scored only the test share the run's fractions drew from it (6 of 40), and a
    folder of 20 was refused for its empty validation split; --split all scores each of its images once."""
    test = load_dataset("digits").test
    picked = [i for c in range(10) for i in np.flatnonzero(test.labels.numpy() == c)[:2]]
    for i in picked:
        (tmp_path / "held" / str(int(test.labels[i]))).mkdir(parents=True, exist_ok=True)
        grey = (test.images[i, 0] * 255).round().byte().numpy()
        Image.fromarray(grey).save(tmp_path / "held" / str(int(test.labels[i])) / f"{i}.png")
    if streamed:
        monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.000001")
    data = json.loads(run(capsys, "evaluate", trained, "--data", f"folder:{tmp_path / 'held'}", "--split", "all",
                          "--format", "json")[1])
    assert sum(map(sum, data["confusion_matrix"])) == 20
    files = sorted((tmp_path / "held").glob("*/*.png"))
    preds = json.loads(run(capsys, "predict", trained, *files, "--format", "json")[1])  # each file on its own
    right = sum(p["top"][0]["class"] == f.parent.name for p, f in zip(preds, files, strict=True))
    assert data["accuracy"] == pytest.approx(right / 20)
    assert run(capsys, "evaluate", trained, "--split", "all")[0] == 0  # the run's own data, all 1,797 digits


def test_predict_refuses_directories_missing_files_and_non_images(trained, tmp_path, capsys):
    (tmp_path / "some_dir").mkdir()
    err = one_line_error(capsys, "predict", trained, f"{tmp_path / 'some_dir'}/")
    assert err == f"cnnlab: error: '{tmp_path / 'some_dir'}' is a directory; pass image files (e.g. " \
                  f"{tmp_path / 'some_dir'}/*.png)"
    assert one_line_error(capsys, "predict", trained, tmp_path / "missing.png") == \
        f"cnnlab: error: image '{tmp_path / 'missing.png'}' does not exist"
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    for name in ("notes.txt", "corrupt.png"):
        assert f"cannot read image '{tmp_path / name}'" in one_line_error(capsys, "predict", trained, tmp_path / name)
    (tmp_path / "empty.png").write_bytes(b"")
    assert one_line_error(capsys, "predict", trained, tmp_path / "empty.png") == \
        f"cnnlab: error: cannot read image '{tmp_path / 'empty.png'}': the file is empty (0 bytes)"


def test_an_image_beyond_pils_pixel_limit_says_how_to_open_it(trained, tmp_path, capsys, monkeypatch):
    from PIL import Image

    Image.new("L", (20, 20)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL refuses above twice the limit: 400 > 200
    line = one_line_error(capsys, "predict", trained, tmp_path / "big.png")
    assert "has more pixels than PIL opens by default (100" in line and "raise PIL.Image.MAX_IMAGE_PIXELS" in line


def test_npz_garbage_on_the_command_line(tmp_path, capsys):
    (tmp_path / "garbage.npz").write_bytes(b"\x93NUMPY garbage that numpy would try to unpickle")
    err = one_line_error(capsys, "train", "--data", f"npz:{tmp_path / 'garbage.npz'}")
    assert "is not an .npz file" in err and "arrays x (N x H x W" in err and "pickle" not in err


def test_an_npz_without_labels_is_refused_by_train_naming_the_array_that_would_label_it(tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "b.npz", x=np.random.default_rng(0).random((40, 8, 8)))
    err = one_line_error(capsys, "train", "--data", f"npz:{tmp_path / 'b.npz'}", "--epochs", "1")
    assert err.endswith("dataset 'b' has no labels, so it cannot train a classifier; an array 'y' of N integer "
                        "labels 0..K-1 in 'b.npz' labels it, or train an autoencoder on it"), err


def _image_folder(root, bad: dict[str, bytes]):
    test = load_dataset("digits").test
    for i in range(120):
        label = int(test.labels[i]) % 2  # two classes, to keep it small
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        torchvision.utils.save_image(test.images[i], root / str(label) / f"{i}.png")
    for name, content in bad.items():
        (root / name).write_bytes(content)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Python 3.12+'s at a fork (test_data.py), hidden for users
@pytest.mark.parametrize("streamed", [False, True])
def test_skipped_images_are_one_clean_warning_line(tmp_path, capsys, monkeypatch, streamed):
    bad = {"0/empty.png": b"", "1/junk.jpg": b"not an image", "1/truncated.png": b"\x89PNG\r\n\x1a\n\0\0"}
    _image_folder(tmp_path / "imgs", bad)
    if streamed:  # pretend the folder does not fit in memory: a DataLoader with worker processes
        monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.000001")
    code, out, err = run(capsys, "train", "--data", f"folder:{tmp_path / 'imgs'}", "--epochs", "3", "--quiet",
                         "--run-dir", tmp_path / "run", "--batch-size", "16")
    assert code == 0 and "test accuracy" in out
    first = out.splitlines()[0]  # the files' own size, in memory as streamed; then the model's input
    assert ", 3x8x8, 2 classes; model lenet5" in first and first.endswith("input 3x32x32"), first
    assert "train/val/test files" in first if streamed else "train/val/test images" in first  # files: some unread
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("cnnlab: warning: skipped ") for line in lines), err
    assert "UserWarning" not in err and len(set(lines)) == len(lines)  # no repeat per epoch or per worker
    # each bad file is reported once: in one line for a folder in memory, once per split met when streaming
    assert sum(int(line.split()[3]) for line in lines) == len(bad)
    assert len(lines) == 1 if not streamed else len(lines) <= 3


def _terminate_after_first_checkpoint(run_dir, argv, group=False, env=None) -> tuple[int, str]:
    """Start `cnnlab train ARGV --run-dir RUN_DIR`, SIGTERM it once a checkpoint exists; (exit code, stderr)."""
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", *argv, "--run-dir", str(run_dir), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=group,
                            env=env)
    try:
        deadline = time.monotonic() + 120  # generous: the start-up is slow on a loaded machine
        while not (run_dir / "checkpoints" / "last.safetensors").exists():  # an epoch completed
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        if group:  # as systemd or Slurm do: to every process, DataLoader workers included
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err


def test_a_run_whose_output_is_closed_stops_with_a_line_saying_how_to_continue(tmp_path):
    # `cnnlab train | head -1`: the run used to end at the next line it printed, with exit code 0 and no word
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "--epochs", "50", "--run-dir", str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "digits:" in proc.stdout.readline()  # as `head -1` reads
        while not (run_dir / "checkpoints" / "last.safetensors").exists() and proc.poll() is None:
            time.sleep(0.05)  # until an epoch is saved, so that the run has something to continue
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 141, err  # 128 + SIGPIPE, as a shell reports a command that a pipe stopped
    assert err.strip().splitlines()[-1] == (f"cnnlab: the output was closed (broken pipe), so the run stopped; "
                                            f"continue with: cnnlab train --resume {run_dir}")


def test_a_run_whose_output_is_closed_before_it_prints_says_so_too(tmp_path):
    # `cnnlab train | true`: the first line met a closed pipe, and the command ended with 0 and no word
    result = subprocess.run(f"{sys.executable} -m cnnlab train --epochs 2 --run-dir {tmp_path / 'run'} | true; "
                            f"exit ${{PIPESTATUS[0]}}", shell=True, executable="/bin/bash", capture_output=True,
                            text=True)
    assert result.returncode == 141 and not (tmp_path / "run").exists()  # nothing half-made is left
    assert result.stderr.strip().splitlines()[-1] == ("cnnlab: the output was closed (broken pipe), so the run "
                                                      "stopped before its first epoch ended (nothing to continue)")


def test_a_run_whose_output_and_errors_go_into_one_closed_pipe_still_ends_with_141(tmp_path):
    # `cnnlab train 2>&1 | head -1`: the line saying why met the closed pipe too, and the command ended with 1
    result = subprocess.run(f"{sys.executable} -m cnnlab train --epochs 50 --run-dir {tmp_path / 'run'} 2>&1 | "
                            f"head -1; exit ${{PIPESTATUS[0]}}", shell=True, executable="/bin/bash",
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 141, result.stderr
    assert result.stdout.startswith("digits:") and result.stderr == ""


def _python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter: its signal handlers and hooks are its own."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def _cleanups_that_raise(loader_error: str) -> str:
    """Code defining ``Loader``, whose cleanup (``__del__``) raises ``loader_error`` as torch's DataLoader iterator
    does (its ``__del__`` is torch.utils.data's), and ``Other``, whose cleanup raises an error of our own."""
    return f"""
class Loader:
    def __del__(self):
        raise {loader_error}
Loader.__del__.__module__ = "torch.utils.data.dataloader"
class Other:
    def __del__(self):
        raise RuntimeError("an error of our own")
"""


def test_a_stopped_run_drops_the_cleanup_errors_of_a_loader_the_signal_cut_short_and_no_others():
    # SIGTERM to the process group can land while an epoch's DataLoader iterator is being built: its __del__ then
    # raised an AttributeError that Python printed as a traceback under the one stop line (a flaky CI failure)
    code = _cleanups_that_raise(
        """AttributeError("'_MultiProcessingDataLoaderIter' object has no attribute '_workers_status'")""") + """
from cnnlab.cli import _ignore_worker_deaths
_ignore_worker_deaths()
Loader(); Other()
"""
    err = _python(code).stderr
    assert "_workers_status" not in err and "an error of our own" in err


def test_sigterm_drops_the_cleanup_errors_of_loaders_before_the_stack_unwinds():
    # the signal reaches the workers too: the epoch's iterator, dropped as Terminated unwinds the stack, joined its
    # killed workers and torch's SIGCHLD handler raised in its __del__, before `main` caught Terminated
    code = _cleanups_that_raise('RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated. ")') + """
import os, signal
from cnnlab.cli import Terminated, _cli_handlers
def epoch():
    loader = Loader()
    os.kill(os.getpid(), signal.SIGTERM)
    signal.pause()  # not reached: the handler raises
try:
    with _cli_handlers():
        epoch()
except Terminated:
    print("terminated")
"""
    result = _python(code)
    assert result.stdout == "terminated\n" and result.stderr == "", result.stderr


def test_a_worker_killed_first_is_not_reported_again_by_its_loaders_cleanup():
    # the other order: torch's SIGCHLD handler raised in the loop for one killed worker, and again in the cleanup
    # of the iterator that error dropped as it unwound; other errors in a cleanup are still printed
    code = _cleanups_that_raise('RuntimeError("DataLoader worker (pid 2) is killed by signal: Terminated. ")') + """
from cnnlab.cli import _killed_workers_said_once
def epoch():
    loader, other = Loader(), Other()
    raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated. ")
with _killed_workers_said_once():  # main's: the error's frames keep the loader until its except clause ends
    try:
        epoch()
    except RuntimeError as e:
        print(e)
"""
    result = _python(code)
    assert result.stdout.startswith("DataLoader worker (pid 1)"), result.stderr
    assert "pid 2" not in result.stderr and "an error of our own" in result.stderr


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGCHLD"), reason="POSIX signals")
def test_a_child_exit_pending_when_its_reports_stop_is_no_error():
    # SIGTERM to the group: the workers' deaths arrive while the stop's handler runs; replacing torch's SIGCHLD
    # handler by SIG_DFL then made Python raise "OSError: Signal 17 ignored due to race condition" (7 in 30 runs)
    code = """
import os, signal
from cnnlab._signals import stop_hearing_children
class Stopped(Exception):
    pass
def torchs(*a):
    raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated.")
def stop(signum, frame):  # a stop's handler: it runs first (the lower number) and raises, the SIGCHLD waits
    assert stop_hearing_children() is torchs
    raise Stopped
both = {signal.SIGTERM, signal.SIGCHLD}
signal.pthread_sigmask(signal.SIG_BLOCK, both)
os.kill(os.getpid(), signal.SIGCHLD)
os.kill(os.getpid(), signal.SIGTERM)
signal.signal(signal.SIGCHLD, torchs)
signal.signal(signal.SIGTERM, stop)
try:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, both)  # both arrive together
    for _ in range(1000):
        pass
except Stopped:
    pass
for _ in range(1000):  # the SIGCHLD is handled here
    pass
print("stopped quietly")
"""
    result = _python(code)
    assert result.stdout == "stopped quietly\n" and result.stderr == "", result.stderr


def test_main_leaves_the_unraisable_hook_and_sigchld_as_they_were_after_a_stop():
    # main is called in-process (tests, scripts): a stop set both aside for its own cleanup
    code = """
import signal, sys
from cnnlab import cli
def torchs(*a): pass
signal.signal(signal.SIGCHLD, torchs)
hook = sys.unraisablehook
def stopped(argv, freeze):
    cli._ignore_worker_deaths()  # what a SIGTERM's handler does, before Terminated unwinds
    raise cli.Terminated()
cli._dispatch = stopped
print(cli.main([]), signal.getsignal(signal.SIGCHLD) is torchs, sys.unraisablehook is hook)
"""
    result = _python(code)
    assert result.stdout.split() == ["143", "True", "True"], result.stderr


def test_sigterm_stops_training_with_one_line_and_the_run_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, err = _terminate_after_first_checkpoint(run_dir, ["--epochs", "50"])
    assert code == 143, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("cnnlab: terminated") and f"cnnlab train --resume {run_dir}" in err
    # the checkpoint may be one epoch ahead of metrics.csv (or metrics.csv not written yet) if the signal came
    # between the two writes
    metrics = run_dir / "metrics.csv"
    done = len(metrics.read_text().strip().splitlines()) - 1 if metrics.is_file() else 0
    assert 0 <= done < 50
    code, out, err = run(capsys, "train", "--resume", run_dir, "--epochs", done + 2)
    assert code == 0 and "test accuracy" in out, err
    assert json.loads((run_dir / "results.json").read_text())["epochs"] == done + 2


def test_sigterm_to_the_process_group_while_streaming_is_one_line(tmp_path):
    import os

    _image_folder(tmp_path / "imgs", {})
    env = {**os.environ, "CNNLAB_MEMORY_LIMIT_GB": "0.000001"}  # streamed: DataLoader worker processes
    code, err = _terminate_after_first_checkpoint(tmp_path / "run", ["--data", f"folder:{tmp_path / 'imgs'}",
                                                                     "--epochs", "200"], group=True, env=env)
    assert code == 143 and err.startswith("cnnlab: terminated; continue with:"), err
    assert len(err.strip().splitlines()) == 1


def test_the_report_of_an_unfinished_run_says_so_and_draws_its_curves_so_far_and_a_finished_one_where_it_ran(
        trained, tmp_path, capsys):
    """A run stopped before its end had a report with an empty results table, a 'Pictures' heading over nothing
    and no word that it was unfinished; no report said the device or the CPU its times were measured on."""
    import re
    import shutil

    page = (trained / "report.html").read_text()
    results = page[page.index("<h2>Test results</h2>"):page.index("<h2>Pictures</h2>")]
    rows = dict(re.findall(r"<tr><td>(.*?)</td><td[^>]*>(.*?)</td></tr>", results))
    assert re.fullmatch(r"\d+\.\d\d%", rows["test accuracy"]) and rows["test images"] == "270"
    assert rows["epochs"] == "3" and rows["tested"] == "the last checkpoint (the last epoch&#x27;s)"
    assert rows["trained on"].startswith(cpu_description()) and f"torch {torch.__version__}" in rows["trained on"]
    assert re.fullmatch(r"\d+\.\d s( \(\d+\.\d s in the epochs; .*\))?", rows["training time"])
    assert "<td>device</td><td>auto (ran: cpu)</td>" in page and "<td>image_size</td><td>None (ran: 32x32)</td>" in page
    assert "Not finished" not in page
    partial = tmp_path / "partial"
    shutil.copytree(trained, partial)
    (partial / "results.json").unlink()  # as a run stopped after epoch 3 of more leaves it
    code, _, err = run(capsys, "report", partial)
    assert code == 0 and "did not finish" in err
    page = (partial / "report.html").read_text()
    assert f"<strong>Not finished.</strong> &#x27;{partial}&#x27; did not finish (no results.json): this reads its " \
           f"last checkpoint, epoch 3 of 3; cnnlab train --resume {partial} finishes it; the pictures below come " \
           f"from that checkpoint." in page
    assert "<p>Not tested yet: the test split is evaluated when the run finishes.</p>" in page
    pictures = re.findall(r'<img class="plot" alt="([^"]*)" src="data:([^;]*);', page)
    assert pictures == [("learning curves", "image/svg+xml")]  # from metrics.csv; no confusion matrix untested
    assert "<td>test accuracy</td>" not in page and "Per epoch" in page


def test_report_rounds_the_per_epoch_table(trained, tmp_path):
    import re
    import shutil

    from cnnlab.report import write_report
    from cnnlab.run import Run

    shutil.copytree(trained, tmp_path / "run")
    (tmp_path / "run" / "metrics.csv").write_text(
        "epoch,train_loss,train_acc,val_loss,val_acc,val_top5,lr,seconds\n"
        "1,1.91554321,0.5012345,1.0598123,0.624512,0.98876,0.00299999,0.234567\n"
        "2,0.5465,1,0.1504,0.98144,1,1.2345e-05,12.05\n")
    page = write_report(Run.open(tmp_path / "run")).read_text()
    table = page[page.index("<h2>Per epoch</h2>"):page.index("<h2>Configuration</h2>")]
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", table)]
    assert rows[1:] == [
        ["1", "1.9155", "50.12%", "1.0598", "62.45%", "98.88%", "3.0e-03", "0.2"],
        ["2", "0.5465", "100.00%", "0.1504", "98.14%", "100.00%", "1.2e-05", "12.1"],
    ]
    assert "<th>val_acc</th>" in table


def test_datasets_lists_builtins_with_sizes(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0 and "digits" in out and "1797" in out and "folder" in out
    records = {r["name"]: r for r in json.loads(run(capsys, "datasets", "--format", "json")[1])}
    assert records["faces"]["images"] == 200 and records["textures"]["classes"] == 3
    from cnnlab.data import train_defaults

    assert records["digits"]["train_defaults"] == train_defaults("digits") and not records["faces"]["train_defaults"]
    assert "digits trains with its own defaults when none of --epochs" in out and "--no-augment" in out


def test_train_help_lists_every_option():
    from dataclasses import fields

    from cnnlab.classify import ClassifierConfig

    out = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--help"], capture_output=True, text=True).stdout
    for f in fields(ClassifierConfig):
        if f.name != "model_kwargs":
            assert "--" + f.name.replace("_", "-") in out, f.name
    assert "examples:" in out and "--model-arg" in out


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
    for argv, what in ((["--model", "resnet18"], "--model"), (["--data", "faces"], "--data"),
                       (["--run-dir", tmp_path / "elsewhere"], "--run-dir"),
                       (["--model-arg", "act=relu"], "--model-arg")):
        code, _, err = run(capsys, "train", "--resume", trained, "--epochs", "9", *argv)
        assert code == 2 and f"cannot change {what}" in err


def test_a_runs_config_starts_a_new_run_from_any_folder_or_as_a_copy_and_not_quiet(tmp_path, capsys, monkeypatch):
    """config.yaml records run_dir relative to where the run started: read from another folder it named a new
    folder of the old name there, and a copy of it named the old run ("already exists ...; continue it with
    --resume"). A run continued with --quiet wrote quiet: true, and --config of it trained silently. An unknown
    model in the file did not name the file."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--epochs", "1", "--run-dir", "runs/first", "--quiet"]) == 0
    capsys.readouterr()
    (tmp_path / "other").mkdir()
    assert "quiet: true" in (tmp_path / "runs" / "first" / "config.yaml").read_text()
    (tmp_path / "copy.yaml").write_text((tmp_path / "runs" / "first" / "config.yaml").read_text())
    for where, config in ((tmp_path / "other", "../runs/first/config.yaml"), (tmp_path, "copy.yaml")):
        monkeypatch.chdir(where)
        code, out, err = run(capsys, "train", "--config", config, "--epochs", "1")
        assert code == 0, err
        assert "epoch   1/1" in out and "runs/lenet5-digits-" in out and "runs/first" not in out
    (tmp_path / "bad.yaml").write_text((tmp_path / "copy.yaml").read_text().replace("model: lenet5", "model: lenet6"))
    assert one_line_error(capsys, "train", "--config", tmp_path / "bad.yaml").startswith(
        f"cnnlab: error: config file '{tmp_path / 'bad.yaml'}': model: unknown model 'lenet6'")


def test_a_worker_killed_by_the_same_sigterm_first_still_reads_as_terminated(monkeypatch, capsys):
    """SIGTERM to the process group can kill a DataLoader worker, and torch report it, before this process runs
    its own handler: one line, exit code 143, not torch's traceback. Other runtime errors still propagate."""
    import cnnlab.cli as cli

    def stopped(argv, freeze_imports):
        raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Terminated. ")

    monkeypatch.setattr(cli, "_dispatch", stopped)
    assert cli.main([]) == 143 and capsys.readouterr().err.strip() == "cnnlab: terminated"
    monkeypatch.setattr(cli, "_dispatch", lambda argv, _freeze: (_ for _ in ()).throw(RuntimeError("a real bug")))
    with pytest.raises(RuntimeError, match="a real bug"):
        cli.main([])


def test_a_bad_value_against_a_datasets_default_says_where_the_default_came_from(capsys):
    assert one_line_error(capsys, "train", "--warmup-epochs", "20").endswith(
        "--warmup-epochs (20) must be fewer than --epochs (15) (--epochs 15: the default for digits; give it to "
        "choose another)")
    assert one_line_error(capsys, "train", "--warmup-epochs", "20", "--epochs", "5").endswith(
        "must be fewer than --epochs (5)")


def test_a_compiled_run_trains_and_says_nothing_but_its_own_lines(tmp_path):
    """``--compile`` end to end in its own process. A CUDA build of PyTorch on a machine without a GPU logs "No
    CUDA runtime is found, using CUDA_HOME=..." as it first compiles, in its own format: not the user's concern."""
    done = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--compile", "--epochs", "1", "--device", "cpu",
                           "--data", "digits@labels=5", "--run-dir", str(tmp_path / "r")], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and "test accuracy" in done.stdout, done.stderr
    assert done.stderr == ""


def test_nesterov_without_sgd_is_warned_about_and_dropped_as_momentum_is(tmp_path, capsys):
    """--momentum with Adam warned and trained; --nesterov with Adam was an error: both are now warned about once
    and not recorded (config.yaml holds what the run used)."""
    code, _, err = run(capsys, "train", "--epochs", "1", "--nesterov", "--momentum", "0.5", "--quiet", "--run-dir",
                       tmp_path / "r")
    assert code == 0 and err.count("cnnlab: warning:") == 2
    assert "--nesterov applies to --optimizer sgd; --optimizer adam ignores it" in err
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert (saved["nesterov"], saved["momentum"]) == (False, 0.9)
