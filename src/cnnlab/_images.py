"""Image files: decoding (PIL) into ``C x H x W`` float tensors in [0, 1], and a user's file read with one clear
line for anything wrong with it.

A leaf module: it imports nothing from cnnlab but its errors (data readers, streaming workers, ``predict`` and
the autoencoder tools all read images through it).
"""

from __future__ import annotations

import os
import stat
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ._io import not_a_file
from .errors import CnnlabError


def _channels_of(mode: str) -> int:
    """1 for PIL's grey modes (1-bit, 8-bit, grey with alpha, and the wide ones: 16-bit, 32-bit integer, float),
    else 3 (RGB, RGBA, palette, CMYK, ...: decoded as RGB). Alpha is dropped, as PIL's conversions drop it."""
    return 1 if mode in ("1", "L", "LA", "La") or mode.startswith(("I;16", "I", "F")) else 3


def _regular(path: str | os.PathLike) -> None:
    """Raise OSError unless ``path`` is a regular file (links followed): opening a pipe named ``x.png`` inside an
    image folder would wait for a writer forever, where the folder's reader skips an unreadable file and says so."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(f"'{os.fspath(path)}' is not a regular file (a pipe, socket or device)")


def decode_image(path: str | os.PathLike, channels: int | None = None) -> torch.Tensor:
    """Read an image file into a float ``C x H x W`` tensor in [0, 1] (PIL; RGB or grayscale)."""
    from PIL import Image

    _regular(path)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", Image.DecompressionBombWarning)
        im = Image.open(path)
    for w in said:  # PIL's own words name no file: among a folder's thousands, say which
        warnings.warn(f"'{os.fspath(path)}': {w.message}", w.category, stacklevel=2)
    with im:
        im.load()  # forces a full decode: truncated files fail here, not later
        if im.mode.startswith(("I;16", "I", "F")):  # 16-bit, 32-bit integer or float grey: PIL's 8-bit
            t = _wide_grey(np.asarray(im), im.mode)      # conversion would clip them; scale by the type's range
            return t.expand(3, -1, -1).clone() if channels == 3 else t
        mode = {1: "L", 3: "RGB"}.get(channels or _channels_of(im.mode))
        arr = np.asarray(im.convert(mode), dtype=np.uint8)
    t = torch.from_numpy(arr.copy()).float() / 255.0
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)


def image_header(path: str | os.PathLike) -> tuple[int, tuple[int, int]]:
    """``(channels, (height, width))`` that :func:`decode_image` gives a file, read from its header alone (a
    file whose header reads may still fail to decode)."""
    from PIL import Image

    _regular(path)
    with Image.open(path) as im:
        return _channels_of(im.mode), (im.height, im.width)


def _wide_grey(arr: np.ndarray, mode: str) -> torch.Tensor:
    """A one-channel image of more than 8 bits as ``1 x H x W`` in [0, 1]: 16-bit by 65535; 32-bit integer by
    65535, or its own maximum above that (it has no fixed range); float as it is where it lies in [0, 1.5]
    (clipped), else by 255 up to 255, by 65535 up to 65535, else by its own maximum (a float TIFF written in
    0..255 was all white when clipped; a file has no range to refuse by, where an npz array's is refused above
    255). Judged per file; NaN reads as 0."""
    values = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = values.max() if values.size else 0.0
    if mode.startswith("I;16"):
        values = values / 65535.0
    elif top > (1.5 if mode == "F" else 65535):
        values = values / (255.0 if top <= 255 else 65535.0 if top <= 65535 else top)
    elif mode == "I" and top > 0:
        values = values / 65535.0
    return torch.from_numpy(np.clip(values, 0.0, 1.0).astype(np.float32)).unsqueeze(0)


def read_image_file(path: str | os.PathLike, channels: int | None = None) -> torch.Tensor:
    """A user's image file as ``C x H x W`` in [0, 1], or a one-line error: a directory, a missing file and an
    unreadable one each say what was wrong; ``channels`` (1 or 3) converts, another number must match."""
    text = os.fspath(path)
    if os.path.isdir(text):
        shown = text.rstrip("/\\") or text
        raise CnnlabError(f"'{shown}' is a directory; pass image files (e.g. {shown}/*.png)")
    if not os.path.isfile(text):
        raise not_a_file(text, "image")
    if os.path.getsize(text) == 0:
        raise CnnlabError(f"cannot read image '{text}': the file is empty (0 bytes)")
    from PIL import Image

    try:
        image = decode_image(text, channels if channels in (1, 3) else None)
    except Image.DecompressionBombError:
        raise CnnlabError(f"image '{text}' has more pixels than PIL opens by default ({Image.MAX_IMAGE_PIXELS:,}, "
                          f"a guard against decompression bombs); resize it, or, if you trust the file, raise "
                          f"PIL.Image.MAX_IMAGE_PIXELS in Python") from None
    except Exception as e:  # PIL raises many kinds for a file that is not an image
        raise CnnlabError(f"cannot read image '{text}': {str(e).splitlines()[0][:200]}") from None
    if channels is not None and image.shape[0] != channels:
        raise CnnlabError(f"the run's model takes {channels}-channel images; '{text}' has {image.shape[0]}")
    return image


def resize_images(images: torch.Tensor, size) -> torch.Tensor:
    """A batch ``N x C x H x W`` resized to ``size`` (height, width) as torchvision's tensor resize does it
    (bilinear, antialiased), without importing torchvision, which alone costs a second at start-up."""
    return F.interpolate(images, size=list(size), mode="bilinear", antialias=True, align_corners=False)
