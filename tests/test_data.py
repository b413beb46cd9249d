import gzip
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import generate_shapes, list_datasets, load_dataset, stratified_split
from cnnlab.data.builtin import _band_patches
from cnnlab.data.loader import Augment, InMemoryLoader
from cnnlab.errors import CnnlabError, UnknownNameError


@pytest.mark.parametrize("spec, size, classes, channels", [
    ("digits", (8, 8), 10, 1), ("faces", (25, 25), 2, 1), ("textures", (32, 32), 3, 1), ("photos", (32, 32), 0, 3),
    ("shapes", (32, 32), 4, 3), ("shapes:size=48,count=200,classes=circle+square", (48, 48), 2, 3),
])
def test_builtin_datasets_load_offline(spec, size, classes, channels):
    d = load_dataset(spec)
    assert d.image_size == size and d.num_classes == classes and d.channels == channels
    for s in d.splits().values():
        assert len(s) > 0 and s.images.dtype == torch.float32
        assert 0 <= s.images.min() and s.images.max() <= 1
    if classes:
        assert set(d.train.labels.unique().tolist()) == set(range(classes))


def test_digits_and_faces_have_their_real_sizes():
    d = load_dataset("digits")
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    f = load_dataset("faces")
    assert len(f.train) + len(f.val) + len(f.test) == 200 and f.classes == ["non-face", "face"]


def test_splits_are_deterministic_stratified_and_disjoint():
    a, b, c = (load_dataset("digits", seed=s) for s in (0, 0, 1))
    assert torch.equal(a.test.images, b.test.images)
    assert not torch.equal(a.test.images, c.test.images)
    counts = torch.bincount(a.test.labels, minlength=10)
    assert counts.min() >= 25 and counts.max() <= 29  # 15% of ~180 per class
    idx = stratified_split(torch.arange(100) % 4, 100, (0.7, 0.15, 0.15), seed=3)
    assert sorted(torch.cat(idx).tolist()) == list(range(100))


def test_texture_and_photo_splits_share_no_pixel():
    """Patches of each split come from their own vertical band of the photograph."""
    columns = np.tile(np.arange(200, dtype=np.uint8), (64, 1))  # pixel value = its column
    seen = {}
    for split, (lo, hi) in {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0)}.items():
        patches = _band_patches(columns, 16, lo, hi, 8)
        seen[split] = set((patches * 255).round().long().unique().tolist())
    assert not seen["train"] & seen["val"] and not seen["train"] & seen["test"] and not seen["val"] & seen["test"]


def test_shapes_masks_match_images_and_classes_are_balanced():
    images, labels, masks = generate_shapes(40, 32, seed=0)
    assert images.shape == (40, 3, 32, 32) and masks.shape == (40, 32, 32)
    assert torch.bincount(labels).tolist() == [10, 10, 10, 10]
    for i in range(40):
        assert set(masks[i].unique().tolist()) == {0, int(labels[i]) + 1}
        fg, bg = masks[i] > 0, masks[i] == 0
        assert 0.03 < fg.float().mean() < 0.6
        # the shape is brighter than the background in the mean
        assert images[i][:, fg].mean() > images[i][:, bg].mean()
    again = generate_shapes(40, 32, seed=0)
    assert torch.equal(again[0], images)


def test_unknown_dataset_and_options_are_clear_errors():
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        load_dataset("digit")
    with pytest.raises(CnnlabError, match="has no option 'sise'"):
        load_dataset("shapes:sise=3")
    with pytest.raises(CnnlabError, match="needs a path"):
        load_dataset("folder")
    with pytest.raises(CnnlabError, match="unknown shape"):
        load_dataset("shapes:classes=circle+hexagon")
    assert {d.name for d in list_datasets()} >= {"digits", "faces", "textures", "photos", "shapes", "folder",
                                                 "mnist", "cifar10", "npz"}


