import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnnlab
from cnnlab.errors import ShapeArithmeticError
from cnnlab.inspect import Shape


def test_the_lecture_examples():
    out = cnnlab.conv_output_shape("224x224x3", kernel=3, stride=1, padding=0, dilation=1, filters=32)
    assert out == (222, 222, 32)
    assert str(cnnlab.conv_output_shape((224, 224, 3), kernel=7, stride=2, padding=3, filters=64)) == "112x112x64"
    assert cnnlab.conv_output_shape("32x32x1", kernel=5, filters=6) == Shape(28, 28, 6)  # LeNet-5 C1
    assert cnnlab.conv_output_shape("227x227x3", kernel=11, stride=4, filters=96) == (55, 55, 96)  # AlexNet
    assert cnnlab.conv_output_shape("28x28x1", kernel=3, dilation=2) == (24, 24, 1)  # effective kernel 5
    assert cnnlab.conv_output_shape("10x10x1", kernel=3, padding=(1, 0)) == (10, 8, 1)  # vertical, horizontal
    assert cnnlab.conv_output_shape("10x10x1", kernel=3, padding=(0, 2, 1, 0)) == (10, 9, 1)  # t, b, l, r
    assert cnnlab.pool_output_shape("112x112x64", kernel=3, stride=2, padding=1) == (56, 56, 64)
    assert cnnlab.pool_output_shape("7x7x8", kernel=2, ceil_mode=True) == (4, 4, 8)
    assert cnnlab.pool_output_shape("5x6x3", kernel="2x3", kind="avg") == (2, 2, 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_size="5x5x3", kernel=7), "kernel 7 is larger than the padded height 5"),
    (dict(input_size="5x5x3", kernel=3, dilation=3), "effective 7"),
    (dict(input_size="8x8x3", stride=0), "stride must be at least 1"),
    (dict(input_size="8x8x3", kernel=0), "kernel must be at least 1"),
    (dict(input_size="8x8x3", padding=-1), "must not be negative"),
    (dict(input_size="8x8x3", padding=(1, 2, 3)), "1, 2 .* or 4"),
    (dict(input_size="8x8x0"), "must be positive"),
    (dict(input_size="eightbyeight"), "not a size like"),
    (dict(input_size="8x8x3", filters=4, groups=2), "groups=2 must divide"),
    (dict(input_size="8x8x3", kernel=2.5), "kernel takes whole numbers, like 3 or 3x5; got 2.5"),
    (dict(input_size="8x8x3", padding=1.5), "padding takes whole numbers, .*; got 1.5"),
    (dict(input_size=(8.0, 8, 3)), "input takes whole numbers, like 224x224x3"),
    (dict(input_size="8x8x3", stride=True), "stride takes whole numbers"),
])
def test_invalid_convolutions_are_explained(kwargs, message):
    with pytest.raises(ShapeArithmeticError, match=message):
        cnnlab.conv_output_shape(**kwargs)


def test_sizes_may_be_numpy_or_torch_integers():
    assert str(cnnlab.conv_output_shape(torch.Size([32, 32, 3]), np.int64(3), padding=np.array([1, 1]))) == "32x32x3"


def test_invalid_pooling_is_explained():
    with pytest.raises(ShapeArithmeticError, match="more than half the kernel"):
        cnnlab.pool_output_shape("8x8x3", kernel=2, padding=2)
    with pytest.raises(ShapeArithmeticError, match="no dilation"):
        cnnlab.pool_output_shape("8x8x3", kernel=2, dilation=2, kind="avg")


sizes = st.integers(1, 40)
small = st.integers(1, 7)


@st.composite
def layer_configs(draw):
    h, w = draw(sizes), draw(sizes)
    kh, kw = draw(small), draw(small)
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pad = draw(st.sampled_from([1, 2, 4]))
    padding = tuple(draw(st.integers(0, 4)) for _ in range(pad))
    return h, w, (kh, kw), (sh, sw), (dh, dw), padding


def _explicit(padding):
    if len(padding) == 1:
        return padding * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return padding


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_configs(), st.integers(1, 3), st.integers(1, 4))
def test_conv_arithmetic_matches_pytorch(config, c_in, filters):
    h, w, k, s, d, padding = config
    top, bottom, left, right = _explicit(padding)
    x = torch.zeros(1, c_in, h, w)
    weight = torch.zeros(filters, c_in, *k)
    try:
        expected = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, stride=s, dilation=d).shape
    except RuntimeError:
        with pytest.raises(ShapeArithmeticError):
            cnnlab.conv_output_shape((h, w, c_in), k, s, padding, d, filters)
        return
    got = cnnlab.conv_output_shape((h, w, c_in), k, s, padding, d, filters)
    assert (got.channels, got.height, got.width) == tuple(expected[1:])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_configs(), st.booleans(), st.sampled_from(["max", "avg"]))
def test_pool_arithmetic_matches_pytorch(config, ceil_mode, kind):
    h, w, k, s, d, padding = config
    if kind == "avg":
        d = (1, 1)
    top, bottom, left, right = _explicit(padding)
    x = torch.zeros(1, 2, h, w)
    symmetric = top == bottom and left == right
    try:
        if symmetric:  # PyTorch's own padding argument (at most half the effective kernel)
            pool = F.max_pool2d if kind == "max" else F.avg_pool2d
            extra = {"dilation": d} if kind == "max" else {}
            expected = pool(x, k, s, (top, left), ceil_mode=ceil_mode, **extra).shape
        else:  # asymmetric padding is explicit padding followed by an unpadded pool
            xp = F.pad(x, (left, right, top, bottom))
            if kind == "max":
                expected = F.max_pool2d(xp, k, s, 0, d, ceil_mode=ceil_mode).shape
            else:
                expected = F.avg_pool2d(xp, k, s, 0, ceil_mode=ceil_mode).shape
        if min(expected) < 1:
            raise RuntimeError("empty output")
    except RuntimeError:
        with pytest.raises(ShapeArithmeticError):
            cnnlab.pool_output_shape((h, w, 2), k, s, padding, d, ceil_mode, kind)
        return
    got = cnnlab.pool_output_shape((h, w, 2), k, s, padding, d, ceil_mode, kind)
    assert (got.channels, got.height, got.width) == tuple(expected[1:])
