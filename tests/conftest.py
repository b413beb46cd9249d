import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


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