@pytest.mark.parametrize("spec, message", [
    ("textures:size=-4", "textures: size must be an integer from 8 to 102, got -4"),
    ("textures:size=4", "textures: size must be an integer from 8 to 102, got 4"),
    ("textures:size=103", "textures: size must be an integer from 8 to 102, got 103"),  # the test band is 103 wide
    ("textures:size=abc", "textures: size must be an integer from 8 to 102, got abc"),
    ("textures:size=", "textures: size must be an integer from 8 to 102, got nothing"),
    ("photos:size=0", "photos: size must be an integer from 8 to 90, got 0"),  # chelsea's bands are 90 wide
    ("shapes:count=0", "shapes: count must be an integer >= 4, got 0"),  # one image per class at least
    ("shapes:count=1.5", "shapes: count must be an integer >= 4, got 1.5"),
    ("shapes:classes=circle+square,count=1", "shapes: count must be an integer >= 2, got 1"),
    ("shapes:size=7", "shapes: size must be an integer >= 8, got 7"),
    ("shapes:size=-1", "shapes: size must be an integer >= 8, got -1"),
    ("shapes:size=big", "shapes: size must be an integer >= 8, got big"),
    ("shapes:count=100000000", "GiB in memory, more than the 2 GiB limit (CNNLAB_MEMORY_LIMIT_GB)"),
    ("shapes:count=12", "12 image(s) leave the validation split empty"),
    ("shapes:classes=circle+circle", "names 'circle' twice"),
    ("shapes:size=16,size=20", "dataset option 'size' is given twice in 'shapes:size=16,size=20'"),
    ("shapes:classes=", "classes= needs shape names"),
])
def test_bad_dataset_options_name_the_option_the_value_and_the_range(spec, message):
    with pytest.raises(CnnlabError) as e:
        load_dataset(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_plus_inside_shape_classes_is_not_a_union():
    d = load_dataset("shapes:count=80,classes=circle+square")
    assert d.classes == ["circle", "square"]
    d = load_dataset("shapes:classes=circle+square,count=80+shapes:classes=triangle+cross,count=80")
    assert d.classes == ["circle", "square", "triangle", "cross"] and len(d.train) + len(d.val) + len(d.test) == 160


def test_dataset_option_bounds_are_usable():
    d = load_dataset("textures:size=102")  # the largest patch: every split still has every class
    assert all(set(s.labels.tolist()) == {0, 1, 2} for s in d.splits().values())
    d = load_dataset("photos:size=90")
    assert all(len(s) > 0 for s in d.splits().values())
    d = load_dataset("shapes:size=8,count=400")  # the smallest size: every image holds some shape pixels
    assert all(bool((s.masks > 0).flatten(1).any(1).all()) for s in d.splits().values())


# --- file formats, written here from real data ---------------------------------------------------------

def test_a_spec_names_existing_relative_paths_absolutely_and_keeps_everything_else(tmp_path, monkeypatch):
    from cnnlab.data import absolute_spec

    (tmp_path / "imgs").mkdir()
    monkeypatch.chdir(tmp_path)
    here = tmp_path.resolve() / "imgs"
    assert absolute_spec("folder:imgs") == f"folder:{here}"
    assert absolute_spec("folder:imgs@classes=0-1@labels=3") == f"folder:{here}@classes=0-1@labels=3"
    assert absolute_spec("shapes:size=8+folder:imgs") == f"shapes:size=8+folder:{here}"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert absolute_spec("folder:~/imgs") == f"folder:{here}"  # the same folder, whoever's home reads it later
    for kept in ("digits", "digits@labels=5", f"folder:{here}", "folder:missing", "banana:x", "folder:imgs@x=1"):
        assert absolute_spec(kept) == kept  # built-in, absolute, absent or bad: the loader says what is wrong


def _digits_uint8():
    d = load_dataset("digits", val_fraction=0.1, test_fraction=0.1)
    return (d.train.images[:60, 0] * 255).round().byte().numpy(), d.train.labels[:60].numpy()


def test_folder_reads_images_and_skips_corrupt_files(tmp_path):
    x, y = _digits_uint8()
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / str(label) / f"{i}.png")
    (tmp_path / "0" / "empty.png").write_bytes(b"")
    good = (tmp_path / "1").iterdir().__next__().read_bytes()
    (tmp_path / "1" / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "2" / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.warns(UserWarning, match="skipped 3 unreadable image file"):
        d = load_dataset(f"folder:{tmp_path}", val_fraction=0.2, test_fraction=0.2)
    assert len(d.train) + len(d.val) + len(d.test) == 60
    assert d.notes["skipped_files"] == 3 and d.image_size == (8, 8) and d.channels == 1
    assert d.classes == sorted({str(v) for v in y})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_named_as_an_image_inside_a_folder_is_skipped_and_said_not_waited_on(tmp_path):
    """Opening a FIFO waits for a writer: a folder holding one (``x.png``) hung its reader for good."""
    x, y = _digits_uint8()
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / str(label) / f"{i}.png")
    os.mkfifo(tmp_path / "3" / "pipe.png")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image file.*a pipe.*pipe\.png"):
        d = load_dataset(f"folder:{tmp_path}", val_fraction=0.2, test_fraction=0.2)
    assert len(d.train) + len(d.val) + len(d.test) == 60 and d.notes["skipped_files"] == 1


def test_a_large_folder_is_decoded_by_a_pool_of_processes_into_the_same_images(tmp_path, monkeypatch):
    import cnnlab.data.formats as formats

    x, y = _digits_uint8()
    files = []
    for i in range(260):
        path = tmp_path / str(y[i % 60]) / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        img = x[i % 60]
        Image.fromarray(np.stack([img, img[::-1], img.T], -1) if i % 7 == 0 else img).save(path)  # some RGB
        files.append(str(path))
    (tmp_path / "0" / "empty.png").write_bytes(b"")
    Image.fromarray(x[0].astype(np.uint16) * 257).save(tmp_path / "0" / "wide.png")  # 16-bit grey
    files[100:100] = [str(tmp_path / "0" / "empty.png"), str(tmp_path / "0" / "wide.png")]
    pids = tmp_path / "pids"
    real = formats.decode_image

    def decode(path, *args):
        with open(pids, "a") as f:  # forked processes inherit this function: each says who decoded
            f.write(f"{os.getpid()}\n")
        return real(path, *args)

    monkeypatch.setattr(formats, "decode_image", decode)
    alone = formats.decode_files(files)  # under PARALLEL_FILES: this process
    assert set(pids.read_text().split()) == {str(os.getpid())}
    pids.unlink()
    pooled = formats.decode_files(files, processes=2)
    decoders = set(pids.read_text().split())  # the pool's two processes did it all (under load one may take
    assert str(os.getpid()) not in decoders and 1 <= len(decoders) <= 2  # every task before the other starts)
    assert len(pooled) == len(alone) == len(files) and pooled[100] is None and alone[100] is None
    assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(alone, pooled, strict=True) if a is not None)
    assert pooled[0].shape == (3, 8, 8) and pooled[1].shape == (1, 8, 8)
    # the headers a streamed folder reads through the same pool give what decoding gives
    heads = formats._map_files(formats._headers, files, processes=2)
    assert heads[100] is None and heads == [None if a is None else (a.shape[0], tuple(a.shape[1:])) for a in alone]
    monkeypatch.setattr(formats, "PARALLEL_FILES", 100)  # the whole folder, read through the pool
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        a = load_dataset(f"folder:{tmp_path}", seed=1)
    monkeypatch.setattr(formats, "PARALLEL_FILES", 10_000)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        b = load_dataset(f"folder:{tmp_path}", seed=1)
    assert all(torch.equal(getattr(a, s).images, getattr(b, s).images) for s in ("train", "val", "test"))


