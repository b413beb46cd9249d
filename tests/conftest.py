import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `import cnnlab` sets it: torch here is imported first

import pytest  # noqa: E402
import torch  # noqa: E402

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
