"""Feature extraction with cached backbone features against re-running the frozen backbone every epoch.

Model A: a small-input ResNet-18 trained briefly on digits 0-4. Target: digits 5-9. Both sides run the
same transfer (frozen backbone, batch norm in inference mode, new head, no augmentation so that the two are
the same computation), for the same epochs, in the same process; the cached side's time includes computing
the cache. Prints the ratios (off / cached) over the epochs, over the epochs with their checkpoints, and over
the whole fit, and both test accuracies.

    python benchmarks/transfer_feature_cache.py [--epochs 20] [--model resnet18]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import cnnlab
from cnnlab.classify import ClassifierConfig
from cnnlab.run import fit
from cnnlab.transfer import TransferConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", default="resnet18")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"on {cnnlab.cpu_description()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    quiet = lambda *a: None  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        kwargs = {"small_input": True} if args.model != "lenet5" else {}
        fit(ClassifierConfig(model=args.model, model_kwargs=kwargs, data="digits@classes=0-4", epochs=2,
                             run_dir=str(tmp / "a"), quiet=True), log=quiet)
        results = {}
        for cache in ("memory", "off", "memory", "off"):  # alternating; the best of two for each
            cfg = TransferConfig(source=str(tmp / "a"), mode="feature-extraction", cache=cache,
                                 data="digits@classes=5-9", epochs=args.epochs, augment=False, quiet=True,
                                 run_dir=str(tmp / f"{cache}-{len(results.get(cache, []))}"))
            t0 = time.perf_counter()
            r = fit(cfg, log=quiet)
            whole = time.perf_counter() - t0
            results_json = json.loads((r.run_dir / "results.json").read_text())
            cache_s = results_json["transfer"].get("feature_cache", {}).get("seconds", 0.0)
            epochs = cache_s + sum(h["seconds"] for h in r.history)  # training and validation steps
            train = results_json["train_seconds"]  # the above and each epoch's checkpoints
            results.setdefault(cache, []).append((epochs, train, whole, r.test["accuracy"]))
    cached, direct = min(results["memory"]), min(results["off"])
    print(f"feature extraction, {args.model} (small input) from digits 0-4 to digits 5-9, {args.epochs} epochs, "
          f"{torch.get_num_threads()} threads")
    print(f"{'backbone':<28}{'epochs s':>9}{'+ checkpoints s':>16}{'whole fit s':>12}{'test accuracy':>15}")
    for name, (epochs, train, whole, acc) in (("run every epoch (cache off)", direct),
                                              ("features cached once", cached)):
        print(f"{name:<28}{epochs:>9.2f}{train:>16.2f}{whole:>12.2f}{100 * acc:>14.1f}%")
    print(f"speed-up of the cache: {direct[0] / cached[0]:.1f}x over the epochs (training and validation steps, "
          f"and computing the cache), {direct[1] / cached[1]:.1f}x with the per-epoch checkpoints, "
          f"{direct[2] / cached[2]:.1f}x over the whole fit (adds data, model, test, plots and report)")


if __name__ == "__main__":
    main()
