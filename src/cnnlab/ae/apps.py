"""What autoencoders are for: codes, denoising, generation, interpolation, features, and their limits.

Every function takes a trained autoencoder and data in [0, 1] resized to its input: ``run.model`` and
``run.data()`` of ``cnnlab.train.Run.open(RUN, holds="autoencoder")``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .._options import option
from ..data import ImageData, read_image_file
from ..data.prepare import Preprocess
from ..errors import CnnlabError
from .models import Autoencoder
from .task import Noise, psnr, ssim

_SEED = dict(low=0, high=2**32 - 1)


# --- the options of each tool (the cnnlab ae commands take the same) ----------------------------------------
@dataclass
class EncodeOptions:
    split: str = option("test", "which split (one other than test names the files after it: codes-train.npy, ...)",
                        choices=("test", "val", "train"))


@dataclass
class DenoiseOptions:
    noise: str = option("gaussian:0.3", "corruption of the clean images: gaussian:L | salt-pepper:L | mask:L | "
                                        "shift:L (the command line's default: the run's own --noise, if it had one)",
                        metavar="NOISE")
    seed: int = option(0, "seed of the corruption", **_SEED)


@dataclass
class GenerateOptions:
    n: int = option(64, "how many samples", low=1, high=1_000_000, flag="-n")
    seed: int = option(0, "seed of the prior draws", **_SEED)


@dataclass
class InterpolateOptions:
    steps: int = option(10, "images along each path, A and B included", low=2, high=100)


@dataclass
class FeaturesOptions:
    labels: list[int] = option([5, 10, 25, 100], "labels per class", low=1, high=100_000)


def load_images(paths: list[str], shape: tuple[int, int, int]) -> torch.Tensor:
    """Image files as a batch in [0, 1], resized to ``shape`` (C, H, W)."""

    c, h, w = shape
    pre = Preprocess((h, w), 0, [0.0] * c, [1.0] * c)
    out = [pre.geometry(read_image_file(p, c).unsqueeze(0)) for p in paths]
    return torch.cat(out)


@torch.no_grad()
def encode(model: Autoencoder, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    model.eval()
    return torch.cat([model.encode(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


@torch.no_grad()
def reconstruct(model: Autoencoder, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    model.eval()
    return torch.cat([torch.sigmoid(model(images[i:i + batch_size]).logits.float())
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def sample_batches(model: Autoencoder, n: int, seed: int = 0, batch_size: int = 1024) -> Iterator[torch.Tensor]:
    """``n`` samples from a VAE's prior, in batches (a million samples never sit in memory at once)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        yield model.sample(min(batch_size, n - start), g)


# --- codes -------------------------------------------------------------------------------------------
def projection(dim: int, what: str = "codes") -> tuple[str, tuple[str, str]]:
    """How :func:`project_2d` draws ``dim``-D data on a map, in words, and the map's two axis labels."""
    one = what[:-1] if what.endswith("s") else what
    if dim == 1:
        return f"the {what} (spread at random on y)", (one, "random spread")
    if dim == 2:
        return f"the {what}", (f"{one} unit 1", f"{one} unit 2")
    return f"PCA of the {dim}-D {what}", ("principal component 1", "principal component 2")


def project_2d(x: np.ndarray) -> np.ndarray:
    """The data itself when 2-D, else its first two principal components. 1-D data (a one-number code) is
    drawn along the first axis, spread at random along the second (seeded) so that points do not hide each
    other. Needs at least two points (PCA of one point has no components)."""
    if len(x) < 2:
        raise CnnlabError(f"a 2-D map needs at least 2 points, got {len(x)}")
    if x.shape[1] == 2:
        return x
    if x.shape[1] == 1:
        return np.concatenate([x, np.random.default_rng(0).uniform(-1, 1, (len(x), 1))], axis=1)
    from sklearn.decomposition import PCA

    return PCA(2, random_state=0).fit_transform(x)


