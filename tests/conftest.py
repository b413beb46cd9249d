import os

# The xdist workers (started after this file is read) keep freed memory for reuse instead of handing every large
# block back to the kernel: glibc serves blocks over 32 MB with mmap and unmaps them on free, so each large tensor
# of the zoo's biggest models (hundreds of MB) was faulted in page by page again. On the AMD EPYC this took the
# forward/backward test of every architecture from 50-52 s to 41-46 s (system time 29 s to 10 s), at a peak of
# 6 GB for the whole suite. A value the user has set is kept.
for _name, _value in (("MALLOC_MMAP_MAX_", "0"), ("MALLOC_TRIM_THRESHOLD_", str(64 << 30)),
                      ("MALLOC_TOP_PAD_", str(1 << 30))):
    os.environ.setdefault(_name, _value)

import pytest  # noqa: E402
import torch  # noqa: E402

# one thread per pytest-xdist worker (the workers share the cores), else up to two
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def build(name: str, **kwargs):
    import cnnlab

    return cnnlab.create_model(name, **kwargs)


def build_meta(name: str, **kwargs):
    with torch.device("meta"):
        return build(name, **kwargs)


def run(capsys, *argv):
    """``cnnlab ARGV`` in this process: (exit code, stdout, stderr)."""
    from cnnlab.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv) -> str:
    """``cnnlab ARGV``, which must fail with exit code 2 and one line ``cnnlab: error: ...``; that line."""
    code, _, err = run(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("cnnlab: error: "), err
    assert "Traceback" not in err
    return err.strip()


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Trained once for the session's tests of what uses a run (explain, export): a classifier (LeNet-5 on
    digits, 2 epochs), a conv and a recurrent autoencoder, a segmentation run, and two digit images."""
    from cnnlab.cli import main
    from cnnlab.run import Run
    from cnnlab.viz.images import save_png, tile

    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "--epochs", "2", "--run-dir", str(root / "clf"), "--quiet"]) == 0
    assert main(["ae", "train", "--epochs", "1", "--run-dir", str(root / "ae"), "--quiet"]) == 0
    assert main(["ae", "train", "--kind", "recurrent", "--epochs", "1", "--run-dir", str(root / "rnn"),
                 "--quiet"]) == 0
    assert main(["segment", "train", "--data", "shapes:size=16,count=60", "--depth", "2", "--width", "4",
                 "--epochs", "1", "--run-dir", str(root / "seg"), "--quiet"]) == 0
    data = Run.open(root / "clf").dataset()
    for i in range(2):
        save_png(tile(data.test.images[i:i + 1], pad=0), root / f"digit{i}.png")
    return root