def test_the_folder_listing_follows_torchvisions_image_folder_rules(tmp_path):
    from torchvision.datasets import folder as tv
    from torchvision.transforms.v2.functional import resize

    from cnnlab._images import resize_images
    from cnnlab.data.formats import IMG_EXTENSIONS, find_classes, make_dataset

    assert set(IMG_EXTENSIONS) == set(tv.IMG_EXTENSIONS)
    for name in ["b/x.PNG", "b/a.jpg", "b/deeper/c.png", "b/notes.txt", "a/1.webp", "a/2.TIFF", "c/skip.gif"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    ours = find_classes(str(tmp_path))
    assert ours == tv.find_classes(str(tmp_path))
    assert make_dataset(str(tmp_path), ours[1]) == tv.make_dataset(str(tmp_path), ours[1], tv.IMG_EXTENSIONS,
                                                                   allow_empty=True)
    only = {"a": 0, "gone": 1}  # a class the folder lacks (a test split without it) is skipped, as there
    assert make_dataset(str(tmp_path), only) == tv.make_dataset(str(tmp_path), only, tv.IMG_EXTENSIONS,
                                                                allow_empty=True)
    image = torch.rand(3, 37, 23)
    torch.testing.assert_close(resize_images(image[None], (16, 16))[0], resize(image, [16, 16], antialias=True))


def test_folder_splits_give_one_warning_with_the_total(tmp_path):
    x, y = _digits_uint8()
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        split = "test" if i % 4 == 0 else "train"
        (tmp_path / split / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / split / str(label) / f"{i}.png")
    (tmp_path / "train" / "0" / "empty.png").write_bytes(b"")
    (tmp_path / "test" / "1" / "junk.png").write_bytes(b"junk")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_dataset(f"folder:{tmp_path}", val_fraction=0.2)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and messages[0].startswith("skipped 2 unreadable image file(s)")
    assert d.notes["skipped_files"] == 2 and len(d.test) == 15


def test_folder_errors(tmp_path):
    with pytest.raises(CnnlabError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "a").mkdir()
    with pytest.raises(CnnlabError, match="holds no images"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "a" / "x.png").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CnnlabError, match="no readable image"):
            load_dataset(f"folder:{tmp_path}")


def _write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files(tmp_path, gz):
    x, y = _digits_uint8()
    suffix = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", x[:40], gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", y[:40], gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", x[40:], gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", y[40:], gz)
    d = load_dataset(f"mnist:{tmp_path}", val_fraction=0.25)
    assert len(d.test) == 20 and len(d.train) + len(d.val) == 40
    assert torch.allclose(d.test.images[0, 0] * 255, torch.from_numpy(x[40]).float())


def test_mnist_truncated_file_is_a_clear_error(tmp_path):
    x, y = _digits_uint8()
    _write_idx(tmp_path / "train-images-idx3-ubyte", x, False)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-10])
    with pytest.raises(CnnlabError, match="truncated"):
        load_dataset(f"mnist:{tmp_path}")


def test_cifar10_batches_and_a_malicious_pickle(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("data_batch_1", 30), ("data_batch_2", 30), ("test_batch", 20)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2))
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                   "truck")]
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    d = load_dataset(f"cifar10:{tmp_path}", val_fraction=0.2)
    assert d.channels == 3 and d.image_size == (32, 32) and len(d.test) == 20 and d.classes[0] == "airplane"

    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(CnnlabError, match="not a CIFAR-10 python batch"):
        load_dataset(f"cifar10:{tmp_path}")


def test_npz_layouts(tmp_path):
    x, y = _digits_uint8()
    np.savez(tmp_path / "hw.npz", x=x, y=y)
    np.savez(tmp_path / "hwc.npz", x=np.repeat(x[..., None], 3, axis=-1), y=y, classes=np.array(list("0123456789")))
    a = load_dataset(f"npz:{tmp_path / 'hw.npz'}")
    b = load_dataset(f"npz:{tmp_path / 'hwc.npz'}")
    assert a.channels == 1 and b.channels == 3 and a.image_size == b.image_size == (8, 8)
    np.savez(tmp_path / "bad.npz", x=x, y=y[:10])
    with pytest.raises(CnnlabError, match="labels in 'y'"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")


def _npz_error(path) -> str:
    with pytest.raises(CnnlabError) as e:
        load_dataset(f"npz:{path}")
    message = str(e.value)
    assert "\n" not in message and "allow_pickle" not in message and "pickle.load" not in message
    return message


def test_npz_that_is_not_a_numeric_npz_is_one_clear_line(tmp_path):
    layout = "arrays x (N x H x W, or N x H x W x C or N x C x H x W with C 1 or 3) and y (N integer labels"
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(0).bytes(2000))
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    x, y = _digits_uint8()
    np.savez(tmp_path / "whole.npz", x=x, y=y)
    whole = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    for name in ("random.npz", "empty.npz", "plain.npy", "truncated.npz"):
        message = _npz_error(tmp_path / name)
        assert "is not an .npz file" in message and layout in message, name
    np.savez(tmp_path / "objects.npz", x=np.array([x[0], x[1, :4]], dtype=object), y=y[:2])
    message = _npz_error(tmp_path / "objects.npz")
    assert "array 'x' holds Python objects" in message and layout in message
    np.savez(tmp_path / "no_x.npz", images=x, y=y)
    assert "has no array 'x' (found images, y)" in _npz_error(tmp_path / "no_x.npz")
    np.savez(tmp_path / "text.npz", x=np.array(["a", "b"]), y=y[:2])
    assert "array 'x' must hold numbers" in _npz_error(tmp_path / "text.npz")
    np.savez(tmp_path / "5d.npz", x=x[:, :, :, None, None], y=y)
    assert "has shape (60, 8, 8, 1, 1)" in _npz_error(tmp_path / "5d.npz")
    np.savez(tmp_path / "nan.npz", x=np.full((60, 8, 8), np.nan), y=y)
    assert "NaN or infinite" in _npz_error(tmp_path / "nan.npz")
    np.savez(tmp_path / "fractional.npz", x=x, y=y / 3)
    assert "'y' must hold integer class indices" in _npz_error(tmp_path / "fractional.npz")
    np.savez(tmp_path / "y2d.npz", x=x, y=np.stack([y, y], 1))
    assert "'y' has shape (60, 2)" in _npz_error(tmp_path / "y2d.npz")
    np.savez(tmp_path / "names.npz", x=x, y=y, classes=np.array(["a", "b"]))
    assert "has no name in 'classes'" in _npz_error(tmp_path / "names.npz")


