"""Training throughput (images/s): cnnlab's in-memory engine against the loop most users write.

The peer: the same model, a torchvision-style Dataset with per-sample PIL transforms (resize, random crop,
flip, ToTensor, Normalize), a DataLoader (default num_workers=0, and 2), plain PyTorch steps. cnnlab: data
resized and normalised once and kept as tensors, index-sliced batches, batched augmentation, the engine's
train step. Both sides train the same architecture with the same batch size and Adam (the peer torch's default,
foreach implementation; cnnlab its fused one), in fp32 (the precision ``cnnlab train`` picks on a CPU; cnnlab in
the memory layout a run picks: channels-last for LeNet-5, contiguous for ResNet-18), for
exactly the same number of steps, measured in the same run: each side runs five times, the sides taking turns
(so that a drift in the machine's speed meets both), and its best run counts. Prints the ratio cnnlab / peer.

With ``--device cuda`` both sides train on the GPU, in fp32: cnnlab's data lives there (as a run's in-memory
data does) and the peer moves each batch there as the tutorials do; each timed run ends by waiting for the GPU.

    python benchmarks/train_throughput.py [--steps 30] [--repeat 5] [--device cuda] [--cases resnet18-32,...]
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, plain_loader, plain_train_steps, row, seed_all, timed  # noqa: E402

import cnnlab  # noqa: E402
from cnnlab.classify import ClassifierConfig, classification_task, fit_to_model, labelled_loaders  # noqa: E402
from cnnlab.data import load_dataset  # noqa: E402
from cnnlab.train import Progress, train_one_epoch  # noqa: E402
from cnnlab.train.layout import resolve_channels_last  # noqa: E402
from cnnlab.train.setup import build_optimizer  # noqa: E402


def cnnlab_steps(config: ClassifierConfig, model, steps: int, device: torch.device):
    data = load_dataset(config.data, seed=0)
    task = classification_task(data, config)
    data, pre = fit_to_model(config, model, data)
    loader = labelled_loaders(data, config, device, pre)["train"]
    if resolve_channels_last(config.channels_last, model, device):  # the layout a run picks
        model.to(memory_format=torch.channels_last)
        config = config.replace(channels_last=True)
    optimizer = build_optimizer(config.replace(lr=1e-3), model)  # the engine's (fused) Adam
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    config = config.replace(epochs=1)

    class Limited:  # the engine's loader, cut so that all epochs together take exactly `steps` batches
        def __init__(self, inner, first: int):
            self.inner, self.first = inner, first

        def __len__(self):
            return max(0, min(len(self.inner), steps - self.first))

        def __iter__(self):
            for b in itertools.islice(self.inner, len(self)):
                seen[0] += len(b[1])
                yield b

    epochs = -(-steps // len(loader))
    seen = [0]  # images of the last run (an epoch's last batch may be short)

    def run():
        seen[0] = 0
        for e in range(epochs):
            loader.set_epoch(e)
            train_one_epoch(model, Limited(loader, e * len(loader)), task, optimizer, scheduler, config,
                            device, scaler, Progress(False))

    return run, pre, data, lambda: seen[0]


def case(name: str, model_name: str, data_spec: str, image_size: int | None, batch: int, steps: int, flip: bool,
         device: torch.device, repeat: int = 5):
    seed_all()
    config = ClassifierConfig(model=model_name, data=data_spec, batch_size=batch, image_size=image_size, quiet=True,
                              label_smoothing=0.0).resolved()  # the general recipe's options: random crops
    raw = load_dataset(data_spec, seed=0)
    ours = cnnlab.create_model(model_name, in_chans=raw.channels, num_classes=raw.num_classes).to(device)
    run, pre, data, images = cnnlab_steps(config, ours, steps, device)
    if model_name == "lenet5":
        theirs = cnnlab.create_model(model_name, in_chans=raw.channels, num_classes=raw.num_classes)
    else:
        theirs = getattr(torchvision.models, model_name)(num_classes=raw.num_classes)
        if raw.channels == 1:
            theirs.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    theirs.to(device)
    opt = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    size = pre.size[0]

    def peer(workers: int):
        loader = plain_loader(raw.train, size, pre.mean, pre.std, batch, augment=True, flip=flip, workers=workers)
        return lambda: plain_train_steps(theirs, loader, opt, steps, device)  # on the CPU, .to() is a no-op

    def waited(fn):  # a GPU's work is done only when the host has waited for it
        return (lambda: (fn(), torch.cuda.synchronize(device))) if device.type == "cuda" else fn

    best = timed({0: waited(peer(0)), 2: waited(peer(2)), "cnnlab": waited(run)}, repeat=repeat)
    ours_ips = images() / best.pop("cnnlab")
    results = {workers: steps * batch / t for workers, t in best.items()}
    for workers, ips in results.items():
        print(row(f"{name}", f"{ours_ips:,.0f}", f"{ips:,.0f}", f"{ours_ips / ips:.2f}x", f"num_workers={workers}",
                  widths=(24, 10, 12, 8, 14)), flush=True)


# name: (label, model, data, image size, steps as a multiple of --steps, random flips)
CASES = {
    "lenet5": ("lenet5 digits 32x32", "lenet5", "digits", None, 2, False),
    "resnet18-32": ("resnet18 digits 32x32", "resnet18", "digits", 32, 1, False),
    "resnet18-64": ("resnet18 shapes 64x64", "resnet18", "shapes:size=64,count=1000", None, 0.5, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each side, taking turns; the best counts")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda[:N]: both sides train there (fp32)")
    parser.add_argument("--cases", default=",".join(CASES), metavar="NAMES",
                        help=f"the cases to run, comma-separated (default: all: {','.join(CASES)})")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or any(c not in CASES for c in cases):
        parser.error(f"--cases takes names from {','.join(CASES)}, not {args.cases!r}")
    if args.repeat < 1:
        parser.error(f"--repeat must be 1 or more (runs of each side), not {args.repeat}")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        parser.error(f"--device must be cpu, cuda or cuda:N, not {args.device!r}")
    device = torch.device(args.device)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        parser.error(f"--device {args.device}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s) here")
    torch.set_num_threads(2)
    print(machine())
    if device.type == "cuda":
        print(f"both sides on {torch.cuda.get_device_name(device)}, fp32")
    print(f"images/s, best of {args.repeat} runs, the sides taking turns")
    print(row("case", "cnnlab", "plain loop", "ratio", "peer DataLoader", widths=(24, 10, 12, 8, 14)))
    for name in cases:
        label, model, data, size, steps, flip = CASES[name]
        case(label, model, data, size, 64, round(args.steps * steps), flip=flip, repeat=args.repeat, device=device)


if __name__ == "__main__":
    main()
