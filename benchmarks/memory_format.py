"""Which models train faster in channels-last memory on the CPU this runs on, beside what each model declares.

A run on a CPU uses channels-last memory for the models registered with ``channels_last=True`` unless
``--channels-last`` or ``--no-channels-last`` says otherwise. This script keeps that declaration honest: it times
training steps (batch 32, fused Adam, fp32) of each model contiguous and channels-last, taking turns, and prints
the speed-up and the declaration side by side. A declared model slower channels-last by more than 5%, or an
undeclared one more than 10% faster (a declaration asks for a clear gain), is named in the last column.
Small-input variants at 32x32 (LeNet-5: its own 32x32 grey input). Every registered model by default: about 25
minutes on 2 cores.

    python benchmarks/memory_format.py [--repeat 3] [--seconds 1] [--models lenet5,resnet18,...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, row, stepper, timed  # noqa: E402

import cnnlab  # noqa: E402

SLOWER, FASTER = 1 / 1.05, 1.10  # within 5% either way is noise on these hosts; a declaration asks for 10%


def case(name: str) -> tuple:
    """(model, builder arguments, input channels, side) for :func:`stepper`."""
    if name == "lenet5":
        return name, {}, 1, 32
    return name, {"small_input": True}, 3, 32


def measure(name: str, repeat: int, seconds: float) -> tuple[float, float]:
    """Contiguous steps/s and the channels-last speed-up, over runs of about ``seconds`` each."""
    one = stepper(*case(name), 1)
    t = time.perf_counter()
    one()
    steps = max(2, min(50, round(seconds / (time.perf_counter() - t))))
    best = timed({"contiguous": stepper(*case(name), steps),
                  "channels-last": stepper(*case(name), steps, channels_last=True)}, repeat)
    return steps / best["contiguous"], best["contiguous"] / best["channels-last"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each layout, taking turns; the best counts")
    parser.add_argument("--seconds", type=float, default=1.0, help="about how long one run of a layout takes")
    parser.add_argument("--models", help="comma-separated model names (default: every registered model)")
    args = parser.parse_args()
    if args.repeat < 1 or args.seconds <= 0:
        parser.error("--repeat must be 1 or more and --seconds above 0")
    names = args.models.split(",") if args.models else cnnlab.list_models()
    unknown = [n for n in names if n not in cnnlab.list_models()]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; see cnnlab models")
    print(machine())
    widths = (22, 14, 16, 10, 18)
    print(row("model", "contiguous/s", "channels-last x", "declared", "verdict", widths=widths))
    for name in names:
        print(f"measuring {name}", file=sys.stderr, flush=True)
        speed, ratio = measure(name, args.repeat, args.seconds)
        said = cnnlab.model_meta(name).channels_last
        verdict = ("slower, declared" if said and ratio < SLOWER else
                   "faster, undeclared" if not said and ratio > FASTER else "agrees")
        print(row(name, f"{speed:.1f}", f"{ratio:.2f}x", "yes" if said else "no", verdict, widths=widths),
              flush=True)


if __name__ == "__main__":
    main()
