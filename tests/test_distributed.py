"""Distributed training (DDP under torchrun or ``--nproc``) on 2 CPU processes with gloo: the same steps as one
process with the global batch, rank 0 alone writing, a killed process ending the job in one line, resume, and
every kind of run (a transfer, a streamed classifier, a segmentation network, an autoencoder). Each job asks for
``--device cpu``: on a machine with a GPU, ``auto`` would take it (nccl, a GPU per process)."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnlab.data.loader import InMemoryLoader, shard_order
from tests.conftest import one_line_error, run


def cnnlab(*argv, env=None, launcher=("-m", "cnnlab")) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *launcher, *map(str, argv)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def max_difference(a, b) -> float:
    wa, wb = (load_file(p / "checkpoints" / "last.safetensors") for p in (a, b))
    assert wa.keys() == wb.keys()
    return max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa)


# --- sharding, checked against the one-process batches ---------------------------------------------------------

@pytest.mark.parametrize("world", [2, 3])
def test_the_shards_of_a_batch_are_the_one_process_batch_of_world_times_the_size(world):
    images, labels = torch.arange(50.0).view(50, 1, 1, 1), torch.arange(50)
    one = InMemoryLoader(images, labels, batch_size=4 * world, shuffle=True, seed=3)
    shards = [InMemoryLoader(images, labels, batch_size=4, shuffle=True, seed=3).sharded(r, world)
              for r in range(world)]
    for epoch in (0, 1):
        for loader in (one, *shards):
            loader.set_epoch(epoch)
        assert len({len(s) for s in shards}) == 1  # every process takes as many steps
        batches = list(zip(*shards, strict=True))
        for (x, _), parts in zip(one, batches, strict=False):  # (a last batch of one image is dropped)
            together = torch.cat([y for _, y in parts])
            assert sorted(together.tolist()) == sorted(x.flatten().long().tolist()[: len(together)])
        seen = torch.cat([y for s in shards for _, y in s]).tolist()
        assert len(seen) == len(set(seen)) >= 50 - 50 % world - world  # each image at most once, nearly all


def test_shard_order_without_shuffle_strides_the_items():
    g = torch.Generator()
    assert shard_order(7, False, g, 1, 3).tolist() == [1, 4]
    assert shard_order(7, False, g) is None


# --- whole runs on 2 processes ---------------------------------------------------------------------------------

def test_two_processes_take_the_same_steps_as_one_with_the_global_batch(runs, tmp_path, capsys):
    """A fine-tune whose warm start trains the head alone, then every layer: DDP must share the backbone's
    gradients too once it unfreezes."""
    # fp32 pinned: auto measures the step on a CPU with native bf16, and a loaded machine's clock must not decide
    common = ["--from", runs / "clf", "--mode", "fine-tune", "--head-epochs", "1", "--epochs", "2", "--no-augment",
              "--quiet", "--precision", "fp32", "--device", "cpu"]
    code, _, err = run(capsys, "transfer", *common, "--batch-size", "64", "--run-dir", tmp_path / "one")
    assert code == 0, err
    two = cnnlab("transfer", *common, "--batch-size", "32", "--nproc", "2", "--run-dir", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    assert max_difference(tmp_path / "one", tmp_path / "two") < 1e-4  # float sums in another order
    assert two.stdout.count("test accuracy") == 1 and two.stderr == ""  # rank 0 alone reports
    assert '"processes": 2' in (tmp_path / "two" / "meta.json").read_text()
    html = (tmp_path / "two" / "report.html").read_text()  # its batch size, read as the one it took a step
    assert "<td>batch_size</td><td>32 per process (2 processes: 64 images a step)</td>" in html
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def test_an_incremental_jobs_naive_baseline_trains_with_the_jobs_global_batch(tmp_path, capsys):
    """Rank 0 trains the naive baseline alone: it took one process's batch (32 images a step) while the run it is
    compared with took the job's (64)."""
    import yaml

    base = ["--data", "digits@classes=0-4", "--epochs", "1", "--quiet", "--device", "cpu"]
    assert run(capsys, "train", *base, "--run-dir", tmp_path / "base")[0] == 0
    two = cnnlab("transfer", "--from", tmp_path / "base", "--data", "digits@classes=5-9@labels=10", "--mode",
                 "incremental", "--memory", "5", "--epochs", "1", "--batch-size", "32", "--nproc", "2", "--quiet",
                 "--device", "cpu", "--run-dir", tmp_path / "inc")
    assert two.returncode == 0, two.stderr
    naive = yaml.safe_load((tmp_path / "inc" / "naive" / "config.yaml").read_text())
    assert naive["batch_size"] == 64 and '"processes": 1' in (tmp_path / "inc" / "naive" / "meta.json").read_text()


