import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def build(name: str, **kwargs):
    import cnnlab

    return cnnlab.create_model(name, **kwargs)


def build_meta(name: str, **kwargs):
    with torch.device("meta"):
        return build(name, **kwargs)
