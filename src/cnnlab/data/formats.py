"""Readers for the formats users already have on disk.

- ``folder:PATH``: torchvision's ImageFolder layout (``PATH/<class>/<image>``, its extensions); an optional
  ``PATH/train`` + ``PATH/test`` (and ``val``) layout uses those splits (:func:`_split_folders`). Corrupt,
  truncated or empty images are skipped with a warning and a count.
- ``mnist:PATH``: MNIST or Fashion-MNIST IDX files (``train-images-idx3-ubyte`` ..., plain or ``.gz``).
- ``cifar10:PATH``: the CIFAR-10 python batches, read with a restricted unpickler that admits only plain
  containers and numpy arrays, so a malicious file cannot run code.
- ``npz:FILE``: arrays ``x`` (N x H x W, N x H x W x C or N x C x H x W) and ``y``; optional ``classes``.
"""

from __future__ import annotations

import gzip
import io
import multiprocessing
import os
import pickle
import re
import sys
import warnings
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .._images import decode_image, image_header, resize_images
from .._io import existing_dir
from .._machine import available_cores
from ..errors import CnnlabError
from ._base import ImageData, ImageSet, check_not_empty, split_dataset, stratified_split
from ._base import memory_limit as default_memory_limit
from ._registry import register_dataset

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


# --- folder ---------------------------------------------------------------------------------------------

# torchvision's ImageFolder rules, written here because importing torchvision imports PyTorch's compiler, about a
# second at the start of every run: its extensions (matched case-insensitively); the class folders sorted by
# name; each class's files walked in sorted order, links followed. tests/test_data.py checks the listing
# against torchvision's own.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def find_classes(root: str) -> tuple[list[str], dict[str, int]]:
    """The class folders of ``root``, sorted, and their indices (FileNotFoundError when there are none)."""
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"Couldn't find any class folder in {root}.")
    return classes, {c: i for i, c in enumerate(classes)}