def test_streamed_folders_are_sharded_like_in_memory_data(tmp_path, capsys, monkeypatch):
    from PIL import Image

    rng = torch.Generator().manual_seed(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(40):
            pixels = (torch.rand(12, 12, 3, generator=rng) * 255).to(torch.uint8)
            pixels[:, : 6 if c == "a" else 0] = 255
            Image.fromarray(pixels.numpy()).save(tmp_path / "imgs" / c / f"{i}.png")
    monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.000001")  # streamed from disk, here and in the processes
    common = ["--data", f"folder:{tmp_path / 'imgs'}", "--epochs", "2", "--no-augment", "--quiet", "--precision",
              "fp32", "--device", "cpu"]  # as above
    code, out, err = run(capsys, "train", *common, "--batch-size", "16", "--run-dir", tmp_path / "one")
    assert code == 0, err
    two = cnnlab("train", *common, "--batch-size", "8", "--nproc", "2", "--run-dir", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    assert "streamed from disk" in out and "streamed from disk" in two.stdout
    assert max_difference(tmp_path / "one", tmp_path / "two") < 1e-4


def _stream_a_split(rank: int, port: int, folder: str, results) -> None:
    """One process of a 2-process gloo group: three epochs of its shard of a streamed split; what it warned."""
    import warnings

    import torch.distributed as dist

    from cnnlab.data.prepare import Preprocess
    from cnnlab.data.streaming import FileSet, StreamingLoader

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        files = sorted(str(f) for f in Path(folder).iterdir())
        loader = StreamingLoader(FileSet(files, [0] * len(files)), 1, Preprocess((8, 8), 0, [0.5], [0.25]), 4,
                                 torch.device("cpu"), shuffle=True, workers=0).sharded(rank, 2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for epoch in range(3):
                loader.set_epoch(epoch)
                list(loader)
        results.put((rank, [str(w.message).split(" while")[0] for w in caught
                            if not issubclass(w.category, DeprecationWarning)]))
    finally:
        dist.destroy_process_group()


def test_the_processes_of_a_streamed_split_say_its_unreadable_files_once_all_together(tmp_path):
    """Each process decodes its shard, a new one every epoch: rank 0 said 'skipped 3' after the first epoch and
    then 'skipped 1' after later ones, as its shards turned up the rest; one process says all 5 at once."""
    import socket

    import torch.multiprocessing as mp
    from PIL import Image

    for i in range(19):  # 24 files: every epoch shards all of them (an odd one out would wait for an epoch)
        Image.fromarray((torch.rand(8, 8) * 255).to(torch.uint8).numpy()).save(tmp_path / f"{i:02d}.png")
    for i in range(5):
        (tmp_path / f"{i:02d}-broken.png").write_bytes(b"not an image")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.get_context("spawn").Queue()
    processes = mp.spawn(_stream_a_split, args=(port, str(tmp_path), results), nprocs=2, join=False)
    said = dict(results.get(timeout=120) for _ in range(2))
    processes.join(timeout=60)
    assert said == {0: ["skipped 5 unreadable image file(s)"], 1: ["skipped 5 unreadable image file(s)"]}


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="lists the threads from /proc (Linux)")
def test_torchrun_itself_trains_a_segmentation_network_and_its_processes_end_their_group(tmp_path):
    """Each process runs the command, then lists its threads: the process group's (gloo's) are gone by then, so
    none is left running into the interpreter's exit (where a process could abort, SIGABRT)."""
    script = tmp_path / "command_then_threads.py"
    script.write_text("import os, sys\n"
                      "from cnnlab.cli import main\n"
                      "code = main(sys.argv[1:])\n"
                      "tasks = os.listdir('/proc/self/task')\n"
                      "names = [open(f'/proc/self/task/{t}/comm').read().strip() for t in tasks]\n"
                      f"open(f'{tmp_path}/threads-{{os.environ[\"RANK\"]}}.txt', 'w').write(' '.join(names))\n"
                      "sys.exit(code)\n")
    seg = cnnlab("segment", "train", "--data", "shapes:size=16,count=60", "--depth", "2", "--width", "4",
                 "--epochs", "1", "--device", "cpu", "--run-dir", tmp_path / "seg", "--quiet",
                 launcher=("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", script))
    assert seg.returncode == 0, seg.stderr
    assert seg.stdout.count("test pixel accuracy") == 1 and (tmp_path / "seg" / "report.html").is_file()
    assert '"processes": 2' in (tmp_path / "seg" / "meta.json").read_text()
    threads = {rank: (tmp_path / f"threads-{rank}.txt").read_text() for rank in (0, 1)}
    assert not any("gloo" in names for names in threads.values()), threads


def test_a_fit_in_a_group_the_script_started_leaves_the_group_to_the_script(tmp_path):
    script = tmp_path / "own_group.py"
    script.write_text("import sys\n"
                      "import torch.distributed as dist\n"
                      "import torch.distributed.nn\n"
                      "import cnnlab\n"
                      "dist.init_process_group('gloo')\n"
                      "result = cnnlab.fit(cnnlab.ClassifierConfig(model='lenet5', data='shapes:size=16,count=60',\n"
                      "                    epochs=1, device='cpu', run_dir=sys.argv[1]), log=lambda *a, **k: None)\n"
                      "rank = dist.get_rank()\n"
                      f"open(f'{tmp_path}/after-fit-{{rank}}.txt', 'w').write(\n"
                      "    f'group {dist.is_initialized()} test {bool(result.test)}')\n"
                      "dist.destroy_process_group()\n")
    job = cnnlab(tmp_path / "run", launcher=("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                                              script))
    assert job.returncode == 0, job.stderr
    after = [(tmp_path / f"after-fit-{rank}.txt").read_text() for rank in (0, 1)]
    assert after == ["group True test True", "group True test False"]  # rank 0 alone tests
    assert '"processes": 2' in (tmp_path / "run" / "meta.json").read_text()


def _rank_pid(parent: int, rank: int) -> int | None:
    """The pid of the process of ``rank`` that the launcher ``parent`` started (its RANK in its environment)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            status = open(f"/proc/{pid}/status").read()
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and f"PPid:\t{parent}\n" in status:
            return int(pid)
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank's process in /proc")
def test_a_killed_process_ends_the_job_in_one_line_and_the_run_resumes_in_as_many(tmp_path, capsys):
    """An autoencoder's job (the third kind of run trained on two processes here)."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "ae", "train", "--epochs", "60", "--nproc", "2",
                             "--device", "cpu", "--run-dir", str(run_dir), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "metrics.csv").exists():  # an epoch completed and was written
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no epoch within 120 s"
            time.sleep(0.05)
        os.kill(_rank_pid(proc.pid, 1), signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("cnnlab: error: process 1 of 2") and "killed by SIGKILL" in err
    assert f"continue with: cnnlab ae train --resume {run_dir} --nproc 2" in err
    done = len((run_dir / "metrics.csv").read_text().strip().splitlines()) - 1
    assert done < 60

    assert "trained in 2 processes; continue it in as many: --nproc 2" in one_line_error(
        capsys, "ae", "train", "--resume", run_dir)
    again = cnnlab("ae", "train", "--resume", run_dir, "--nproc", "2", "--epochs", done + 2)
    assert again.returncode == 0, again.stderr
    assert (run_dir / "results.json").is_file()
    assert len((run_dir / "metrics.csv").read_text().strip().splitlines()) - 1 == done + 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank's process in /proc")
def test_the_processes_stop_when_their_launcher_is_killed_outright(tmp_path):
    """SIGKILL to `cnnlab train --nproc 2` left its two processes training on unseen, holding the run's lock
    (its resume: 'in use by another cnnlab process'); they now stop as on SIGTERM, and the run resumes."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "--epochs", "200", "--nproc", "2",
                             "--run-dir", str(run_dir), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoints" / "last.safetensors").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no epoch within 120 s"
            time.sleep(0.05)
        ranks = [_rank_pid(proc.pid, r) for r in (0, 1)]
        assert None not in ranks
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while any(map(_running, ranks)):
            assert time.monotonic() < deadline, "the processes outlived their launcher by 30 s"
            time.sleep(0.1)
    finally:
        for pid in ranks if "ranks" in locals() else []:
            with contextlib.suppress(OSError, TypeError):
                os.kill(pid, signal.SIGKILL)
    done = len((run_dir / "metrics.csv").read_text().strip().splitlines()) - 1
    again = cnnlab("train", "--resume", run_dir, "--nproc", "2", "--epochs", done + 2)
    assert again.returncode == 0, again.stderr


def _running(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()  # a zombie has ended
    except OSError:
        return False


# what fails in each process inside ``agreed``, and what each process then raises:
# (type, message, relayed, peer), or None
AGREEMENTS = [
    ({0: "bad", 1: "bad"}, {0: ("CnnlabError", "bad input seen by every process", False, False),
                            1: ("CnnlabError", "bad input seen by every process", True, False)}),
    ({1: "bad"}, {0: ("CnnlabError", "process 1 of 2: bad input seen by 1", False, False),
                  1: ("CnnlabError", "process 1 of 2: bad input seen by 1", True, False)}),
    ({1: "bug"}, {0: ("CnnlabError", "process 1 of 2 failed (ValueError; its own error is above)", False, True),
                  1: ("ValueError", "a bug", False, False)}),
    ({}, {0: None, 1: None}),
]


def _agree(rank: int, port: int, results) -> None:
    """One process of a 2-process gloo group: goes through every case of AGREEMENTS in turn (the group lives on
    after a failed step, as a job's does until it ends), failing as the case says inside ``agreed``, and reports
    what it raised."""
    import torch.distributed as dist

    from cnnlab.errors import CnnlabError
    from cnnlab.train import distributed

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    ranks = distributed.Ranks(rank, 2, rank, 2)
    try:
        for case, (failures, _) in enumerate(AGREEMENTS):
            try:
                with distributed.agreed(ranks):
                    kind = failures.get(rank)
                    if kind == "bad":
                        raise CnnlabError(f"bad input seen by {'every process' if len(failures) == 2 else rank}")
                    if kind == "bug":
                        raise ValueError("a bug")
                results.put((case, rank, None))
            except Exception as e:
                results.put((case, rank, (type(e).__name__, str(e), getattr(e, "relayed", False),
                                          getattr(e, "peer", False))))
    finally:
        dist.destroy_process_group()


def test_bad_input_in_the_setup_is_said_once_by_rank_0():
    """What every process raises after a setup step (data, model) failed in some: rank 0 speaks for the job
    (relayed errors are silent), and a bug keeps its own traceback while the others stop as for a lost peer.
    (The cases run one after another in the same two processes: a process group takes seconds to start.)"""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    processes = mp.spawn(_agree, args=(port, results), nprocs=2, join=False)
    got = [{} for _ in AGREEMENTS]
    for _ in range(2 * len(AGREEMENTS)):
        case, rank, what = results.get(timeout=60)
        got[case][rank] = what
    processes.join(timeout=60)
    assert got == [want for _, want in AGREEMENTS]


@pytest.mark.parametrize("rank, local_rank, says", [(1, 1, False), (2, 0, True)])
def test_an_error_before_joining_the_job_is_said_once_per_node(rank, local_rank, says, capsys, monkeypatch):
    """Under torchrun, bad input met before the processes join (the command line, this node's files) is met
    alike by every process of a node: the node's first process says it, the others stay silent."""
    for key, value in {"RANK": rank, "WORLD_SIZE": 4, "LOCAL_RANK": local_rank, "LOCAL_WORLD_SIZE": 2}.items():
        monkeypatch.setenv(key, str(value))
    code, _, err = run(capsys, "experiment", "depth")
    assert code == 2
    assert err == (f"cnnlab: error: process {rank} of 4: the depth experiment runs its runs in one process; start "
                   f"it without torchrun\n" if says else "")
    code, _, err = run(capsys, "train", "--lr", "-1")  # the command line itself
    assert code == 2
    assert err == (f"cnnlab: error: process {rank} of 4: argument --lr: must be a number above 0 and at most 10, "
                   f"got -1 (see 'cnnlab train --help')\n" if says else "")


@pytest.mark.parametrize("experiment", ["transfer", "efficiency", "depth", "activations", "init", "regularization",
                                        "architectures"])
def test_every_experiment_under_torchrun_is_refused_before_it_writes_anything(experiment, tmp_path, capsys,
                                                                                monkeypatch):
    for key, value in {"RANK": 0, "WORLD_SIZE": 2, "LOCAL_RANK": 0, "LOCAL_WORLD_SIZE": 2}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.chdir(tmp_path)
    for argv in (["--quick"], ["--resume", tmp_path])[:1 if experiment == "efficiency" else 2]:  # (no --resume)
        code, _, err = run(capsys, "experiment", experiment, *argv)
        assert code == 2
        assert err == f"cnnlab: error: the {experiment} experiment runs its runs in one process; start it without " \
                      f"torchrun\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["evaluate", "runs/x"], ["models"], ["ae", "encode", "runs/x"],
                                  ["explain", "filters", "runs/x"], ["export", "runs/x"]])
def test_a_command_that_is_no_training_run_is_refused_under_torchrun_by_rank_0_alone(argv, capsys, monkeypatch):
    """`torchrun ... -m cnnlab evaluate RUN` printed its results once per process."""
    for rank in (0, 1):
        for key, value in {"RANK": rank, "WORLD_SIZE": 2, "LOCAL_RANK": rank, "LOCAL_WORLD_SIZE": 2}.items():
            monkeypatch.setenv(key, str(value))
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        command = " ".join(a for a in argv if a != "runs/x")
        assert err == ("" if rank else f"cnnlab: error: cnnlab {command} runs in one process; run it without torchrun "
                       f"(torchrun and --nproc are for the training commands: cnnlab train, transfer, ae train, "
                       f"segment train)\n")


@pytest.mark.parametrize("local_rank", [0, 1])
def test_more_processes_than_a_nodes_gpus_all_stop_before_joining(local_rank, monkeypatch):
    """Each process checks the node's GPUs, not only its own: the one that has a GPU does not wait in the
    rendezvous for the one that has none (torchrun killed it after 30 s on a one-GPU machine)."""
    from cnnlab.errors import CnnlabError
    from cnnlab.train import distributed

    for key, value in {"RANK": local_rank, "WORLD_SIZE": 2, "LOCAL_RANK": local_rank, "LOCAL_WORLD_SIZE": 2}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    joined = []
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *a, **k: joined.append(a))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: joined.append(device))
    with pytest.raises(CnnlabError, match=r"^2 processes on this node need a GPU each, and the node has 1; "):
        distributed.start(torch.device("cuda"))
    assert not joined and distributed.said_by_the_node(distributed.from_env()) == (local_rank != 0)


def test_without_the_nodes_process_count_each_process_checks_its_own_gpu(monkeypatch):
    """A launcher that sets no LOCAL_WORLD_SIZE (2 nodes of 4 GPUs): process 3 of its node takes GPU 3."""
    from cnnlab.train import distributed

    for key, value in {"RANK": 7, "WORLD_SIZE": 8, "LOCAL_RANK": 3}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(distributed, "_joined", False)  # start() marks the process joined: restored after
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    joined = []
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *a, **k: joined.append("group"))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: joined.append(device))
    ranks, device = distributed.start(torch.device("cuda"))
    assert device == torch.device("cuda", 3) and joined == [device, "group"] and ranks.world == 8