# --- the in-memory loader and batched augmentation ---------------------------------------------------------

def test_batched_crop_and_flip():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    g = torch.Generator().manual_seed(0)
    out = Augment(crop_pad=2)(x, g)
    assert out.shape == x.shape
    for i in range(2):  # each output is a 6x6 window of the zero-padded input
        padded = torch.nn.functional.pad(x[i, 0], (2, 2, 2, 2))
        windows = padded.unfold(0, 6, 1).unfold(1, 6, 1).reshape(-1, 6, 6)
        assert any(torch.equal(w, out[i, 0]) for w in windows)
    flipped = Augment(hflip=True)(x.repeat(16, 1, 1, 1), torch.Generator().manual_seed(1))
    assert all(torch.equal(f, x[i % 2]) or torch.equal(f, x[i % 2].flip(-1)) for i, f in enumerate(flipped))
    assert any(torch.equal(f, x[i % 2].flip(-1)) for i, f in enumerate(flipped))


def test_loader_epochs_are_replayable_and_cover_the_data():
    x, y = torch.randn(10, 1, 4, 4), torch.arange(10)
    loader = InMemoryLoader(x, y, batch_size=3, shuffle=True, seed=5)
    loader.set_epoch(2)
    first = [b[1].tolist() for b in loader]
    second = [b[1].tolist() for b in loader]
    assert first == second
    seen = sum(first, [])
    assert len(seen) == len(set(seen)) == 9  # 10 = 3 + 3 + 3 + 1: a training batch of one is dropped
    loader = InMemoryLoader(x, y, batch_size=4, shuffle=True, seed=5)
    assert sorted(sum((b[1].tolist() for b in loader), [])) == list(range(10))


def test_a_loader_over_tensors_in_the_hosts_memory_sends_each_batch_to_its_device():
    """A transfer's feature cache on disk stays in the host's memory while the head trains on a GPU: each batch
    goes to the loader's device (the meta device here, any machine has it), batched as where the tensors are."""
    x, y = torch.randn(10, 1, 4, 4), torch.arange(10)
    here = list(InMemoryLoader(x, y, batch_size=3, shuffle=True, seed=5))
    there = list(InMemoryLoader(x, y, batch_size=3, shuffle=True, seed=5, device=torch.device("meta")))
    assert len(here) == 3 and [(a.device.type, b.device.type) for a, b in there] == [("meta", "meta")] * 3
    assert [b[0].shape for b in there] == [b[0].shape for b in here]
    assert InMemoryLoader(x, y, 3, device=torch.device("cpu")).device is None  # already there: nothing to move


def test_a_folders_shape_is_colour_if_any_image_is_and_its_most_common_size_the_first_listed_on_a_tie():
    from cnnlab.data.formats import _shape_of

    assert _shape_of([(1, (2, 2)), (3, (4, 4)), (1, (4, 4)), (1, (2, 2))]) == (3, (2, 2))
    assert _shape_of([(1, (5, 6))] + [(1, (h, 9)) for h in range(3000)] * 2) == (1, (0, 9))  # 3,000 sizes, twice
    assert _shape_of([(1, (7, 7))]) == (1, (7, 7))


@pytest.mark.parametrize("layout", ["one pool", "train and test folders", "train, val and test folders"])
def test_a_folder_falls_into_the_same_splits_in_memory_and_streamed_unreadable_files_and_all(tmp_path, monkeypatch,
                                                                                            layout):
    """A run evaluated where the folder no longer fits in memory (or the other way round) tests on the images it
    was tested on, of the same channels and size: the unreadable files count in the split both ways; one colour
    image makes the folder RGB, in any split; the size is the most common one, not the first file's."""
    root = tmp_path / "imgs"
    pool = root / "train" if layout != "one pool" else root
    for i in range(90):
        (pool / str(i % 3)).mkdir(parents=True, exist_ok=True)
        side = 9 if i == 0 else 6  # the first file listed has a size of its own
        Image.fromarray(np.full((side, side), i, np.uint8)).save(pool / str(i % 3) / f"{i}.png")  # its number
    for k, i in enumerate((91, 94, 97, 100)):
        (pool / str(k % 3) / f"{i}.png").write_bytes(b"" if k % 2 else b"not an image")
    colour = Image.fromarray(np.full((6, 6, 3), 200, np.uint8))
    if layout == "one pool":
        colour.save(pool / "2" / "200.png")
    else:
        (root / "test" / "0").mkdir(parents=True)
        colour.save(root / "test" / "0" / "200.png")
    if layout == "train, val and test folders":
        for i in (201, 202):
            (root / "val" / str(i % 3)).mkdir(parents=True)
            Image.fromarray(np.full((6, 6), i, np.uint8)).save(root / "val" / str(i % 3) / f"{i}.png")
    with pytest.warns(UserWarning, match="skipped 4 unreadable"):
        memory = load_dataset(f"folder:{root}", seed=5)
    monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.000001")
    streamed = load_dataset(f"folder:{root}", seed=5)
    assert (memory.channels, memory.image_size) == (streamed.channels, streamed.image_size) == (3, (6, 6))
    for split in ("train", "val", "test"):
        held = sorted(round(float(v) * 255) for v in getattr(memory, split).images[:, 0, 0, 0])
        listed = sorted(int(Path(f).stem) for f in getattr(streamed, split).files)
        assert held == [i for i in listed if i not in (91, 94, 97, 100)], split
    if layout == "train, val and test folders":
        assert sorted(int(Path(f).stem) for f in streamed.val.files) == [201, 202]
    listed = sum(len(getattr(streamed, s)) for s in ("train", "val", "test"))
    assert listed == {"one pool": 95, "train and test folders": 95, "train, val and test folders": 97}[layout]