# --- denoising -------------------------------------------------------------------------------------------
@dataclass
class DenoiseResult:
    noisy: dict      # {"psnr", "ssim"} of the corrupted input against the clean one
    autoencoder: dict
    filter: dict     # the best classical filter, chosen on the validation split
    filter_name: str


def classical_filters() -> dict:
    """Gaussian blurs and median filters, per image and channel (scipy.ndimage)."""
    from scipy import ndimage

    def apply(fn):
        def run(x: torch.Tensor) -> torch.Tensor:
            a = x.numpy()
            return torch.from_numpy(np.stack([[fn(ch) for ch in img] for img in a]).astype(np.float32))
        return run

    out = {f"gaussian blur sigma={s}": apply(lambda ch, s=s: ndimage.gaussian_filter(ch, s)) for s in (0.5, 0.75, 1.0)}
    out.update({f"median {k}x{k}": apply(lambda ch, k=k: ndimage.median_filter(ch, size=k)) for k in (2, 3)})
    return out


def denoise_compare(model: Autoencoder, data: ImageData, noise: Noise, seed: int = 0) -> tuple[DenoiseResult, dict]:
    """PSNR and SSIM on the test split of: the noisy input, the autoencoder's output, and the classical
    filter that does best on the validation split (so the filter is tuned as fairly as the network)."""
    g = torch.Generator().manual_seed(seed)
    val_clean, test_clean = data.val.images, data.test.images
    val_noisy, test_noisy = noise(val_clean, g), noise(test_clean, g)
    filters = classical_filters()
    best = max(filters, key=lambda k: psnr(filters[k](val_noisy).clamp(0, 1), val_clean))
    filtered = filters[best](test_noisy).clamp(0, 1)
    denoised = reconstruct(model, test_noisy)

    def score(x):
        return {"psnr": psnr(x, test_clean), "ssim": ssim(x, test_clean)}

    result = DenoiseResult(score(test_noisy), score(denoised), score(filtered), best)
    return result, {"clean": test_clean, "noisy": test_noisy, "denoised": denoised, "filtered": filtered}


# --- interpolation and arithmetic ------------------------------------------------------------------------
def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two codes: the direction turns at constant speed along the great circle
    from ``a``'s to ``b``'s, and the length goes linearly from ``|a|`` to ``|b|`` (for codes of equal length,
    the usual formula of Shoemake 1985; White 2016 for the codes of generative models). Where the codes point
    the same way or opposite ways, no single great circle joins them: the linear path. A one-number code is
    always so (it has no sphere to follow).

    The usual formula on codes of unequal length, ``(sin((1-t) w) a + sin(t w) b) / sin(w)``, grows as
    ``(|a| - |b|) / (pi - w)`` as the angle ``w`` nears pi: -2.3e6 halfway from 0.5 to -0.3."""
    a64, b64 = a.double(), b.double()  # float64: the angle of nearly opposite float32 codes, to 1e-16
    na, nb = a64.norm(), b64.norm()
    if min(na, nb) < 1e-12:  # the zero code has no direction
        return (1 - t) * a + t * b
    ua, ub = a64 / na, b64 / nb
    omega = 2 * torch.atan2((ua - ub).norm(), (ua + ub).norm())  # the angle; acos(dot) loses it near 0 and pi
    if torch.sin(omega) < 1e-6:
        return (1 - t) * a + t * b
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)  # unit length
    return (((1 - t) * na + t * nb) * direction).to(a.dtype)


@torch.no_grad()
def interpolate(model: Autoencoder, a: torch.Tensor, b: torch.Tensor, steps: int) -> dict[str, torch.Tensor]:
    """Decoded images along the linear and the spherical path between the codes of images ``a`` and ``b``."""
    za, zb = encode(model, torch.stack([a, b]))
    ts = [i / (steps - 1) for i in range(steps)]
    lin = torch.stack([(1 - t) * za + t * zb for t in ts])
    sph = torch.stack([slerp(za, zb, t) for t in ts])
    return {"linear": torch.sigmoid(model.decode(lin)), "spherical": torch.sigmoid(model.decode(sph))}


@torch.no_grad()
def attribute_shift(model: Autoencoder, images: torch.Tensor, labels: torch.Tensor, source: int, target: int,
                    x: torch.Tensor, strengths=(0.0, 0.5, 1.0, 1.5)) -> torch.Tensor:
    """``x``'s code plus ``s x (mean code of class target - mean code of class source)`` for each strength."""
    codes = encode(model, images)
    if not (labels == source).any() or not (labels == target).any():
        raise CnnlabError("both classes of the arithmetic need images in the data")
    direction = codes[labels == target].mean(0) - codes[labels == source].mean(0)
    z = encode(model, x.unsqueeze(0))[0]
    return torch.sigmoid(model.decode(torch.stack([z + s * direction for s in strengths])))


