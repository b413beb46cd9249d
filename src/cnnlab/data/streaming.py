"""Folders too large for memory: images stay on disk and stream through a DataLoader with workers.

Each worker decodes and resizes its images; the main process then normalises and augments the whole
batch at once with the same batched operations as the in-memory path. Unreadable files met while
streaming are skipped (and counted), never fatal.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset

from .loader import Augment


@dataclass
class FileSet:
    """One split as a list of image files and their labels."""

    files: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.files)


@dataclass
class StreamingData:
    """Like :class:`ImageData`, but the splits are file lists."""

    name: str
    train: FileSet
    val: FileSet
    test: FileSet
    classes: list[str]
    channels: int
    image_size: tuple[int, int]
    source: str = ""
    task: str = "classification"
    flip_ok: bool = True
    notes: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> dict[str, FileSet]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def describe(self) -> str:
        return (f"{self.name} (streamed from disk): {len(self.train)}/{len(self.val)}/{len(self.test)} "
                f"train/val/test images, {self.channels}x{self.image_size[0]}x{self.image_size[1]}, "
                f"{self.num_classes} classes")


class _Files(Dataset):
    def __init__(self, files: FileSet, channels: int, geometry) -> None:
        self.files, self.channels, self.geometry = files, channels, geometry

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from .formats import decode_image

        try:
            img = decode_image(self.files.files[i], self.channels)
        except Exception:
            return None
        return self.geometry(img.unsqueeze(0))[0], self.files.labels[i]


def _collate(batch):
    kept = [b for b in batch if b is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return None, None, skipped
    return torch.stack([b[0] for b in kept]), torch.tensor([b[1] for b in kept]), skipped


class StreamingLoader:
    """Batches ``(images, labels)`` from files: decoded in ``workers`` processes, normalised and augmented
    in batch on the device. Shuffling is seeded by ``(seed, epoch)``."""

    def __init__(self, files: FileSet, channels: int, preprocess, batch_size: int, device: torch.device,
                 shuffle: bool = False, augment: Augment | None = None, seed: int = 0,
                 workers: int | None = None) -> None:
        self.files, self.preprocess, self.device = files, preprocess, device
        self.shuffle, self.augment, self.seed, self.epoch = shuffle, augment, seed, 0
        self.batch_size = batch_size
        self.workers = min(4, os.cpu_count() or 1) if workers is None else workers
        self.dataset = _Files(files, channels, preprocess.geometry)
        self.skipped = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.files) // self.batch_size)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=self.shuffle, generator=g,
                            num_workers=self.workers, collate_fn=_collate, drop_last=False,
                            persistent_workers=False)
        for x, y, skipped in loader:
            if skipped:
                self.skipped += skipped
                warnings.warn(f"skipped {skipped} unreadable image file(s) while streaming", stacklevel=2)
            if x is None or (self.shuffle and len(x) < 2):
                continue
            x = self.preprocess.normalise(x.to(self.device))
            y = y.to(self.device)
            if self.augment is not None:
                x = self.augment(x, g)
            yield x, y
