import os

# The xdist workers (started after this file is read) keep freed memory for reuse instead of handing every large
# block back to the kernel: glibc serves blocks over 32 MB with mmap and unmaps them on free, so each large tensor
# of the zoo's biggest models (hundreds of MB) was faulted in page by page again. On the AMD EPYC this took the
# forward/backward test of every architecture from 50-52 s to 41-46 s (system time 29 s to 10 s), at a peak of
# 6 GB for the whole suite. A value the user has set is kept.
for _name, _value in (("MALLOC_MMAP_MAX_", "0"), ("MALLOC_TRIM_THRESHOLD_", str(64 << 30)),
                      ("MALLOC_TOP_PAD_", str(1 << 30))):
    os.environ.setdefault(_name, _value)

import math  # noqa: E402

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


class MetaBatchNormShapes(torch.overrides.TorchFunctionMode):
    """Batch norm on the meta device as the shape it gives, a tensor like its input (once its statistics are
    checked to have one value per channel), for the tests that ask only for shapes. PyTorch runs meta batch norm
    through a Python decomposition: 80% of a meta forward pass of pyramidnet272_a200 (cnnlab's summary does the
    same for the same reason)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.batch_norm and args[0].is_meta:
            x, stats = args[0], [t for t in (*args[1:5], *kwargs.values()) if isinstance(t, torch.Tensor)]
            if any(t.shape != (x.shape[1],) for t in stats):
                raise RuntimeError(f"batch norm of {x.shape[1]} channels with statistics of shapes "
                                   f"{[tuple(t.shape) for t in stats]}")
            return torch.empty_like(x)
        return func(*args, **kwargs)


@pytest.fixture
def meta_shapes():
    """Meta forward passes with :class:`MetaBatchNormShapes`."""
    with MetaBatchNormShapes():
        yield


def hash_uniform(n: int, salt: int) -> torch.Tensor:
    """n pseudo-random values in [-1, 1) from a closed formula (the classic fract(sin(x) * 43758.5453))."""
    x = torch.arange(n, dtype=torch.float64) * 12.9898 + salt * 78.233
    return torch.frac(torch.sin(x).abs() * 43758.5453) * 2.0 - 1.0


PERIOD = 1_000_003  # a prime: no tensor's rows line up with it
BASE = hash_uniform(PERIOD, 0).float()


def weight_wave(n: int, salt: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """n values of the closed formula for tensor number ``salt``: the first PERIOD of them, read from a start
    that depends on ``salt`` and wrapped around (the formula itself for every value took 9 s for
    wide_resnet101_2's 125M weights; this is a copy). Written into ``out`` (flat) when given."""
    start = (salt * 7919) % PERIOD
    period = BASE.roll(-start)
    out = torch.empty(n) if out is None else out
    for i in range(0, n, PERIOD):
        out[i:i + PERIOD].copy_(period[:min(PERIOD, n - i)])
    return out


def deterministic_fill(model: torch.nn.Module) -> None:
    """Every value of ``model``'s state from the closed formula, in place: weights variance-preserving for ReLU
    networks, norm scales near 1, biases and means near 0, variances in [1, 1.5]."""
    with torch.no_grad():
        for i, (name, t) in enumerate(model.state_dict().items()):
            if not t.is_floating_point():
                continue
            flat = t.view(-1) if t.dtype == torch.float32 and t.is_contiguous() else torch.empty(t.numel())
            weight_wave(t.numel(), i, flat)
            if name.endswith("running_var"):
                flat.add_(1.0).mul_(0.25).add_(1.0)
            elif name.endswith("running_mean") or name.endswith("bias"):
                flat.mul_(0.05)
            elif t.dim() == 1:  # norm scale
                flat.mul_(0.1).add_(1.0)
            else:  # variance-preserving for ReLU networks: Var = 2 / fan_in (uniform: Var = a^2 / 3)
                flat.mul_(math.sqrt(6.0 / t[0].numel()))
            if flat.data_ptr() != t.data_ptr():
                t.copy_(flat.view(t.shape))


def build_filled(name: str, **kwargs):
    """The model built on the meta device and filled by :func:`deterministic_fill`: for the tests whose claim
    does not depend on the family's init (the golden outputs, the head contract, the ImageNet form's gradients,
    export, the explain views). Drawing the init of the zoo's largest models (wide_resnet101_2: 125M weights)
    was most of their time."""
    model = build_meta(name, **kwargs).to_empty(device="cpu")
    deterministic_fill(model)
    return model


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