def test_a_folder_of_many_sizes_is_resized_once_to_the_runs_image_size_as_predict_resizes_its_files(tmp_path):
    """With --image-size, each file is decoded straight to that size: the run trains and is evaluated on the
    pixels ``predict`` computes from the same file, not on a copy first brought to the folder's most common size
    (8x8 here, which would lose the 30x30 images' detail before they were enlarged to 16x16)."""
    from cnnlab._images import resize_images
    from cnnlab.classify import ClassifierConfig
    from cnnlab.classify.kind import class_probabilities
    from cnnlab.data.prepare import Preprocess
    from cnnlab.train import Run, fit

    rng = np.random.default_rng(0)
    large = []
    for i in range(24):
        side = 30 if i % 4 == 0 else 8
        (tmp_path / "imgs" / str(i % 2)).mkdir(parents=True, exist_ok=True)
        path = tmp_path / "imgs" / str(i % 2) / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(path)
        if side == 30:
            large.append(path)
    once = [resize_images(torch.from_numpy(np.asarray(Image.open(p), np.float32) / 255)[None, None], (16, 16))[0]
            for p in large]  # an independent decode
    data = load_dataset(f"folder:{tmp_path / 'imgs'}", seed=0, val_fraction=0.25, test_fraction=0.25, image_size=16)
    held = torch.cat([data.train.images, data.val.images, data.test.images])
    assert data.image_size == (16, 16)
    assert all((held - img).abs().amax(dim=(1, 2, 3)).min() < 1e-6 for img in once)

    r = fit(ClassifierConfig(data=f"folder:{tmp_path / 'imgs'}", model="resnet20", image_size=16, epochs=1,
                             batch_size=4, quiet=True, run_dir=str(tmp_path / "run")), log=lambda *a: None)
    run = Run.open(r.run_dir)
    pre = Preprocess.from_dict(run.meta["preprocess"])
    seen = run.data(whole=True).train.images  # as evaluate and the report read the run's data
    assert all((seen - pre(img[None])).abs().amax(dim=(1, 2, 3)).min() < 1e-5 for img in once)
    assert class_probabilities(run, torch.stack(once)).shape == (len(large), 2)


