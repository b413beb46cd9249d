"""cnnlab's optimisers are torch.optim's, less the compiler's import: same steps, same state, and a training
process that never imports torch._dynamo."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from cnnlab import _optim as optim

CASES = [
    (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    (optim.Adam, torch.optim.Adam, dict(lr=3e-3, weight_decay=1e-4)),
    (optim.AdamW, torch.optim.AdamW, dict(lr=3e-3, weight_decay=0.05)),
]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("ours_cls, torch_cls, kwargs", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_each_optimiser_steps_exactly_as_torch_optim_does(ours_cls, torch_cls, kwargs, fused):
    a, b = _net(), _net()
    opt_a = ours_cls(a.parameters(), fused=fused, **kwargs)
    opt_b = torch_cls(b.parameters(), fused=fused, **kwargs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt_a, lambda s: 1 / (1 + s))  # schedulers take it as theirs
    torch_sched = torch.optim.lr_scheduler.LambdaLR(opt_b, lambda s: 1 / (1 + s))
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x, y = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)
        for net, opt, s in ((a, opt_a, sched), (b, opt_b, torch_sched)):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            s.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
        assert p.grad is not None and not p.grad.requires_grad
    state_a, state_b = opt_a.state_dict(), opt_b.state_dict()
    assert state_a["param_groups"] == state_b["param_groups"]
    for i, moments in state_b["state"].items():
        for key, value in moments.items():
            assert torch.equal(state_a["state"][i][key], value), key


def test_a_state_dict_round_trips_between_the_two():
    net = _net()
    ours = optim.Adam(net.parameters(), lr=1e-3)
    nn.functional.cross_entropy(net(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0])).backward()
    ours.step()
    theirs = torch.optim.Adam(copy.deepcopy(net).parameters(), lr=1e-3)
    theirs.load_state_dict(ours.state_dict())
    back = optim.Adam(net.parameters(), lr=1e-3)
    back.load_state_dict(theirs.state_dict())
    assert torch.equal(back.state_dict()["state"][0]["exp_avg"], ours.state_dict()["state"][0]["exp_avg"])


def test_every_guarded_method_is_reached_without_a_wrapper_on_this_torch():
    """A wrapper a later torch adds is kept, not stripped; this says when one appears (and the compiler with it)."""
    from torch.optim import Optimizer

    torch.optim.Adam([nn.Parameter(torch.ones(1))])  # builds patch the class's step with the hooks' wrapper
    methods = [Optimizer.add_param_group, Optimizer.zero_grad, Optimizer.state_dict, Optimizer.load_state_dict,
               torch.optim.SGD.step, torch.optim.Adam.step, torch.optim.AdamW.step]
    assert not [m.__qualname__ for m in methods if hasattr(optim.unguarded(m), "__wrapped__")]


def test_the_step_builds_no_graph():
    p = nn.Parameter(torch.ones(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = torch.ones(3)
    opt.step()
    assert p.grad_fn is None and torch.allclose(p.detach(), torch.full((3,), 0.9))


def test_a_training_process_never_imports_the_compiler(tmp_path):
    """One process runs three trainings (digits, an image folder, an autoencoder) and the ascent of
    ``explain maximize`` (its Adam), saying after each whether torch._dynamo was imported (one process, not
    four: each start imports torch again)."""
    from PIL import Image

    for i in range(24):  # a folder of 3 classes
        (tmp_path / "images" / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(torch.randint(0, 256, (12, 12), dtype=torch.uint8).numpy()).save(
            tmp_path / "images" / f"c{i % 3}" / f"{i}.png")
    commands = {"digits": ["train"], "folder": ["train", "--data", f"folder:{tmp_path / 'images'}",
                                                "--val-fraction", "0.2"], "autoencoder": ["ae", "train"]}
    argvs = {name: [*argv, "--epochs", "1", "--quiet", "--run-dir", str(tmp_path / name)]
             for name, argv in commands.items()}
    commands["maximize"] = argvs["maximize"] = ["explain", "maximize", str(tmp_path / "digits"), "--class", "7",
                                                "--steps", "2", "--out", str(tmp_path / "max")]
    code = (f"import sys; from cnnlab.cli import main\nfor name, argv in {argvs!r}.items():\n"
            "    status = main(argv)\n    print(name, status, 'torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    said = [line for line in out.stdout.splitlines() if line.split(" ")[0] in commands]
    assert said == [f"{name} 0 False" for name in commands], out.stdout


def test_a_grad_scaler_drives_the_fused_step_as_it_drives_torch_optims():
    """The fused kernels take the scaler's scale and skip a step whose gradients are not finite."""

    def train(cls):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3))
        opt = cls(net.parameters(), lr=1e-2, fused=True)
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        g = torch.Generator().manual_seed(1)
        for i in range(4):
            x, y = torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x), y) * (float("inf") if i == 2 else 1.0)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return [p.detach().clone() for p in net.parameters()], scaler.get_scale()

    (ours, scale), (theirs, torch_scale) = train(optim.Adam), train(torch.optim.Adam)
    assert scale == torch_scale == 512.0  # the infinite step was skipped and the scale halved, on both
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs, strict=True))
