"""Time to 97% test accuracy on digits: cnnlab's engine against the loop most users write.

Both train LeNet-5 (32x32, the paper's padding) with the same recipe: Adam, peak lr 3e-3 with a cosine
schedule over 40 epochs, batch 32, label smoothing 0.1, random-crop augmentation; both evaluate the test
split after every epoch and stop the clock at the first epoch that reaches 97%. The peer uses a
torchvision-style Dataset with per-sample transforms and a DataLoader (num_workers=0, the default).
Both clocks start before the data is loaded; cnnlab's time includes everything ``cnnlab train`` does per
epoch (validation, checkpoints written to disk, metrics.csv) but not the final plots and report. Three
seeds; prints the median ratio.

    python benchmarks/time_to_accuracy.py [--seeds 3]
"""

from __future__ import annotations

import argparse
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
        fit(ClassifierConfig(seed=seed, quiet=True, run_dir=f"{tmp}/run"), log=lambda *a: None, on_epoch_end=check)
    return reached.get("t", float("nan")), reached.get("epoch", 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
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


if __name__ == "__main__":
    main()
