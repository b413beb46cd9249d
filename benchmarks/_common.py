"""Shared pieces of the benchmarks: the plain PyTorch loop most users write, and timing helpers."""

from __future__ import annotations

import os
import time
from contextlib import nullcontext

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class PlainImageDataset(Dataset):
    """A torchvision-style Dataset: uint8 arrays in memory, per-sample PIL transforms in __getitem__."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int, mean, std, augment: bool, flip: bool):
        arr = (images * 255).round().byte()
        self.images = arr.permute(0, 2, 3, 1).numpy()  # N x H x W x C, as images arrive from files
        self.labels = labels.tolist()
        steps = [transforms.Resize(size)]
        if augment:
            steps.append(transforms.RandomCrop(size, padding=max(1, size // 8)))
            if flip:
                steps.append(transforms.RandomHorizontalFlip())
        steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
        self.transform = transforms.Compose(steps)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        img = self.images[i]
        img = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        return self.transform(img), self.labels[i]


def plain_loader(data_split, size, mean, std, batch_size, augment=True, flip=False, workers=0, shuffle=True):
    ds = PlainImageDataset(data_split.images, data_split.labels, size, mean, std, augment, flip)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=workers, drop_last=shuffle)


def plain_train_steps(model, loader, optimizer, steps: int, device: torch.device | None = None) -> int:
    """The loop from the PyTorch tutorials (each batch moved to ``device``, where one is given); returns the number
    of steps taken."""
    model.train()
    loss_fn = torch.nn.CrossEntropyLoss()
    seen = 0
    while seen < steps:
        for x, y in loader:
            if device is not None:
                x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            seen += 1
            if seen >= steps:
                break
    return seen


def stepper(name, kwargs, channels, side, steps, bf16=False, channels_last=False, compile=False):
    """A function that runs ``steps`` training steps of a fresh model (batch 32, fused Adam), built and warmed up
    (compiled, where asked)."""
    import cnnlab

    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=10, in_chans=channels, **kwargs).train()
    x = torch.randn(32, channels, side, side)
    y = torch.randint(0, 10, (32,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            out = step_model(x)
            loss = loss_fn(out if isinstance(out, torch.Tensor) else out[0], y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3 if not compile else 5):  # warm-up (and compilation)
        step()

    def run() -> None:
        for _ in range(steps):
            step()

    return run


def timed(fns: dict, repeat: int = 3) -> dict:
    """Best of ``repeat`` wall-clock runs of each function, the functions taking turns round by round.

    The machines are noisy (on a shared 2-core host one side's run can be a third slower than its next), and their
    speed drifts: taking turns exposes every side to the same drift, and the minimum is the least disturbed run.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for key, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - t)
    return best


def machine() -> str:
    """The line every benchmark prints first: speeds mean nothing without the CPU they were measured on."""
    import cnnlab

    # PyTorch's, oneDNN's and MKL's own switches that cap the vector units their kernels use: with them, this CPU
    # runs the kernels an older one would (how the AVX2 figures were measured on an AVX-512 machine)
    caps = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
    limits = [f"{k}={os.environ[k]}" for k in caps if os.environ.get(k)]
    kernels = f"; kernels limited by {' '.join(limits)}" if limits else ""
    return f"on {cnnlab.cpu_description()}{kernels}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def measures_bf16() -> bool:
    """Whether to measure bf16 here: only on a CPU with native bf16. Elsewhere PyTorch emulates it, a step at a
    tenth of fp32's speed or less (vgg11's did not finish in ten minutes on an AVX2 CPU), and cnnlab refuses
    ``--precision bf16``; says so in one line."""
    import cnnlab

    if cnnlab.native_bf16():
        return True
    print("no native bf16 on this CPU: --precision bf16 is refused here, and not measured")
    return False


def row(*cells, widths=(22, 14, 14, 10)) -> str:
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False))


def seed_all(seed: int = 0) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