def test_nproc_must_be_positive_and_at_most_a_process_per_core(capsys):
    from cnnlab._machine import available_cores

    assert "--nproc must be at least 1" in one_line_error(capsys, "train", "--nproc", "0")
    cores = available_cores()
    err = one_line_error(capsys, "train", "--nproc", cores + 1, "--device", "cpu")
    assert f"needs a core per process; this process may use {cores} (use --nproc {cores} or fewer)" in err


def test_threads_per_process_must_fit_the_cores_together(tmp_path, capsys, monkeypatch):
    """`--nproc 2 --threads 2` on 2 cores ran 4 threads on 2 cores, where one process's `--threads 3` was
    refused; under torchrun the engine checks it."""
    from cnnlab.errors import CnnlabError
    from cnnlab.train import config, distributed

    monkeypatch.setattr(config, "available_cores", lambda: 2)
    monkeypatch.setattr(distributed, "available_cores", lambda: 2)
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, "train", "--nproc", "2", "--threads", "2", "--device", "cpu")
    assert err == ("cnnlab: error: --threads 2 in each of 2 processes is 4 threads on the 2 CPU cores this process "
                   "may use; use --threads 1 or leave it out (each process then takes its share of the cores)")
    assert not (tmp_path / "runs").exists()
    with pytest.raises(CnnlabError, match="--threads 2 in each of 2 processes"):
        distributed.check_threads(2, 2)
    distributed.check_threads(1, 2)  # fits
    distributed.check_threads(2, 1)  # one process: RunConfig's own check


