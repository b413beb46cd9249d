"""Folders too large for memory: images stay on disk and stream through a DataLoader with workers.

Each worker decodes and resizes its images; the main process then normalises and augments the whole
batch at once with the same batched operations as the in-memory path. Unreadable files met while
streaming are skipped (and counted), never fatal.
"""

from __future__ import annotations

import copy
import os
import signal
import warnings
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from .._images import decode_image
from .._signals import signals_held, stop_hearing_children
from ..errors import CnnlabError
from .loader import Augment, Sharded, send


@dataclass(repr=False)
class FileSet:
    """One split as a list of image files and their labels."""

    files: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:  # not every path
        return f"FileSet({len(self)} files)"


@dataclass(repr=False)
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

    def split(self, name: str) -> FileSet:
        """One split by name, or ``"all"``: every file, the three splits in turn."""
        if name != "all":
            return self.splits()[name]
        parts = list(self.splits().values())
        return FileSet([f for p in parts for f in p.files], [label for p in parts for label in p.labels])

    def describe(self) -> str:
        # files, not images: an unreadable file is only found when it is decoded (and then skipped, said once)
        return (f"{self.name} (streamed from disk): {len(self.train)}/{len(self.val)}/{len(self.test)} "
                f"train/val/test files, {self.channels}x{self.image_size[0]}x{self.image_size[1]}, "
                f"{self.num_classes} classes")

    def __repr__(self) -> str:
        return f"<StreamingData {self.describe()}>"


class _Files(Dataset):
    """Decodes one file per item in a worker; an unreadable file comes back as its index (an int)."""

    def __init__(self, files: FileSet, channels: int, geometry) -> None:
        self.files, self.channels, self.geometry = files, channels, geometry
        self.bad: set[int] = set()  # known unreadable: not decoded again (workers get a copy each epoch)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        if i in self.bad:
            return i
        try:
            img = decode_image(self.files.files[i], self.channels)
        except Exception:
            return i
        return self.geometry(img.unsqueeze(0))[0], self.files.labels[i]


def _worker_init(worker_id: int) -> None:
    """Workers leave Ctrl-C and SIGTERM to the main process, which stops them: a worker killed by a signal
    sent to the whole process group (Ctrl-C, systemd, Slurm, ``kill -- -PGID``) would make the main process
    fail with "DataLoader worker killed by signal" instead of stopping through its own handler."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))  # also how the main process ends them


def _start(loader: DataLoader):
    """``iter(loader)``, which forks the workers, with Ctrl-C and SIGTERM held: one arriving meanwhile would
    raise inside a half-built iterator or a half-started worker (a traceback, not a clean stop). Once one has
    arrived, the workers' deaths are no longer reported: sent to the whole process group, it can kill a worker
    that torch's own handler still guards (it dies of the signal), and torch's SIGCHLD handler would raise that
    anywhere in this block, even inside the start of a queue's thread (its traceback, and a thread left half
    registered)."""
    if not loader.num_workers:
        return iter(loader)
    replaced = []

    def stopping(signum: int) -> None:
        replaced.append(stop_hearing_children())

    with signals_held(on_caught=stopping):
        iterator = iter(loader)
    if replaced and replaced[0] is not None:  # the held signal's handler did not stop (a script's own): as before
        signal.signal(signal.SIGCHLD, replaced[0])
    return iterator  # (a signal held meanwhile is raised above, while this frame still holds the workers)


def _collate(batch):
    kept = [b for b in batch if not isinstance(b, int)]
    bad = [b for b in batch if isinstance(b, int)]
    if not kept:
        return None, None, bad
    return torch.stack([b[0] for b in kept]), torch.tensor([b[1] for b in kept]), bad


class StreamingLoader(Sharded):
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
        self.skipped = 0  # images skipped over all epochs so far

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-(len(self.files) // self.world) // self.batch_size)

    def first_batch(self):
        """This epoch's first batch, decoded in this process: one batch does not pay for starting the workers
        (each a process that decodes batches ahead)."""
        one = copy.copy(self)
        one.workers = 0
        return Sharded.first_batch(one)

    def __iter__(self):
        # the order one process takes, or this process's shard of it (the same shuffle on every process); the
        # workers' seeds and the augmentation draw from g, never from the global generator
        order, g = self.epoch_order(len(self.files))
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=None if order is None else
                            order.tolist(), generator=g, num_workers=self.workers, collate_fn=_collate,
                            drop_last=False, persistent_workers=False, pin_memory=self.device.type == "cuda",
                            worker_init_fn=_worker_init if self.workers else None)
        new: list[int] = []
        last = None
        for x, y, bad in _start(loader):
            self.skipped += len(bad)
            new += [i for i in bad if i not in self.dataset.bad]
            if self.world > 1:  # every process takes as many steps: a batch left empty repeats the one before
                if x is None:
                    if last is None:
                        raise CnnlabError(f"every image of a batch is unreadable, e.g. "
                                          f"{self.files.files[bad[0]]}; remove the unreadable files")
                    x, y = last
                last = (x, y)
            elif x is None or (self.shuffle and len(x) < 2):
                continue
            # pinned by the DataLoader on CUDA, so the copy overlaps the GPU's work
            x, y = self.preprocess.normalise(send(x, self.device)), send(y, self.device)
            if self.augment is not None:
                x = self.augment(x, g)
            yield x, y
        if self.world > 1 and dist.is_available() and dist.is_initialized():
            # each process decodes its shard, a new one every epoch: together they know the whole split's, and
            # say it once (as one process does), not a few more files every epoch as each shard turns them up
            every: list[list[int]] = [[] for _ in range(self.world)]
            dist.all_gather_object(every, new)
            new = list(dict.fromkeys(i for part in every for i in part))
        if new:  # once per file, not per epoch or per worker: known files are not decoded again
            self.dataset.bad.update(new)
            warnings.warn(f"skipped {len(new)} unreadable image file(s) while streaming from disk (corrupt, "
                          f"truncated, empty, not an image, or more pixels than PIL opens), e.g. "
                          f"{self.files.files[new[0]]}", stacklevel=2)
