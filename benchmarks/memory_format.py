"""Which models train faster in channels-last memory on the CPU this runs on, beside what each model declares.

A run on a CPU uses channels-last memory for the models registered with ``channels_last=True`` (LeNet-5, the
MobileNets, the EfficientNets) unless ``--channels-last`` or ``--no-channels-last`` says otherwise. This script
keeps that declaration honest: it times training steps (batch 32, fused Adam, fp32) of each model contiguous and
channels-last, taking turns, and prints the speed-up and the declaration side by side. A declared model slower
channels-last, or an undeclared one more than 5% faster, is named in the last column. Small-input variants at
32x32 (LeNet-5: its own 32x32 grey input), so that the slow models finish in minutes.

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

# models whose layout is not declared, measured beside the declared ones: the residual, plain, dense and
# separable families (ResNet-18 and VGG-11 were slower channels-last in some earlier runs of speedups.py)
CONTROLS = ("resnet18", "resnet20", "vgg11_bn", "densenet121", "xception", "googlenet")
MARGIN = 1.05  # a speed-up within 5% either way is noise on these hosts, and no mismatch


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
    parser.add_argument("--models", help="comma-separated model names (default: the declared ones and controls)")
    args = parser.parse_args()
    if args.repeat < 1 or args.seconds <= 0:
        parser.error("--repeat must be 1 or more and --seconds above 0")
    declared = [n for n in cnnlab.list_models() if cnnlab.model_meta(n).channels_last]
    names = args.models.split(",") if args.models else declared + list(CONTROLS)
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
        verdict = ("slower, declared" if said and ratio < 1 / MARGIN else
                   "faster, undeclared" if not said and ratio > MARGIN else "agrees")
        print(row(name, f"{speed:.1f}", f"{ratio:.2f}x", "yes" if said else "no", verdict, widths=widths),
              flush=True)


if __name__ == "__main__":
    main()
