"""Image files as the viewer sees them: what cnnlab writes decodes (with Pillow) to the pixels it was given."""

import io

import numpy as np
import torch
from PIL import Image

from cnnlab.viz.images import png_bytes, save_png, tile


def test_a_png_decodes_to_the_pixels_it_was_given(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(7, 11, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(array))).convert("RGB")), array)
    save_png(array[:, ::-1], tmp_path / "sub" / "x.png")  # a strided view, into a folder made for it
    assert np.array_equal(np.asarray(Image.open(tmp_path / "sub" / "x.png").convert("RGB")), array[:, ::-1])


def test_a_tile_of_grey_images_is_their_pixels_in_rgb():
    images = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.25]]]])  # two 1x1x2 images
    grid = tile(images, ncol=2, pad=1, background=1.0)
    assert grid.shape == (3, 7, 3) and grid.dtype == np.uint8
    assert grid[1, 1:3, 0].tolist() == [0, 255] and grid[1, 4:6, 0].tolist() == [128, 64]
    assert (grid[1, 1:3] == grid[1, 1:3, :1]).all()  # grey: the three channels equal