def test_large_folders_stream_from_disk(tmp_path, monkeypatch):
    from cnnlab.classify import ClassifierConfig
    from cnnlab.data.prepare import Preprocess
    from cnnlab.data.streaming import FileSet, StreamingData, StreamingLoader
    from cnnlab.train import fit

    x, y = _digits_uint8()
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        (tmp_path / "imgs" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "imgs" / str(label) / f"{i}.png")
    (tmp_path / "imgs" / "0" / "broken.png").write_bytes(b"")
    monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.000001")  # pretend the folder does not fit in memory
    d = load_dataset(f"folder:{tmp_path / 'imgs'}", val_fraction=0.2, test_fraction=0.2)
    assert isinstance(d, StreamingData) and len(d.train) + len(d.val) + len(d.test) == 61
    pre = Preprocess((8, 8), 0, [0.5], [0.25])
    every = FileSet(*(sum((getattr(s, k) for s in d.splits().values()), []) for k in ("files", "labels")))
    loader = StreamingLoader(every, 1, pre, 8, torch.device("cpu"), shuffle=True, workers=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        epochs = []
        for epoch in range(3):
            loader.set_epoch(epoch)
            epochs.append(list(loader))
    assert all(sum(len(b[1]) for b in batches) == 60 for batches in epochs)
    # Python 3.12+ also warns at each fork of a process that has threads (the DataLoader's workers are forked, as
    # PyTorch starts them on Linux): a DeprecationWarning, which Python's default filters hide from users
    caught = [w for w in caught if not issubclass(w.category, DeprecationWarning)]
    # the broken file: one warning naming it (not one per epoch or per worker), counted every epoch
    assert [str(w.message).split(", e.g. ")[1] for w in caught] == [str(tmp_path / "imgs" / "0" / "broken.png")]
    assert str(caught[0].message).startswith("skipped 1 unreadable image file(s) while streaming")
    assert loader.skipped == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit(ClassifierConfig(data=f"folder:{tmp_path / 'imgs'}", epochs=2, quiet=True,
                                 run_dir=str(tmp_path / "run"), batch_size=8, val_fraction=0.2, test_fraction=0.2),
                log=lambda *a: None)
    assert r.test["count"] >= len(d.test) - 1 and len(r.history) == 2


def test_a_streamed_first_batch_is_the_epochs_first_decoded_without_starting_workers(tmp_path, monkeypatch):
    """What a run measures its step on: the batch the epoch begins with, read without forking the workers
    that decode a whole epoch ahead."""
    from cnnlab.data import streaming
    from cnnlab.data.prepare import Preprocess

    x, y = _digits_uint8()
    files = []
    for i, img in enumerate(x[:20]):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        files.append(str(tmp_path / f"{i}.png"))
    loader = streaming.StreamingLoader(streaming.FileSet(files, [int(v) for v in y[:20]]), 1,
                                       Preprocess((8, 8), 0, [0.5], [0.25]), 8, torch.device("cpu"), shuffle=True,
                                       augment=Augment(crop_pad=1, hflip=True), workers=2)
    loader.set_epoch(3)
    started = []
    start = streaming._start
    monkeypatch.setattr(streaming, "_start", lambda dl: started.append(dl.num_workers) or start(dl))
    first = loader.first_batch()
    assert started == [0] and loader.workers == 2
    epoch = next(iter(loader))
    assert started == [0, 2]
    assert torch.equal(first[0], epoch[0]) and torch.equal(first[1], epoch[1])


def test_a_16_bit_or_float_image_reads_as_its_8_bit_version(tmp_path):
    import numpy as np
    from PIL import Image

    from cnnlab.data import read_image_file

    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    Image.fromarray((ramp * 255).round().astype(np.uint8)).save(tmp_path / "g8.png")
    Image.fromarray((ramp * 65535).round().astype(np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "f.tiff")
    eight = read_image_file(tmp_path / "g8.png")
    for name in ("g16.png", "f.tiff"):
        wide = read_image_file(tmp_path / name)
        assert wide.shape == eight.shape and (wide - eight).abs().max() < 1 / 255, name
    assert read_image_file(tmp_path / "g16.png", 3).shape == (3, 32, 32)


def test_a_float_image_written_in_0_to_255_reads_as_its_8_bit_version_not_all_white(tmp_path):
    """Float TIFFs come in [0, 1] or in 0..255 (or 0..65535): a file's range is judged from its values, as the
    npz reader judges an array's; a NaN pixel reads as 0, not as a NaN that would make every loss NaN."""
    from cnnlab.data import read_image_file

    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    eight = read_image_file(_saved(tmp_path / "g8.png", (ramp * 255).round().astype(np.uint8)))
    for top in (255, 65535, 1e6):
        wide = read_image_file(_saved(tmp_path / f"f{top:g}.tiff", (ramp * top).astype(np.float32)))
        assert (wide - eight).abs().max() < 1 / 255, top
    holed = (ramp * 255).astype(np.float32)
    holed[0, 0] = np.nan
    got = read_image_file(_saved(tmp_path / "nan.tiff", holed))
    assert torch.isfinite(got).all() and float(got[0, 0, 0]) == 0 and (got - eight).abs().max() < 1 / 255


def _saved(path, array):
    Image.fromarray(array).save(path)
    return path


@pytest.mark.parametrize("streamed", [False, True])
def test_a_class_folder_without_images_is_refused_in_one_line(tmp_path, monkeypatch, streamed):
    """It would be a class the model must predict and never sees (a run that learnt to predict it: 0%)."""
    from cnnlab.errors import CnnlabError

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(6):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / c / f"{i}.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    if streamed:
        monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.000001")
    with pytest.raises(CnnlabError, match=r"class folder\(s\) \['empty'\] hold no readable image"):
        load_dataset(f"folder:{tmp_path}")


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("layout", ["one folder", "train and test folders"])
def test_a_folder_too_small_for_a_validation_split_is_refused_before_training(tmp_path, monkeypatch, streamed,
                                                                              layout):
    from cnnlab.errors import CnnlabError

    roots = [tmp_path] if layout == "one folder" else [tmp_path / "train", tmp_path / "test"]
    for root in roots:
        for c in ("a", "b", "c"):
            (root / c).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / c / f"{i}.png")
    if streamed:
        monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.000001")
    with pytest.raises(CnnlabError, match=r"6 image\(s\) leave the validation split empty .* larger --val-fraction"):
        load_dataset(f"folder:{tmp_path}")


@pytest.mark.parametrize("streamed", [False, True])
def test_each_folder_is_walked_once_and_a_split_may_not_add_a_class(tmp_path, monkeypatch, streamed):
    from cnnlab.data import formats
    from cnnlab.errors import CnnlabError

    for split, classes in (("train", "ab"), ("val", "ab"), ("test", "ab")):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(4):
                Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / split / c / f"{i}.png")
    if streamed:
        monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.000001")
    scanned, scandir = [], os.scandir  # what os.walk (and pathlib's globs up to Python 3.12) list a folder with
    monkeypatch.setattr(formats.os, "scandir", lambda path=".": scanned.append(str(path)) or scandir(path))
    monkeypatch.setattr(Path, "rglob", lambda *a, **k: pytest.fail("the folder was walked again with rglob"))
    data = load_dataset(f"folder:{tmp_path}")
    assert (len(data.train), len(data.val), len(data.test)) == (8, 8, 8)
    class_folders = sorted(str(tmp_path / s / c) for s in ("train", "val", "test") for c in "ab")
    assert sorted(p for p in scanned if p in class_folders) == class_folders
    (tmp_path / "test" / "c").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "test" / "c" / "0.png")
    with pytest.raises(CnnlabError, match=r"folder '.*test' has classes \['c'\] that the training split lacks"):
        load_dataset(f"folder:{tmp_path}")


def test_digits_are_read_once_and_each_load_gets_its_own_tensors():
    from cnnlab.data.builtin import _digits_table, _read_digits

    first, labels = _read_digits()
    first.mul_(0)  # a caller that writes into its copy
    labels.zero_()
    again, labels_again = _read_digits()
    assert again.max() == 1.0 and labels_again[:3].tolist() == [0, 1, 2] and again.shape == (1797, 1, 8, 8)
    assert _digits_table.cache_info().hits >= 1


def test_a_stop_signal_while_the_workers_start_ends_the_reports_of_their_deaths_at_once():
    """SIGTERM to the process group can kill a worker while its iterator is being built (torch's guard turns the
    signal into its death), and torch's SIGCHLD handler raised that inside the start of a queue's thread: once the
    held signal has arrived, worker deaths go unreported; the signal itself is delivered after the block."""
    import signal

    from cnnlab.data.streaming import _start

    seen = {}

    class Loader:
        num_workers = 1

        def __iter__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):  # the handler runs between bytecodes of this thread
                seen["sigchld"] = signal.getsignal(signal.SIGCHLD)
            return iter(())

    class Stopped(Exception):
        pass

    def stop(signum, frame):
        raise Stopped

    def torchs(*args):
        raise AssertionError("torch's SIGCHLD handler was still in place")

    previous = signal.signal(signal.SIGTERM, stop), signal.signal(signal.SIGCHLD, torchs)
    try:
        with pytest.raises(Stopped):
            _start(Loader())
        assert callable(seen["sigchld"]) and seen["sigchld"] is not torchs  # a handler that does nothing
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGCHLD, previous[1])


