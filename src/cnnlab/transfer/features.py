"""Feature caching: a frozen backbone's features are computed once, and the head trains on them.

With the backbone frozen (and its batch norm in inference mode) ``forward_features`` is a fixed function of
the image, so running it every epoch repeats the same work. The cache keeps the unpooled feature maps (the
head pools them itself) in memory, or in a ``.npy`` file on disk memory-mapped when they would not fit.
Augmentation cannot apply to cached features: each image is seen as it is.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.loader import InMemoryLoader
from ..errors import CnnlabError

MEMORY_LIMIT = 2 * 1024**3  # auto: cache on disk above this many bytes of features


class HeadOnly(nn.Module):
    """Runs only the head of ``model`` on cached feature maps (the parameters are the model's own)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(features)

    def freeze_unreached(self, sample: torch.Tensor) -> list[str]:
        """Freeze the trainable parameters that the head never reaches (GoogLeNet's auxiliary heads, which
        branch off inside the backbone: on cached features they get no gradient, and distributed training
        needs every trainable parameter to get one). Found by one backward pass of ``sample`` (two or more
        feature maps) in eval mode; returns their names."""
        was = self.training
        self.eval()
        try:
            self(sample).float().sum().backward()
        finally:
            self.train(was)
        frozen = [n for n, p in self.model.named_parameters() if p.requires_grad and p.grad is None]
        for name, p in self.model.named_parameters():
            if name in frozen:
                p.requires_grad_(False)
            p.grad = None
        return frozen


def _ordered(loader):
    """The same loader without shuffling or augmentation (every image once, as it is). A torch ``DataLoader``
    (which cannot be changed once built) is rebuilt over its dataset, in order: its dataset's own transforms
    still apply, so give it one without random augmentation."""
    if isinstance(loader, torch.utils.data.DataLoader):
        return torch.utils.data.DataLoader(loader.dataset, batch_size=max(loader.batch_size or 1, 256),
                                           shuffle=False, num_workers=loader.num_workers,
                                           collate_fn=loader.collate_fn, pin_memory=loader.pin_memory)
    plain = copy.copy(loader)
    plain.shuffle, plain.augment = False, None
    if hasattr(plain, "batch_size"):
        plain.batch_size = max(plain.batch_size, 256)
    return plain


def _image_count(loader) -> int:
    """The images a loader holds: cnnlab's in memory or streamed, or a torch DataLoader's dataset."""
    if isinstance(loader, torch.utils.data.DataLoader):
        return len(loader.dataset)
    return len(getattr(loader, "images", getattr(loader, "files", [])))


def _unlink_mapped(path: Path) -> None:
    """Remove ``path``, memory-mapped by this process, from its folder: on POSIX the mapping keeps the data
    until the process ends, however it ends. Where the system refuses (Windows keeps mapped files), the file
    stays, for :meth:`FeatureCache.close` to remove."""
    with contextlib.suppress(OSError):
        path.unlink()


def _reserve(path: Path) -> None:
    """Allocate the blocks of the mapped file ``path`` now (the file is created sparse): a write into a mapping
    the disk has no room for kills the process with SIGBUS, without a word; this fails in one line instead."""
    if not hasattr(os, "posix_fallocate"):
        return
    size = path.stat().st_size
    try:
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, size)
    except OSError as e:
        path.unlink(missing_ok=True)
        raise CnnlabError(f"the feature cache '{path}' ({size / 2**20:.1f} MiB) cannot be written: "
                          f"{e.strerror or e}; free some space or use --cache memory") from None


@torch.no_grad()
def extract_features(model: nn.Module, loader, where: str = "memory", path: Path | None = None,
                     total: int | None = None, unlink: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``forward_features`` of every image of ``loader`` (in order, no augmentation) and the labels.

    ``where="disk"`` writes them to ``path`` (``.npy``) and returns a memory-mapped tensor over it; ``total``
    is an upper bound of the number of images (needed to size the file). ``unlink`` removes the file as soon
    as it is mapped, where the system allows it: nothing is left behind by a process that dies.
    """
    was_training = model.training
    model.eval()
    feats, labels, out, n = [], [], None, 0
    try:
        for x, y in _ordered(loader):
            f = model.forward_features(x).float()
            if where == "disk":
                if out is None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                                    shape=(total or _image_count(loader), *f.shape[1:]))
                    _reserve(path)
                    if unlink:
                        _unlink_mapped(path)
                out[n:n + len(f)] = f.cpu().numpy()
            else:
                feats.append(f)
            labels.append(y)
            n += len(f)
    finally:
        model.train(was_training)
    y = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    if where == "disk":
        out.flush()
        return torch.from_numpy(out[:n]), y
    return torch.cat(feats), y


class FeatureCache:
    """The cached features of each split and loaders over them.

    Args:
        model: the model whose (frozen) backbone produces the features.
        loaders: the image loaders, by split (``train``, ``val``, ...).
        where: ``memory``, ``disk`` or ``auto`` (disk above :data:`MEMORY_LIMIT` bytes).
        directory: where disk caches go (e.g. ``RUN/feature_cache``; removed by :meth:`close`).
        unlinked: take the files out of ``directory`` as soon as they are mapped (and the directory, once
            empty), where the system allows it (POSIX): the cache lives as long as the process, and a process
            killed without its cleanup (one whose distributed peer is gone leaves at once) leaves no file.
    """

    def __init__(self, model: nn.Module, loaders: dict, where: str = "auto", directory: Path | None = None,
                 splits: tuple[str, ...] = ("train", "val"), unlinked: bool = False) -> None:
        self.directory = directory
        if where == "disk" and directory is None:
            raise CnnlabError("a feature cache on disk needs a directory to write it in")
        t0 = time.perf_counter()
        if where == "auto":
            where = "disk" if directory is not None and self._estimate(model, loaders, splits) > MEMORY_LIMIT \
                else "memory"
        self.where = where
        self.features = {}
        # where the head trains (the model's device): a disk cache stays in the host's memory, its batches go there
        self.device = next(model.parameters()).device
        for split in splits:
            total = _image_count(loaders[split])
            f, y = extract_features(
                model, loaders[split], where, directory / f"{split}.npy" if directory else None, total, unlinked)
            self.features[split] = (f, y.to(f.device))
        if unlinked and where == "disk" and not any(directory.iterdir()):
            directory.rmdir()
        self.seconds = time.perf_counter() - t0

    @staticmethod
    def _estimate(model, loaders, splits) -> int:
        x, _ = next(iter(_ordered(loaders["train"])))
        with torch.no_grad():
            was = model.training
            model.eval()
            per = model.forward_features(x[:1]).numel() * 4
            model.train(was)
        return per * sum(_image_count(loaders[s]) for s in splits)

    @property
    def nbytes(self) -> int:
        return sum(f.numel() * f.element_size() for f, _ in self.features.values())

    def loaders(self, batch_size: int, seed: int) -> dict:
        """Loaders over the cached features: ``train`` shuffled by (seed, epoch), the others in order."""
        return {split: InMemoryLoader(f, y, batch_size if split == "train" else max(256, batch_size),
                                      shuffle=split == "train", seed=seed, device=self.device)
                for split, (f, y) in self.features.items()}

    def close(self) -> None:
        """Drop the features (and the files of a disk cache)."""
        self.features = {}
        if self.where == "disk" and self.directory is not None:
            import shutil

            shutil.rmtree(self.directory, ignore_errors=True)