# --- features for a classifier ---------------------------------------------------------------------------
def features_compare(model: Autoencoder, data: ImageData, per_class: tuple[int, ...] = (5, 10, 25, 100),
                     seeds: tuple[int, ...] = (0, 1, 2)) -> list[dict]:
    """Test accuracy of one classifier (logistic regression, standardised inputs) trained on ``n`` labels per
    class, on three representations: raw pixels, PCA with as many components as the code, and the frozen
    encoder's codes. PCA is fitted on all training images without their labels, like the autoencoder; it has
    no more components than pixels or training images, so a code larger than either (an overcomplete sparse
    code) is compared with all of them, and the row names how many (``PCA (64)`` beside ``encoder (128)``)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if data.train.labels is None or (data.train.labels < 0).all():  # unlabelled data trains with label -1
        raise CnnlabError(f"'{data.name}' has no labels to train a classifier with; use --data with labels")
    x_train, x_test = data.train.images.flatten(1).numpy(), data.test.images.flatten(1).numpy()
    y_train, y_test = data.train.labels.numpy(), data.test.labels.numpy()
    if len(np.unique(y_train)) < 2:
        raise CnnlabError(f"'{data.name}' has one class; a classifier needs at least two")
    fewest = int(np.bincount(y_train).min())
    if max(per_class) > fewest:
        raise CnnlabError(f"--labels {max(per_class)}: the training split of '{data.name}' has {fewest} images of its "
                          f"smallest class; use counts up to {fewest}")
    k = min(model.latent_dim, *x_train.shape)  # PCA's most components: min(images, pixels)
    pca = PCA(k, random_state=0).fit(x_train)
    reps = {"raw pixels": (x_train, x_test),
            f"PCA ({k})": (pca.transform(x_train), pca.transform(x_test)),
            f"encoder ({model.latent_dim})": (encode(model, data.train.images).numpy(),
                                              encode(model, data.test.images).numpy())}
    rows = []
    for n in per_class:
        for name, (tr, te) in reps.items():
            accs = []
            for seed in seeds:
                rng = np.random.default_rng(seed)
                idx = np.concatenate([rng.permutation(np.flatnonzero(y_train == c))[:n] for c in np.unique(y_train)])
                clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
                clf.fit(tr[idx], y_train[idx])
                accs.append(float((clf.predict(te) == y_test).mean()))
            rows.append({"labels_per_class": n, "features": name, "accuracy_mean": float(np.mean(accs)),
                         "accuracy_std": float(np.std(accs))})
    return rows


# --- generation ------------------------------------------------------------------------------------------
def spread(counts: np.ndarray) -> float:
    """Normalised entropy of a class distribution: 1 = uniform over the classes, 0 = all in one."""
    p = counts / max(1, counts.sum())
    p = p[p > 0]
    if len(counts) < 2:
        return 0.0
    return float((p * np.log(1 / p)).sum() / math.log(len(counts)))  # log(1/p), not -log(p): all in one is 0.0