def test_the_jobs_line_offers_a_resume_only_while_the_run_has_a_checkpoint(tmp_path):
    """A job stopped in its first epoch removes its run, as one process does; its line still said 'continue
    with: ... --resume DIR', and DIR did not exist."""
    import json

    from cnnlab.train.distributed import _continue

    announced = tmp_path / "run.json"
    announced.write_text(json.dumps({"command": "cnnlab train", "path": str(tmp_path / "r")}))
    assert _continue(announced, 2) == ""
    (tmp_path / "r" / "checkpoints").mkdir(parents=True)
    (tmp_path / "r" / "checkpoints" / "last.safetensors").write_bytes(b"weights")
    assert _continue(announced, 2) == f"; continue with: cnnlab train --resume {tmp_path / 'r'} --nproc 2"


def test_a_process_killed_after_the_run_finished_is_a_warning_and_the_job_succeeds(tmp_path, capsys):
    """Rank 1 killed after rank 0 wrote the report: the job exited 1 and offered a --resume that then said the run
    already had its epochs. A report from before the job (a finished run resumed for more epochs) is not its."""
    import json
    import signal
    import time
    from types import SimpleNamespace

    from cnnlab.train.distributed import _explain_failure

    run_dir = tmp_path / "r"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.safetensors").write_bytes(b"weights")
    (tmp_path / "run.json").write_text(json.dumps({"command": "cnnlab train", "path": str(run_dir)}))
    killed = SimpleNamespace(failures={1: SimpleNamespace(exitcode=-int(signal.SIGKILL), timestamp=0, pid=101)})
    started = time.time()
    assert _explain_failure(killed, 2, tmp_path, started) == 1  # no report yet: the run continues
    assert capsys.readouterr().err == (f"cnnlab: error: process 1 of 2 (pid 101) was killed by SIGKILL, so the job "
                                       f"stopped; continue with: cnnlab train --resume {run_dir} --nproc 2\n")
    (run_dir / "report.html").write_text("<html></html>")
    assert _explain_failure(killed, 2, tmp_path, started) == 0
    assert capsys.readouterr().err == (f"cnnlab: warning: process 1 of 2 (pid 101) was killed by SIGKILL after the "
                                       f"run had finished; its results and report are complete in {run_dir}\n")
    assert _explain_failure(killed, 2, tmp_path, started + 3600) == 1  # the report of an earlier job
    assert "so the job stopped" in capsys.readouterr().err


