"""Time to 97% test accuracy on digits: cnnlab's engine against the loop most users write.

Both train LeNet-5 (32x32, the paper's padding) with the same recipe, cnnlab's general one: Adam, peak lr
3e-3 with a cosine schedule over 40 epochs, batch 32, label smoothing 0.1, random-crop augmentation; both
evaluate the test split after every epoch and stop the clock at the first epoch that reaches 97%. The peer uses a
torchvision-style Dataset with per-sample transforms and a DataLoader (num_workers=0, the default).
Both clocks start before the data is loaded; cnnlab's time includes everything ``cnnlab train`` does per
epoch (validation, checkpoints written to disk, metrics.csv) but not the final plots and report. Three
seeds; prints the median ratio.

Then whole processes, start-up included: ``cnnlab train`` with no arguments, run to its end (all its epochs,
the report), against the plain loop in a fresh interpreter until it reaches 97%. With no arguments, cnnlab
trains with digits' own training defaults (15 epochs at batch 64, lr 0.01, no augmentation:
``cnnlab.data.train_defaults``); the general recipe (GENERAL below, what the plain loop runs) is timed too.

    python benchmarks/time_to_accuracy.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, plain_loader, row  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.classify import ClassifierConfig, fit_to_model  # noqa: E402
from cnnlab.data import load_dataset  # noqa: E402
from cnnlab.train import fit  # noqa: E402

TARGET = 0.97
GENERAL = dict(epochs=40, batch_size=32, lr=3e-3, augment=True)  # the plain loop's recipe
GENERAL_ARGS = ["--epochs", "40", "--batch-size", "32", "--lr", "0.003", "--augment"]


def plain(seed: int) -> tuple[float, int]:
    torch.manual_seed(seed)
    t0 = time.perf_counter()  # both clocks start before the data is loaded
    raw = load_dataset("digits", seed=seed)
    model = cnnlab.create_model("lenet5")
    _, pre = fit_to_model(ClassifierConfig(), model, raw)
    train = plain_loader(raw.train, 28, pre.mean, pre.std, 32, augment=True)  # 28 + the paper's 2-pixel padding
    test = plain_loader(raw.test, 28, pre.mean, pre.std, 256, augment=False, shuffle=False)
    pad = torch.nn.ZeroPad2d(2)
    epochs = 40
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    total = epochs * len(train)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1, s / total))))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    for epoch in range(epochs):
        model.train()
        for x, y in train:
            opt.zero_grad()
            loss_fn(model(pad(x)), y).backward()
            opt.step()
            sched.step()
        model.eval()
        correct = n = 0
        with torch.no_grad():
            for x, y in test:
                correct += int((model(pad(x)).argmax(1) == y).sum())
                n += len(y)
        if correct / n >= TARGET:
            return time.perf_counter() - t0, epoch + 1
    return float("nan"), epochs


def ours(seed: int) -> tuple[float, int]:
    reached = {}

    def check(end):  # evaluate the test split after each epoch, as the peer does
        if end.evaluate("test")["accuracy"] >= TARGET:
            reached.update(t=time.perf_counter() - t0, epoch=end.epoch)
            return True
        return False

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit(ClassifierConfig(seed=seed, quiet=True, run_dir=f"{tmp}/run", **GENERAL), log=lambda *a: None,
            on_epoch_end=check)
    return reached.get("t", float("nan")), reached.get("epoch", 40)


def cnnlab_process(seed: int, options: list[str]) -> tuple[float, float]:
    """``cnnlab train`` as a whole process, to its end: (seconds, final test accuracy)."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cnnlab", "train", "--seed", str(seed), "--run-dir", f"{tmp}/run",
                        "--quiet", *options], check=True, capture_output=True)
        return time.perf_counter() - t0, json.loads(Path(f"{tmp}/run/results.json").read_text())["test"]["accuracy"]


def plain_process(seed: int) -> float:
    """The plain loop above in a fresh interpreter: seconds from its start until it reached 97%."""
    import subprocess

    t0 = time.time()
    out = subprocess.run([sys.executable, __file__, "--plain-process", str(seed)], check=True, capture_output=True,
                         text=True).stdout
    return float(out.split()[-1]) - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--plain-process", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.plain_process is not None:  # the plain loop as a process of its own: when it reached 97%
        t, _ = plain(args.plain_process)
        print(f"reached {time.time() if t == t else float('nan')}")
        return
    # the in-process comparison times loops, not imports: torch.optim's first optimiser imports the compiler
    # (a second here) and cnnlab's does not; imported up front, neither side's first seed pays it
    importlib.import_module("torch._dynamo")

    print(machine())
    print(f"time to {100 * TARGET:.0f}% test accuracy, lenet5 on digits, {torch.get_num_threads()} threads")
    print(row("seed", "cnnlab (s)", "plain loop (s)", "ratio", widths=(6, 22, 22, 8)))
    ratios = []
    for seed in range(args.seeds):
        (t_ours, e_ours), (t_plain, e_plain) = ours(seed), plain(seed)
        ratios.append(t_plain / t_ours)
        print(row(seed, f"{t_ours:.2f} ({e_ours} epochs)", f"{t_plain:.2f} ({e_plain} epochs)",
                  f"{t_plain / t_ours:.2f}x", widths=(6, 22, 22, 8)), flush=True)
    print(f"median ratio: {statistics.median(ratios):.2f}x")
    print()
    print("whole processes, from start-up: `cnnlab train` to its end (no arguments; then the general recipe "
          f"{' '.join(GENERAL_ARGS)}) against the plain loop to 97%")
    widths = (6, 16, 10, 16, 10, 16, 14)
    print(row("seed", "default (s)", "accuracy", "general (s)", "accuracy", "plain loop (s)", "ratios",
              widths=widths))
    ratios = []
    for seed in range(args.seeds):
        (t_default, a_default), (t_general, a_general), t_plain = (
            cnnlab_process(seed, []), cnnlab_process(seed, GENERAL_ARGS), plain_process(seed))
        ratios.append((t_plain / t_default, t_plain / t_general))
        print(row(seed, f"{t_default:.2f}", f"{100 * a_default:.2f}%", f"{t_general:.2f}", f"{100 * a_general:.2f}%",
                  f"{t_plain:.2f}", f"{t_plain / t_default:.2f}x / {t_plain / t_general:.2f}x", widths=widths),
              flush=True)
    print(f"median ratios: default {statistics.median(r[0] for r in ratios):.2f}x, "
          f"general {statistics.median(r[1] for r in ratios):.2f}x")


if __name__ == "__main__":
    main()