def test_a_dataset_shows_what_it_holds_in_a_line_not_its_pixels():
    from cnnlab.data.streaming import FileSet, StreamingData

    d = load_dataset("digits")
    assert repr(d) == "<ImageData digits: 1258/269/270 train/val/test images, 1x8x8, 10 classes>"
    assert repr(d.test) == "ImageSet(270 images 1x8x8, labels)"
    assert repr(load_dataset("shapes:size=16").test).endswith("images 3x16x16, labels, masks)")
    files = FileSet([f"{i}.png" for i in range(1000)], [0] * 1000)
    assert repr(files) == "FileSet(1000 files)"
    streamed = StreamingData("imgs", files, files, files, ["a"], 3, (32, 32))
    assert repr(streamed) == "<StreamingData imgs (streamed from disk): 1000/1000/1000 train/val/test files, " \
        "3x32x32, 1 classes>"


def _class_folders(root: Path, classes: str = "ab", n: int = 4) -> None:
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8), 25 * i, np.uint8)).save(root / c / f"{i}.png")


@pytest.mark.parametrize("streamed", [False, True])
def test_split_folders_are_found_whatever_their_case_and_half_a_split_layout_is_refused(tmp_path, monkeypatch,
                                                                                         streamed):
    """train/ and val/ alone were read as two classes, "train" and "val", each image labelled by its split;
    Train/ and Test/ too; and a validation/ folder beside train/ and test/ was left out."""
    from cnnlab.errors import CnnlabError

    if streamed:
        monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.000001")
    for split in ("Train", "Test"):
        _class_folders(tmp_path / "caps" / split)
    data = load_dataset(f"folder:{tmp_path / 'caps'}")
    assert data.classes == ["a", "b"] and len(data.test) == 8
    for split in ("train", "validation", "test"):
        _class_folders(tmp_path / "three" / split)
    assert len(load_dataset(f"folder:{tmp_path / 'three'}").val) == 8
    for split in ("train", "val"):
        _class_folders(tmp_path / "half" / split)
    with pytest.raises(CnnlabError, match=r"has the split folder\(s\) \['train', 'val'\] but no test folder.*"
                                          r"renamed test"):
        load_dataset(f"folder:{tmp_path / 'half'}")


