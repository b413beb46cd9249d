"""The fast path: datasets that fit in memory live as tensors on the training device; a batch is an
index slice, and augmentation runs on the whole batch at once (random crop with padding, flip, noise)
with no per-sample Python. This is what makes small-image training several times faster than a
DataLoader over per-sample transforms, where Python overhead dominates the arithmetic.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def send(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t``, in the host's memory, on ``device`` without making the host wait where that is safe. A blocking
    copy to a GPU synchronises the host with it (two a step, from the random crop's draws, were counted on an
    H200). On CUDA the copy goes from pinned memory, in the stream's order: PyTorch's pinned-memory cache keeps
    the block until the copy is done, so ``t`` may be freed at once (a copy from pageable memory may still
    wait inside the driver). On MPS the copy blocks: a non-blocking one there can read the host's memory after
    it is freed (PyTorch issues 139550 and 189690). The meta device has nothing to wait for."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)  # pin_memory: ``t`` itself where already pinned
    return t.to(device, non_blocking=device.type == "meta")


@dataclass
class Augment:
    """Batched augmentation. ``crop_pad``: random crop after zero-padding by this many pixels;
    ``hflip``/``vflip``: random flips with probability 0.5; ``noise``: Gaussian noise of this std."""

    crop_pad: int = 0
    hflip: bool = False
    vflip: bool = False
    noise: float = 0.0

    def __call__(self, x: torch.Tensor, g: torch.Generator, masks: torch.Tensor | None = None):
        n, _, h, w = x.shape
        # drawn from the CPU generator (reproducible on any device), sent without making the host wait
        rand = lambda *s: send(torch.rand(*s, generator=g), x.device)  # noqa: E731
        if self.crop_pad:
            p = self.crop_pad
            oy = (rand(n) * (2 * p + 1)).long()
            ox = (rand(n) * (2 * p + 1)).long()
            rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]   # N x 1 x H x 1
            cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]   # N x 1 x 1 x W
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = F.pad(x, (p, p, p, p))[batch, chans, rows, cols]
            if masks is not None:
                masks = F.pad(masks, (p, p, p, p))[batch[:, 0], rows[:, 0], cols[:, 0]]
        for flip, dim in ((self.hflip, -1), (self.vflip, -2)):
            if flip:
                sel = rand(n) < 0.5
                x = torch.where(sel[:, None, None, None], x.flip(dim), x)
                if masks is not None:
                    masks = torch.where(sel[:, None, None], masks.flip(dim), masks)
        if self.noise:
            x = x + self.noise * send(torch.randn(x.shape, generator=g), x.device)
        return x if masks is None else (x, masks)


class Sharded:
    """What a loader needs to be one process's part of a distributed job: :meth:`sharded` and, per epoch, the
    order to visit its items and the generator to augment with (``self.seed``, ``self.epoch``, ``self.shuffle``
    are the loader's own)."""

    rank, world = 0, 1

    def sharded(self, rank: int, world: int):
        """This loader as process ``rank`` of ``world`` sees it (distributed training): every epoch, the same
        order as one process would draw, cut to a multiple of ``world`` items, and every ``world``-th item of
        it from ``rank`` on. Together the processes' batches ``b`` are the one process's batch ``b`` of
        ``world`` times the size; each process draws its augmentation from its own generator."""
        shard = copy.copy(self)
        shard.rank, shard.world = rank, world
        return shard

    def epoch_order(self, n: int) -> tuple[torch.Tensor | None, torch.Generator]:
        """This epoch's order of ``n`` items for this process (:func:`shard_order`), and the generator its
        augmentation draws from: seeded by ``(seed, epoch)``, so any epoch can be replayed exactly."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = shard_order(n, self.shuffle, g, self.rank, self.world)
        if self.world > 1:  # the shuffle is every process's; the augmentation is each one's own
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_009 + self.rank)
        return order, g

    def first_batch(self):
        """This epoch's first batch, as iterating gives it, or None where there is none: what a run measures
        its step on (:func:`~cnnlab.train.precision.measure_precision`)."""
        batches = iter(self)
        try:
            return next(batches, None)
        finally:
            batches.close()


class InMemoryLoader(Sharded):
    """Batches of ``(images, targets)`` sliced from tensors already on the device.

    Shuffling and augmentation draw from a generator seeded by ``(seed, epoch)``, so any epoch can be
    replayed exactly (this is what makes ``--resume`` reproduce an uninterrupted run). ``device``: where each
    batch goes, for tensors kept in the host's memory (a memory-mapped file, too large for the GPU); None:
    where the tensors are.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, batch_size: int, shuffle: bool = False,
                 augment: Augment | None = None, seed: int = 0, masks: torch.Tensor | None = None,
                 device: torch.device | None = None) -> None:
        self.images, self.targets, self.masks = images, targets, masks
        self.batch_size, self.shuffle, self.augment, self.seed = batch_size, shuffle, augment, seed
        self.device = device if device is not None and torch.device(device) != images.device else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.images) // self.world
        batches = -(-n // self.batch_size)
        # a training batch of one would break batch norm; it is dropped
        return batches - 1 if self.shuffle and n % self.batch_size == 1 and batches > 1 else batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, g = self.epoch_order(len(self.images))
        order = send(order, self.images.device) if order is not None else None
        for b in range(len(self)):
            idx = slice(b * self.batch_size, (b + 1) * self.batch_size)
            sel = order[idx] if order is not None else idx
            x, y = self.images[sel], self.targets[sel]
            if self.device is not None:
                x, y = send(x, self.device), send(y, self.device)
            if self.augment is not None:
                x, y = self._augment(x, y, g)
            yield x, y

    def _augment(self, x: torch.Tensor, targets: torch.Tensor, g: torch.Generator):
        """Augment a batch; class labels are unchanged (a subclass with per-pixel targets moves them too)."""
        return self.augment(x, g), targets


def shard_order(n: int, shuffle: bool, g: torch.Generator, rank: int = 0, world: int = 1) -> torch.Tensor | None:
    """The order in which process ``rank`` of ``world`` visits ``n`` items this epoch: a permutation drawn from
    ``g`` (the same on every process) or, without ``shuffle``, the items in order; cut to a multiple of
    ``world`` and strided from ``rank`` (like torch's DistributedSampler, but dropping the remainder rather than
    repeating items). None: every item in order (one process, no shuffle)."""
    if world == 1:
        return torch.randperm(n, generator=g) if shuffle else None
    order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
    return order[: n - n % world][rank::world]


def default_augment(height: int, flip_ok: bool, enabled: bool = True) -> Augment | None:
    """cnnlab's training augmentation: a random crop after padding by an eighth of the side, and horizontal
    flips where they keep the meaning (not for digits); None when ``enabled`` is false."""
    return Augment(crop_pad=max(1, height // 8), hflip=flip_ok) if enabled else None


def split_loaders(data, batch_size: int, device: torch.device, augment: bool, seed: int, targets: str = "labels",
                  loader: type[InMemoryLoader] = InMemoryLoader) -> dict[str, InMemoryLoader]:
    """A loader per split of in-memory ``data`` (its tensors moved to ``device``): the training split shuffled
    and, with ``augment``, augmented (:func:`default_augment`); the others in order, in batches of at least 256.
    ``targets`` names what each batch pairs with its images (``labels``, or ``masks`` for segmentation)."""
    out = {}
    for split, s in data.splits().items():
        train = split == "train"
        out[split] = loader(s.images.to(device), getattr(s, targets).to(device),
                            batch_size if train else max(256, batch_size), shuffle=train,
                            augment=default_augment(data.image_size[0], data.flip_ok, augment and train), seed=seed)
    return out