def test_bad_input_said_by_rank_0_is_the_jobs_only_line_whichever_process_the_launcher_saw_fail_first(
        tmp_path, capsys, monkeypatch):
    """Rank 0's refusal (a run another job trains) reaches the other processes, which exit 2 at once: the launcher
    then stopped rank 0 and named process 1 as the failure ("process 1 of 2 exited with code 2"), a second line
    after rank 0's own, or rank 0 aborted as its group was torn down (a third: "terminate called ..."). Rank 0
    now leaves word that it spoke; stopped before it could, the launcher says the error the others were told."""
    import signal
    from types import SimpleNamespace

    from cnnlab.train import distributed
    from cnnlab.train.distributed import Ranks, _explain_failure

    def failed(**codes):
        return SimpleNamespace(failures={int(r[1:]): SimpleNamespace(exitcode=c, timestamp=0, pid=100 + int(r[1:]))
                                         for r, c in codes.items()})

    monkeypatch.setenv(distributed.LAUNCH_DIR, str(tmp_path))
    distributed.told(Ranks(1, 2), "run directory 'r' is in use by another cnnlab process")  # what rank 1 heard
    assert _explain_failure(failed(r1=2, r0=-int(signal.SIGTERM)), 2, tmp_path) == 2
    assert capsys.readouterr().err == "cnnlab: error: run directory 'r' is in use by another cnnlab process\n"
    distributed.told(Ranks(0, 2))  # rank 0 said it itself
    for codes in (dict(r1=2, r0=-int(signal.SIGTERM)), dict(r0=-int(signal.SIGABRT), r1=2), dict(r0=2)):
        assert _explain_failure(failed(**codes), 2, tmp_path) == 2
        assert capsys.readouterr().err == ""


def test_a_lost_peers_error_is_quoted_to_a_word_not_cut_inside_one():
    """gloo's message was cut at 160 characters: '... This is typically caused by a rem)'."""
    from cnnlab.train.distributed import Ranks, peer_failure

    gloo = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Read error [127.0.0.1]:51234: "
                        "Connection reset by peer. This is typically caused by a remote process crashing\nmore")
    error = str(peer_failure(gloo, Ranks(0, 2, 0, 2)))
    assert error.startswith("another process of the distributed job stopped, so process 0 of 2 cannot go on ([")
    assert error.endswith("Connection reset by peer. This is typically caused by a remote process ...)"), error
    assert "more" not in error  # its first line only