def test_a_streamed_folder_refuses_what_the_in_memory_read_refuses(tmp_path, monkeypatch):
    """A class whose files are all unreadable (macOS's ._ files in a __MACOSX folder) was a class of the streamed
    run; an empty test folder was found after the training, as 'cannot evaluate on an empty split'."""
    from cnnlab.errors import CnnlabError

    _class_folders(tmp_path / "mac")
    (tmp_path / "mac" / "__MACOSX").mkdir()
    for i in range(3):
        (tmp_path / "mac" / "__MACOSX" / f"._{i}.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    _class_folders(tmp_path / "empty" / "train")
    _class_folders(tmp_path / "empty" / "test", n=0)
    for limit in ("2", "0.000001"):  # in memory, then streamed: the same lines
        monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", limit)
        with pytest.raises(CnnlabError, match=r"class folder\(s\) \['__MACOSX'\] hold no readable image"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # in memory, the skipped files are also said
            load_dataset(f"folder:{tmp_path / 'mac'}")
        with pytest.raises(CnnlabError, match=r"folder '.*empty/test' holds no images"):
            load_dataset(f"folder:{tmp_path / 'empty'}")


def test_links_back_up_the_tree_are_not_followed_twice(tmp_path):
    """``ln -s . self`` inside a class listed its images again at every depth (20 images became 420, in train
    and test alike); ``ln -s .. up`` walked the other classes' folders as this class's."""
    _class_folders(tmp_path / "d", n=10)
    os.symlink(".", tmp_path / "d" / "a" / "self")
    os.symlink("..", tmp_path / "d" / "a" / "up")
    os.symlink(tmp_path / "d" / "a", tmp_path / "d" / "b" / "a_too")  # another class's folder: its images count
    data = load_dataset(f"folder:{tmp_path / 'd'}")
    assert len(data.train) + len(data.val) + len(data.test) == 30


def test_a_class_name_that_is_not_utf8_and_images_outside_class_folders_are_one_line(tmp_path):
    """A folder name in another encoding trained, then failed on writing the report (a traceback); images at the
    top level beside an empty sub-folder were 'no images'."""
    from cnnlab.errors import CnnlabError

    _class_folders(tmp_path / "enc")
    os.rename(tmp_path / "enc" / "b", os.fsdecode(os.fsencode(tmp_path / "enc") + b"/caf\xe9"))
    with pytest.raises(CnnlabError, match=r"class folder name b'caf\\xe9' is not UTF-8.*rename it"):
        load_dataset(f"folder:{tmp_path / 'enc'}")
    (tmp_path / "flat" / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "flat" / f"{i}.png")
    with pytest.raises(CnnlabError, match=r"its 3 image\(s\) at the top level are read only inside a sub-folder"):
        load_dataset(f"folder:{tmp_path / 'flat'}")


def _mnist_folder(root: Path, top_label: int = 9) -> None:
    x, y = _digits_uint8()
    y = y.copy()
    y[0] = top_label
    root.mkdir(parents=True)
    for prefix, part in (("train", slice(0, 40)), ("t10k", slice(40, None))):
        _write_idx(root / f"{prefix}-images-idx3-ubyte", x[part], False)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", y[part], False)


def test_mnist_is_fashion_by_its_folders_name_and_other_labels_or_damaged_gzip_are_one_line(tmp_path):
    assert load_dataset(f"mnist:{_mk(tmp_path / 'x' / 'fashion_course' / 'digits')}").classes[0] == "0"
    assert load_dataset(f"mnist:{_mk(tmp_path / 'x' / 'FashionMNIST' / 'raw')}").classes[0] == "T-shirt/top"
    _mnist_folder(tmp_path / "letters", top_label=20)  # EMNIST letters: labels 1..26
    with pytest.raises(CnnlabError, match=r"holds label 20: mnist: reads the 10 classes"):
        load_dataset(f"mnist:{tmp_path / 'letters'}")
    gz = tmp_path / "gz"
    _mnist_folder(gz)
    packed = bytearray(gzip.compress((gz / "train-images-idx3-ubyte").read_bytes()))
    packed[10:18] = bytes(b ^ 0xFF for b in packed[10:18])  # the deflate stream damaged, the header intact
    (gz / "train-images-idx3-ubyte").unlink()
    (gz / "train-images-idx3-ubyte.gz").write_bytes(bytes(packed))
    with pytest.raises(CnnlabError, match="is not a valid gzip file"):
        load_dataset(f"mnist:{gz}")


def _mk(root: Path) -> Path:
    _mnist_folder(root)
    return root


def test_cifar10_labels_beyond_its_class_names_are_one_line(tmp_path):
    for name, n in (("data_batch_1", 30), ("test_batch", 20)):
        batch = {b"data": np.zeros((n, 3072), np.uint8), b"labels": [10] + [0] * (n - 1)}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(CnnlabError, match=r"labels run from 0 to 10, but there are 10 classes"):
        load_dataset(f"cifar10:{tmp_path}")


def test_npz_16_bit_pixels_are_scaled_as_16_bit_and_sparse_huge_labels_refused(tmp_path):
    x = np.full((20, 8, 8), 65535, np.uint16)
    x[:, :4] = 32768
    np.savez(tmp_path / "u16.npz", x=x, y=np.arange(20) % 2)
    images = load_dataset(f"npz:{tmp_path / 'u16.npz'}").train.images
    assert float(images.max()) == 1.0 and float(images.min()) == pytest.approx(32768 / 65535)
    np.savez(tmp_path / "big.npz", x=np.zeros((3, 8, 8), np.uint8), y=np.array([0, 10**12, 2 * 10**12]))
    with pytest.raises(CnnlabError, match=r"labels run up to 2000000000000 over 3 images"):
        load_dataset(f"npz:{tmp_path / 'big.npz'}")
    np.savez(tmp_path / "wide.npz", x=np.full((3, 8, 8), 1e6, np.float32), y=np.array([0, 1, 0]))
    with pytest.raises(CnnlabError, match=r"holds values up to 1e\+06; pixels must be in \[0, 1\]"):
        load_dataset(f"npz:{tmp_path / 'wide.npz'}")


def test_whether_a_folder_fits_in_memory_is_judged_from_files_across_it(tmp_path, monkeypatch):
    """A small first image (an icon) before large photos made the folder look 1,000 times smaller than it is: read
    into memory against the limit (1.7 GB against 10 MiB in the case that found it)."""
    from cnnlab.data.streaming import StreamingData

    for c in "ab":
        (tmp_path / c).mkdir()
        Image.fromarray(np.zeros((1, 1), np.uint8)).save(tmp_path / c / "000_icon.png")
        for i in range(10):
            Image.fromarray(np.full((200, 200), 20 * i, np.uint8)).save(tmp_path / c / f"{i + 1:03d}.png")
    monkeypatch.setenv("CNNLAB_MEMORY_LIMIT_GB", "0.001")  # 1 MiB: the 20 photos take 3.2 MB as float32
    assert isinstance(load_dataset(f"folder:{tmp_path}"), StreamingData)


def test_a_grey_image_with_alpha_is_grey(tmp_path):
    """One grey-and-alpha PNG made a whole grey folder RGB."""
    from cnnlab._images import decode_image, image_header

    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(np.stack([grey, np.full((8, 8), 128, np.uint8)], -1), "LA").save(tmp_path / "la.png")
    assert image_header(tmp_path / "la.png") == (1, (8, 8))
    assert torch.equal(decode_image(tmp_path / "la.png")[0] * 255, torch.from_numpy(grey).float())


def test_a_runs_folder_inside_the_data_folder_is_not_taken_for_a_class(tmp_path, monkeypatch):
    """`cnnlab train --data folder:.` from inside the data folder: its own runs/ was refused as an empty class
    the user never made, and once an earlier run had left pictures there, trained as a third class."""
    from cnnlab.errors import CnnlabError

    _class_folders(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "lenet5-pics-20261204-221900").mkdir(parents=True)  # a run that has just begun
    with pytest.raises(CnnlabError, match=r"the sub-folder 'runs' holds cnnlab runs.*give --run-dir a place outside"):
        load_dataset("folder:.")
    done = tmp_path / "runs" / "my-ae"  # a finished run, named by --run-dir, with pictures
    (done / "plots").mkdir(parents=True)
    (done / "config.yaml").write_text("run_kind: autoencoder\n")
    (done / "meta.json").write_text("{}")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(done / "plots" / "reconstructions.png")
    (tmp_path / "runs" / "lenet5-pics-20261204-221900").rmdir()
    with pytest.raises(CnnlabError, match=r"the sub-folder 'runs' holds cnnlab runs"):
        load_dataset("folder:.")
    trip = tmp_path / "photos" / "runs" / "trip-20240101-120000"  # a class named runs, of photos named by date
    trip.mkdir(parents=True)
    for i in range(10):
        Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(trip / f"{i}.png")
    _class_folders(tmp_path / "photos", classes="b", n=10)
    assert load_dataset(f"folder:{tmp_path / 'photos'}").classes == ["b", "runs"]


def test_pils_warning_on_a_very_large_image_names_the_file(tmp_path, monkeypatch):
    """'Image size (100000000 pixels) exceeds limit ...' named no file: among a folder's thousands, which?"""
    from PIL import Image as PILImage

    from cnnlab._images import decode_image

    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)  # 144 pixels: over the limit, under twice it
    with pytest.warns(PILImage.DecompressionBombWarning, match=r"'.*big.png': Image size \(144 pixels\)"):
        assert decode_image(tmp_path / "big.png").shape == (1, 12, 12)