def make_dataset(root: str, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """``(path, class index)`` of every image file under the class folders of ``root`` that exist."""
    samples = []
    for cls in sorted(class_to_idx):
        folder = os.path.join(root, cls)
        if not os.path.isdir(folder):
            continue
        for dirpath, names in sorted(_walk_once(folder)):
            samples += [(os.path.join(dirpath, n), class_to_idx[cls]) for n in sorted(names)
                        if n.lower().endswith(IMG_EXTENSIONS)]
    return samples


def _walk_once(folder: str) -> list[tuple[str, list[str]]]:
    """``(dirpath, file names)`` of every folder under ``folder``, links followed, each real folder once: a link
    to a folder already walked, or to one that holds ``folder`` (``ln -s .. up``), is not entered (os.walk, and
    so torchvision's ImageFolder, would list its images again and again, or walk the other classes' folders)."""
    own = os.path.realpath(folder)
    seen, walked = set(), []
    for dirpath, dirnames, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen or (real != own and own.startswith(os.path.join(real, ""))):
            dirnames[:] = []
            continue
        seen.add(real)
        walked.append((dirpath, names))
    return walked


_RUN_NAME = re.compile(r".+-\d{8}-\d{6}(-\d+)?")  # a default run directory's name: MODEL-DATA-DATE-TIME


def _holds_runs(folder: Path) -> bool:
    """Whether ``folder`` is or holds a cnnlab run directory: one with a config.yaml beside a checkpoints/ or a
    meta.json, or (a run that has just begun) a folder without images named as the default run directories are
    (a folder of photos named by date and time holds its photos)."""
    def is_run(p: Path) -> bool:
        return (p / "config.yaml").is_file() and ((p / "checkpoints").is_dir() or (p / "meta.json").is_file())

    def begun(entry: os.DirEntry) -> bool:
        if not _RUN_NAME.fullmatch(entry.name):
            return False
        with os.scandir(entry.path) as inside:
            return not any(e.name.lower().endswith(IMG_EXTENSIONS) for e in inside)

    if is_run(folder):
        return True
    with os.scandir(folder) as entries:
        return any(e.is_dir() and (is_run(Path(e.path)) or begun(e)) for e in entries)


def _loose_images(root: Path) -> str:
    """'; its N images at the top level ...' where ``root`` holds images beside (or instead of) class folders."""
    loose = sum(1 for e in os.scandir(root) if e.is_file() and e.name.lower().endswith(IMG_EXTENSIONS))
    return f"; its {loose} image(s) at the top level are read only inside a sub-folder per class" if loose else ""


def _check_no_empty_class(root: Path, class_to_idx: dict[str, int], labels: list[int]) -> None:
    """A class folder without an image would be a class the model is asked to predict and never sees (as
    torchvision's ImageFolder, refused)."""
    present = set(labels)
    empty = sorted(c for c, i in class_to_idx.items() if i not in present)
    if empty:
        raise CnnlabError(f"folder '{root}': the class folder(s) {empty} hold no readable image (extensions "
                          f"{', '.join(IMG_EXTENSIONS)}); add images or remove the folder(s)")


PARALLEL_FILES = 2_000  # a folder of at least this many files is decoded by a pool of processes


def _decoded(file: str) -> torch.Tensor | None:
    try:
        return decode_image(file)
    except Exception:
        return None


def _decoded_arrays(files: list[str]) -> list[np.ndarray | None]:
    """One task of the pool: arrays pickle by value, where tensors would each take a file descriptor."""
    return [None if (t := _decoded(f)) is None else t.numpy() for f in files]


def _one_thread() -> None:
    torch.set_num_threads(1)  # as DataLoader workers: a forked process must not enter the parent's thread pool


def _map_files(task, files: list[str], processes: int | None = None) -> list:
    """``task(files)`` (a list of picklable results, one per file), split over a pool of processes forked from
    this one from :data:`PARALLEL_FILES` files on (or when ``processes`` is given), on Linux: one process per
    available core (``processes``: that many), results in the files' order. Else, and if a process of the pool
    dies (out of memory, say), this process does it all."""
    workers = min(processes or available_cores(), max(1, len(files) // 64))
    if (processes is None and len(files) < PARALLEL_FILES) or workers < 2 or not sys.platform.startswith("linux") \
            or multiprocessing.current_process().daemon:  # a daemonic process may not have children
        return task(files)
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    size = -(-len(files) // (4 * workers))  # four tasks a process: an uneven tail waits on little
    chunks = [files[i:i + size] for i in range(0, len(files), size)]
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_one_thread) as pool:
            return [r for chunk in pool.map(task, chunks) for r in chunk]
    except BrokenProcessPool:
        return task(files)


def decode_files(files: list[str], processes: int | None = None) -> list[torch.Tensor | None]:
    """The images of ``files`` as :func:`decode_image` gives them, None for a file that cannot be decoded; many
    files are decoded by a pool of processes (:func:`_map_files`): decoding is Python and PIL work that one
    process does a file at a time (10,000 PNG files of 32x32: 3.1-3.8 s in one process, 2.4-3.4 s in two, on a
    2-core AMD EPYC)."""
    return [None if a is None else torch.from_numpy(a) for a in _map_files(_decoded_arrays, files, processes)]


def _headers(files: list[str]) -> list[tuple[int, tuple[int, int]] | None]:
    """One task of the pool: each file's (channels, size) from its header, None where it cannot be read."""
    out = []
    for f in files:
        try:
            out.append(image_header(f))
        except Exception:
            out.append(None)
    return out


def _shape_of(decoded: list) -> tuple[int, tuple[int, int]]:
    """A folder's channels and image size from its images' ``(channels, (h, w))``: RGB if any image is in
    colour (grey ones are repeated on three channels), else grey; the most common size (the others are
    resized to it). The same rule whether the folder is read into memory or streamed from disk."""
    channels = 3 if any(c == 3 for c, _ in decoded) else 1
    # counted in one pass (a folder of photos can have thousands of sizes); a tie goes to the size listed first
    return channels, Counter(hw for _, hw in decoded).most_common(1)[0][0]


def _list_folder(d: Path, classes: list[str] | None = None) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """The image files of a folder of class sub-folders with their class indices (:func:`make_dataset`), and its
    classes: its own for the training folder; for another split, the training folder's ``classes``, which it may
    not add to."""
    try:
        found, class_to_idx = find_classes(str(d))
    except FileNotFoundError as e:
        raise CnnlabError(f"folder '{d}' has no class sub-folders ({e}){_loose_images(d)}") from None
    for c in found:
        try:
            c.encode("utf-8")
        except UnicodeEncodeError:  # a name in another encoding (a zip from another system): it could not be written
            raise CnnlabError(f"folder '{d}': the class folder name {os.fsencode(c)!r} is not UTF-8 (unpacked from "
                              f"an archive made with another encoding?); rename it") from None
    # the default runs/ of a command started inside the data folder (only that folder is looked into: each class
    # folder is listed once, however large)
    runs = [c for c in found if c == "runs" and _holds_runs(d / c)]
    if runs:
        raise CnnlabError(f"folder '{d}': the sub-folder '{runs[0]}' holds cnnlab runs, not a class of images (a run "
                          f"started inside the data folder writes there); give --run-dir a place outside "
                          f"'{d}', or move '{d / runs[0]}' out of it")
    if classes is not None:
        class_to_idx = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise CnnlabError(f"folder '{d}' has classes {unknown} that the training split lacks")
    return make_dataset(str(d), class_to_idx), class_to_idx


def _read_folder(root: Path, samples: list[tuple[str, int]], class_to_idx: dict[str, int],
                 image_size: tuple[int, int] | None, training: bool):
    """The listed images of one folder (``samples``, :func:`_list_folder`), decoded and brought to one size."""
    if not samples:
        raise CnnlabError(f"folder '{root}' holds no images with extensions {', '.join(IMG_EXTENSIONS)} in its "
                          f"class sub-folders{_loose_images(root)}")
    decoded, labels, bad, kept = [], [], [], []
    for i, ((file, label), img) in enumerate(zip(samples, decode_files([f for f, _ in samples]), strict=True)):
        if img is None:  # corrupt, truncated, empty or not an image: skip it and count it
            bad.append(file)
            continue
        decoded.append(img)
        labels.append(label)
        kept.append(i)
    if not decoded:
        raise CnnlabError(f"no readable image in '{root}' ({len(bad)} file(s) could not be decoded)")
    if training:  # every class must have images
        _check_no_empty_class(root, class_to_idx, labels)
    channels, common = _shape_of([(d.shape[0], tuple(d.shape[-2:])) for d in decoded])
    image_size = image_size or common
    images = torch.stack([resize_images(d.expand(channels, -1, -1)[None], image_size)[0]
                          if tuple(d.shape[-2:]) != tuple(image_size) else d.expand(channels, -1, -1)
                          for d in decoded])
    listed = (torch.tensor([label for _, label in samples]), torch.tensor(kept))  # unreadable files included
    return images.clamp(0, 1), torch.tensor(labels), bad, listed


def _warn_skipped(root: Path, bad: list[str]) -> None:
    """One warning for a whole folder (all its splits), with the count and an example."""
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image file(s) in '{root}' (corrupt, truncated, empty, "
                      f"not an image, a pipe, or more pixels than PIL opens), e.g. {bad[0]}", stacklevel=3)


ESTIMATE_FILES = 64  # headers read to size a folder: the first files alone said a folder of photos after one icon fits


def _estimated_bytes(files: list[str], image_size) -> int:
    """Bytes of a folder's images held in memory (float32, at ``image_size`` where given, else at their own size),
    estimated from the headers of up to :data:`ESTIMATE_FILES` files spread over the listing: their mean size
    times the file count."""
    step = max(1, len(files) // ESTIMATE_FILES)
    sizes = []
    for f in files[::step][:ESTIMATE_FILES]:
        try:
            channels, size = image_header(f)
        except Exception:
            continue
        size = tuple(image_size) if image_size else size
        sizes.append(channels * size[0] * size[1] * 4)
    return int(len(files) * sum(sizes) / len(sizes)) if sizes else 0


def _stream_folder(root: Path, folders: dict[str, Path], listed: dict[str, list[tuple[str, int]]],
                   classes: list[str], seed: int, val_fraction: float, test_fraction: float,
                   image_size: tuple[int, int] | None):
    """The folder's listed splits (``listed``: "train", "test" and maybe "val", or "all", in ``folders``) streamed
    from disk. Refused as the in-memory read refuses: a split folder without a readable image, a class without
    one (judged by the files' headers: decoding every file would be reading the folder)."""
    from .streaming import FileSet, StreamingData

    names = list(listed)
    # channels and size by the in-memory rule (_shape_of), from the headers: of every split for the channels, of
    # the training folder for the size. A header costs about 50 us a file, where decoding one costs hundreds.
    every_file = [f for name in names for f, _ in listed[name]]
    heads, readable, at = _map_files(_headers, every_file), {}, 0
    for name in names:
        part = heads[at:at + len(listed[name])]
        readable[name] = [(f, label, h) for (f, label), h in zip(listed[name], part, strict=True) if h is not None]
        at += len(part)
    for name in names:
        if not listed[name]:
            raise CnnlabError(f"folder '{folders[name]}' holds no images with extensions {', '.join(IMG_EXTENSIONS)} "
                              f"in its class sub-folders{_loose_images(folders[name])}")
        if not readable[name]:
            raise CnnlabError(f"no readable image in '{folders[name]}' ({len(listed[name])} file(s) could not be "
                              f"read)")
    first = "train" if "train" in listed else "all"
    _check_no_empty_class(folders[first], {c: i for i, c in enumerate(classes)}, [r[1] for r in readable[first]])

    def listing(name: str) -> FileSet:
        return FileSet([f for f, _ in listed[name]], [label for _, label in listed[name]])

    every = listing(first)
    files, labels = every.files, every.labels
    pick = lambda idx: FileSet([files[i] for i in idx], [labels[i] for i in idx])  # noqa: E731

    def split(fractions: tuple[float, ...]) -> list[torch.Tensor]:  # as the in-memory pool splits: empty is refused
        parts = stratified_split(torch.tensor(labels), len(files), fractions, seed)
        names = ("training", "validation", "test")[:len(fractions)]
        check_not_empty(root.name, len(files), dict(zip(names, zip(parts, fractions, strict=True), strict=True)))
        return parts

    if first == "train":
        test = listing("test")
        if "val" in listed:
            train, val = every, listing("val")
        else:
            train, val = map(pick, split((1 - val_fraction, val_fraction)))
    else:
        train, val, test = map(pick, split((1 - val_fraction - test_fraction, val_fraction, test_fraction)))
    channels = _shape_of([r[2] for name in names for r in readable[name]])[0]
    size = image_size or _shape_of([r[2] for r in readable[first]])[1]
    return StreamingData(root.name, train, val, test, classes, channels, tuple(size), source=str(root))


SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation"), "test": ("test", "testing")}


def _split_folders(root: Path) -> dict[str, Path] | None:
    """``{"train": ..., "test": ..., "val": ...}`` where ``root`` holds a train and a test folder (names matched
    without regard to case: ``Train``, ``training``; ``val``, ``valid``, ``validation``; ``test``, ``testing``);
    None where it holds no folder of those names. Some but not both is refused: those folders would be taken
    for classes, each image labelled by its split."""
    found: dict[str, list[Path]] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir():
            split = next((k for k, v in SPLIT_NAMES.items() if entry.name.lower() in v), None)
            if split:
                found.setdefault(split, []).append(Path(entry.path))
    if not found:
        return None
    twice = {k: [p.name for p in v] for k, v in found.items() if len(v) > 1}
    if twice:
        split, names = next(iter(twice.items()))
        raise CnnlabError(f"folder '{root}' has {len(names)} {split} folders, {names}: keep one")
    if "train" in found and "test" in found:
        return {k: v[0] for k, v in found.items()}
    names = [v[0].name for v in found.values()]
    missing, one = "test" if "train" in found else "train", next(iter(found.values()))[0]
    raise CnnlabError(f"folder '{root}' has the split folder(s) {names} but no {missing} folder: cnnlab reads "
                      f"PATH/train and PATH/test (and PATH/val) as splits, else PATH's sub-folders as classes. Add "
                      f"a {missing} folder (a val folder without a test one can be renamed test: the validation "
                      f"split is then drawn from train), or give one split's folder, folder:{one}")


@register_dataset("folder", "your images in class sub-folders (torchvision ImageFolder layout)",
                  "folder:PATH; PATH/train and PATH/test sub-folders are used as splits when present",
                  takes_path=True)
def folder(path: str, seed: int, val_fraction: float, test_fraction: float,
           image_size: tuple[int, int] | None = None, memory_limit: float | None = None):
    """In memory when the decoded images fit in ``memory_limit`` bytes (default 2 GiB, or the
    CNNLAB_MEMORY_LIMIT_GB environment variable); streamed from disk otherwise."""
    root = existing_dir(path, "folder path")
    if memory_limit is None:
        memory_limit = default_memory_limit()
    splits = _split_folders(root)
    split_layout = splits is not None
    folders = splits or {"all": root}
    # each folder walked once: the listing sizes the data, then is read or streamed
    first, class_to_idx = _list_folder(folders["train" if split_layout else "all"])
    classes = list(class_to_idx)
    listed = {name: first if name in ("train", "all") else _list_folder(d, classes)[0] for name, d in folders.items()}
    if _estimated_bytes([f for samples in listed.values() for f, _ in samples], image_size) > memory_limit:
        return _stream_folder(root, folders, listed, classes, seed, val_fraction, test_fraction, image_size)
    if split_layout:
        x, y, bad, listed_train = _read_folder(folders["train"], listed["train"], class_to_idx, image_size, True)
        size = tuple(x.shape[-2:])
        tx, ty, bad_t, _ = _read_folder(folders["test"], listed["test"], class_to_idx, size, False)
        if "val" in listed:
            vx, vy, bad_v, _ = _read_folder(folders["val"], listed["val"], class_to_idx, size, False)
            channels = max(x.shape[1], tx.shape[1], vx.shape[1])  # colour in any split: every split in colour
            x, vx, tx = (t.expand(-1, channels, -1, -1) for t in (x, vx, tx))
            _warn_skipped(root, bad + bad_v + bad_t)
            return ImageData(root.name, ImageSet(x, y), ImageSet(vx, vy), ImageSet(tx, ty), classes,
                             source=str(root), notes={"skipped_files": len(bad + bad_v + bad_t)})
        x, tx = (t.expand(-1, max(x.shape[1], tx.shape[1]), -1, -1) for t in (x, tx))
        _warn_skipped(root, bad + bad_t)
        return split_dataset(root.name, x, y, classes, seed, val_fraction, 0.0, test=ImageSet(tx, ty),
                             listed=listed_train, source=str(root), notes={"skipped_files": len(bad + bad_t)})
    x, y, bad, listed_all = _read_folder(root, listed["all"], class_to_idx, image_size, True)
    _warn_skipped(root, bad)
    return split_dataset(root.name, x, y, classes, seed, val_fraction, test_fraction, listed=listed_all,
                         source=str(root), notes={"skipped_files": len(bad)})


# --- MNIST IDX ------------------------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST's format: magic, dimensions, big-endian uint8 data); ``.gz`` is unpacked."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise CnnlabError(f"'{path}' is not a valid gzip file: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CnnlabError(f"'{path}' is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise CnnlabError(f"'{path}' is truncated: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).is_file():
            return root / name
    raise CnnlabError(f"'{root}' has no {stem} (or {stem}.gz); is it an MNIST folder?")


@register_dataset("mnist", "MNIST or Fashion-MNIST IDX files (plain or .gz)", "mnist:PATH", takes_path=True)
def mnist(path: str, seed: int, val_fraction: float, test_fraction: float) -> ImageData:
    root = existing_dir(path, "mnist path")
    sets = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
        y = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
        if len(x) != len(y):
            raise CnnlabError(f"'{root}': {len(x)} {split} images but {len(y)} labels")
        if y.size and int(y.max()) > 9:
            raise CnnlabError(f"'{_find(root, f'{prefix}-labels-idx1-ubyte')}' holds label {int(y.max())}: mnist: "
                              f"reads the 10 classes of MNIST or Fashion-MNIST (save other IDX sets as npz:FILE, "
                              f"with their class names)")
        sets[split] = (torch.from_numpy(x.copy()).float().unsqueeze(1) / 255.0, torch.from_numpy(y.copy()).long())
    fashion = _is_fashion(root)
    classes = FASHION_CLASSES if fashion else [str(i) for i in range(10)]
    x, y = sets["train"]
    return split_dataset(root.name, x, y, classes, seed, val_fraction, 0.0, test=ImageSet(*sets["test"]),
                         source=str(root), flip_ok=fashion)


def _is_fashion(root: Path) -> bool:
    """Whether the folder holds Fashion-MNIST (whose IDX files are named as MNIST's): by its name, ``fashion...``,
    or a folder at most two above it named for Fashion-MNIST (torchvision's ``FashionMNIST/raw``, Zalando's
    ``fashion-mnist/data/fashion``); ``fashion_course/digits`` is MNIST."""
    parts = [p.lower() for p in root.parts[-3:]]
    return parts[-1].startswith("fashion") or any("fashion" in p and "mnist" in p for p in parts)


# --- CIFAR-10 -------------------------------------------------------------------------------------------

class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only what CIFAR batches contain: builtin containers and numpy arrays."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not part of a CIFAR batch)")


def read_cifar_batch(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise CnnlabError(f"'{path}' is not a CIFAR-10 python batch: {e}") from None
    if not isinstance(obj, dict):
        raise CnnlabError(f"'{path}' is not a CIFAR-10 python batch")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


@register_dataset("cifar10", "CIFAR-10 python batches (data_batch_1..5, test_batch)", "cifar10:PATH",
                  takes_path=True)
def cifar10(path: str, seed: int, val_fraction: float, test_fraction: float) -> ImageData:
    root = existing_dir(path, "cifar10 path")
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    train_files = sorted(root.glob("data_batch_*"))
    if not train_files or not (root / "test_batch").is_file():
        raise CnnlabError(f"'{root}' has no data_batch_* and test_batch files; is it cifar-10-batches-py?")

    def load(files):
        xs, ys = [], []
        for f in files:
            b = read_cifar_batch(f)
            if "data" not in b or "labels" not in b:
                raise CnnlabError(f"'{f}' lacks 'data' or 'labels'")
            xs.append(np.asarray(b["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(b["labels"]))
        return torch.from_numpy(np.concatenate(xs)).float() / 255.0, torch.from_numpy(np.concatenate(ys)).long()

    x, y = load(train_files)
    tx, ty = load([root / "test_batch"])
    classes = [str(i) for i in range(10)]
    if (root / "batches.meta").is_file():
        names = read_cifar_batch(root / "batches.meta").get("label_names")
        if names:
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    top = max(int(y.max()) if len(y) else 0, int(ty.max()) if len(ty) else 0)
    low = min(int(y.min()) if len(y) else 0, int(ty.min()) if len(ty) else 0)
    if top >= len(classes) or low < 0:
        raise CnnlabError(f"'{root}': labels run from {low} to {top}, but there are {len(classes)} classes "
                          f"({'batches.meta names them' if (root / 'batches.meta').is_file() else 'CIFAR-10'}); "
                          f"labels must be 0..{len(classes) - 1}")
    return split_dataset("cifar10", x, y, classes, seed, val_fraction, 0.0, test=ImageSet(tx, ty),
                         source=str(root))


# --- npz ------------------------------------------------------------------------------------------------

NPZ_LAYOUT = ("arrays x (N x H x W, or N x H x W x C or N x C x H x W with C 1 or 3) and y (N integer labels "
              "0..K-1), optionally classes (K names)")


def _npz_member_has_objects(p: Path, key: str) -> bool:
    """Whether member ``key`` of an .npz is an object (pickled) array, read from its header alone."""
    import zipfile

    with zipfile.ZipFile(p) as z, z.open(key + ".npy") as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0(f) if version == (1, 0) else \
            np.lib.format.read_array_header_2_0(f)
    return header[2].hasobject


def _npz_arrays(p: Path, path: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, never unpickling anything; one line for anything else."""
    import zipfile

    if not zipfile.is_zipfile(p):
        raise CnnlabError(f"'{path}' is not an .npz file (the zip archive numpy.savez writes); it must hold "
                          f"{NPZ_LAYOUT}")
    arrays = {}
    try:
        with np.load(p, allow_pickle=False) as f:
            for key in f.files:
                try:
                    arrays[key] = f[key]
                except ValueError:
                    if _npz_member_has_objects(p, key):
                        raise CnnlabError(f"'{path}': array '{key}' holds Python objects, which cnnlab does not "
                                          f"unpickle; save numeric arrays instead: {NPZ_LAYOUT}") from None
                    raise
    except CnnlabError:
        raise
    except Exception as e:
        raise CnnlabError(f"'{path}' is not a readable .npz file ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:120] if str(e) else 'damaged'}); it must hold {NPZ_LAYOUT}"
                          ) from None
    odd = [k for k, v in arrays.items() if not isinstance(v, np.ndarray)]
    if odd:
        raise CnnlabError(f"'{path}': member '{odd[0]}' is not a numpy array; the file must hold {NPZ_LAYOUT}")
    return arrays


def _to_nchw(x: np.ndarray, path: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise CnnlabError(f"'{path}': array 'x' has shape {x.shape}; it must be N x H x W, N x H x W x C (C 1 or 3) "
                          f"or N x C x H x W")
    if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        return x.transpose(0, 3, 1, 2)
    if x.shape[1] in (1, 3):
        return x
    raise CnnlabError(f"'{path}': array 'x' has shape {x.shape}: neither N x H x W x C nor N x C x H x W with C 1 "
                      f"(gray) or 3 (RGB)")


def _npz_labels(y: np.ndarray, n: int, path: str) -> torch.Tensor:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise CnnlabError(f"'{path}': array 'y' has shape {y.shape}; it must be N labels, shape ({n},)")
    if len(y) != n:
        raise CnnlabError(f"'{path}': {n} images in 'x' but {len(y)} labels in 'y'")
    if np.issubdtype(y.dtype, np.floating):  # whole numbers stored as floats are fine
        odd = y[~np.isfinite(y) | (y != np.round(y))]  # fractions, NaN and infinities
        if len(odd):
            raise CnnlabError(f"'{path}': array 'y' must hold integer class indices 0..K-1, found {odd[0]}")
    elif not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        raise CnnlabError(f"'{path}': array 'y' must hold integer class indices 0..K-1, got dtype {y.dtype}")
    labels = torch.from_numpy(y.astype(np.int64))
    if n and labels.min() < 0:
        raise CnnlabError(f"'{path}': labels must be 0..K-1, found {int(labels.min())}")
    return labels


def _pixel_scale(x: np.ndarray, top: float, path: str) -> float:
    """What ``x``'s pixels are divided by to lie in [0, 1]: 255 for 8-bit values (uint8, or numbers up to 255), 65535
    for 16-bit ones (uint16, or integers above 255), 1 for values already in [0, 1]; larger values are refused."""
    if x.dtype == np.uint16 or (np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8 and 255 < top <= 65535):
        return 65535.0
    if x.dtype == np.uint8 or 1.5 < top <= 255:
        return 255.0
    if top > 255:
        raise CnnlabError(f"'{path}': array 'x' holds values up to {top:g}; pixels must be in [0, 1], 0..255 or "
                          f"(integers) 0..65535")
    return 1.0


@register_dataset("npz", "a .npz file with arrays x (images) and y (labels)", "npz:FILE", takes_path=True)
def npz(path: str, seed: int, val_fraction: float, test_fraction: float) -> ImageData:
    p = Path(path).expanduser()
    if not p.is_file():
        raise CnnlabError(f"npz file '{path}' does not exist" if not p.exists() else f"npz path '{path}' is not a file")
    arrays = _npz_arrays(p, path)
    if "x" not in arrays:
        raise CnnlabError(f"'{path}' has no array 'x' (found {', '.join(sorted(arrays)) or 'none'}); it must hold "
                          f"{NPZ_LAYOUT}")
    x = arrays["x"]
    if not (np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)) or \
            np.issubdtype(x.dtype, np.complexfloating):
        raise CnnlabError(f"'{path}': array 'x' must hold numbers (pixel values), got dtype {x.dtype}")
    x = _to_nchw(x, path)
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise CnnlabError(f"'{path}': array 'x' holds no image (shape {x.shape})")
    images = torch.from_numpy(x.astype(np.float32))
    if not torch.isfinite(images).all():
        raise CnnlabError(f"'{path}': array 'x' holds NaN or infinite values")
    images = images / _pixel_scale(x, float(images.max()), path)
    labels = _npz_labels(arrays["y"], len(images), path) if "y" in arrays else None
    if "classes" in arrays:
        classes = [str(c) for c in np.atleast_1d(arrays["classes"])]
        if labels is not None and int(labels.max()) >= len(classes):
            raise CnnlabError(f"'{path}': label {int(labels.max())} has no name in 'classes' ({len(classes)} "
                              f"names); labels must be 0..{len(classes) - 1}")
        twice = sorted({c for c in classes if classes.count(c) > 1})
        if twice:
            raise CnnlabError(f"'{path}': 'classes' names {twice[0]!r} more than once; each class needs its own name")
    else:
        if labels is not None and int(labels.max()) >= len(labels):  # more classes than images: gaps, and a list
            raise CnnlabError(f"'{path}': labels run up to {int(labels.max())} over {len(labels)} images: number "
                              f"the classes 0..K-1 without gaps, or name them in an array 'classes'")
        classes = [str(i) for i in range(int(labels.max()) + 1)] if labels is not None else []
        missing = sorted(set(range(len(classes))) - set(labels.tolist())) if labels is not None else []
        if missing:
            raise CnnlabError(f"'{path}': labels {', '.join(map(str, missing[:5]))} have no image; number the classes "
                              f"0..K-1 without gaps, or name them in an array 'classes'")
    unlabelled = {"how_to_label": f"an array 'y' of N integer labels 0..K-1 in '{p.name}' labels it"}
    return split_dataset(p.stem, images, labels, classes, seed, val_fraction, test_fraction, source=str(p),
                         task="classification" if labels is not None else "reconstruction",
                         notes={} if labels is not None else unlabelled)
