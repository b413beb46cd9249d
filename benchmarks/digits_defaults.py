"""Digits' own training defaults against cnnlab's general recipe: accuracy and training time over seeds.

digits registers training defaults (``cnnlab.data.train_defaults("digits")``: 15 epochs at batch 64, lr 0.01,
no augmentation) that a run takes when it sets none of --epochs, --batch-size, --lr, --augment. This script
is the measurement behind them: LeNet-5 on digits with those defaults and with the general recipe (40
epochs at batch 32, lr 3e-3, random crops), over seeds 0-4 (each seed also draws its own split), printing the
final validation and test accuracy (mean and lowest) and the training seconds (``results.json``'s
``train_seconds``: the epochs, validation and checkpoints, not start-up or the report). Then the same two
recipes on the other labelled built-in datasets (three seeds), where the general recipe stays the default.

    python benchmarks/digits_defaults.py [--seeds 5] [--other-seeds 3] [--no-others]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, row  # noqa: E402

from cnnlab.classify import ClassifierConfig  # noqa: E402
from cnnlab.data import train_defaults  # noqa: E402
from cnnlab.train import RunConfig, fit  # noqa: E402

KEYS = ("epochs", "batch_size", "lr", "augment")


def measure(data: str, recipe: dict, seeds: range) -> tuple[list[float], list[float], list[float]]:
    """(final validation accuracies, test accuracies, training seconds), one per seed."""
    val, test, seconds = [], [], []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            r = fit(ClassifierConfig(data=data, seed=seed, quiet=True, run_dir=f"{tmp}/run", **recipe),
                    log=lambda *a: None)
            seconds.append(json.loads((r.run_dir / "results.json").read_text())["train_seconds"])
        val.append(r.history[-1]["val_acc"])
        test.append(r.test["accuracy"])
    return val, test, seconds


def report(data: str, name: str, recipe: dict, seeds: range) -> None:
    val, test, seconds = measure(data, recipe, seeds)
    print(row(data, name, f"{100 * statistics.mean(val):.2f} ({100 * min(val):.2f})",
              f"{100 * statistics.mean(test):.2f} ({100 * min(test):.2f})", f"{statistics.mean(seconds):.2f}",
              widths=(10, 10, 18, 18, 10)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--other-seeds", type=int, default=3)
    parser.add_argument("--no-others", action="store_true", help="digits only")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    digits = train_defaults("digits")
    general = {k: getattr(RunConfig, k) for k in KEYS}
    recipes = {"digits'": digits, "general": general}
    print(machine())
    print(f"lenet5; digits' defaults {digits}; general recipe {general}")
    print(row("data", "recipe", "val % (lowest)", "test % (lowest)", "train s", widths=(10, 10, 18, 18, 10)))
    for name, recipe in recipes.items():
        report("digits", name, recipe, range(args.seeds))
    if not args.no_others:
        for data in ("textures", "faces", "shapes"):
            for name, recipe in recipes.items():
                report(data, name, recipe, range(args.other_seeds))


if __name__ == "__main__":
    main()
