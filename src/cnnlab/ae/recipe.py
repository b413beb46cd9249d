"""The autoencoder recipe: how :func:`cnnlab.train.fit` trains an autoencoder with the same loop, checkpoints,
``--resume`` and run directory as a classifier."""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from ..data import ImageData, ImageSet
from ..data.loader import split_loaders
from ..data.prepare import Preprocess, check_fits
from ..errors import CnnlabError
from ..train import Recipe
from .config import AEConfig
from .models import Autoencoder, create_autoencoder
from .task import ELBO_SAMPLES, Noise, ReconstructionTask


def model_args(a: AEConfig, input_shape: tuple[int, ...]) -> dict:
    """The builder arguments of :func:`create_autoencoder` for a config (saved in meta.json). Only a sparse
    autoencoder gets a sparse code, only a VAE a variational one, only a recurrent body its state size."""
    a = resolved(a)
    sparse = a.kind == "sparse"
    topk = a.topk if sparse else None
    code_act = ("sigmoid" if a.sparsity_kl else "relu" if a.sparsity_l1 else "none") if sparse else "none"
    recurrent = a.architecture == "recurrent"
    return {"kind": a.architecture, "input_shape": list(input_shape), "latent_dim": a.latent_dim,
            "variational": a.kind == "vae", "topk": topk, "code_act": code_act,
            "rnn_hidden": a.rnn_hidden if recurrent else 128, "cell": a.cell if recurrent else "gru"}


def task_args(a: AEConfig) -> dict:
    """The arguments of the :class:`ReconstructionTask` a config trains with (saved in meta.json, so that a run's
    evaluation measures what its training measured)."""
    a = resolved(a)
    noise, sparse = a.noise, a.kind == "sparse"
    return {"likelihood": a.likelihood, "beta": a.beta if a.kind == "vae" else 1.0, "noise": noise,
            "l1": a.sparsity_l1 if sparse else 0.0, "sparsity_kl": a.sparsity_kl if sparse else 0.0,
            "target_rate": a.sparsity_target}


def reconstruction_task(args: dict) -> ReconstructionTask:
    return ReconstructionTask(**{**args, "noise": Noise.parse(args["noise"]) if args.get("noise") else None})


def build_autoencoder(args: dict) -> Autoencoder:
    args = dict(args)
    return create_autoencoder(args.pop("kind"), tuple(args.pop("input_shape")), **args)


def to_input(data: ImageData, shape: tuple[int, int, int]) -> ImageData:
    """Images resized to an autoencoder's input ``shape`` (C, H, W), pixels kept in [0, 1]; unlabelled data gets a
    label of -1, so that it trains and measures like labelled data."""
    if not isinstance(data, ImageData):
        raise CnnlabError(f"'{data.name}' is streamed from disk; autoencoders need data that fits in memory")
    c, h, w = shape
    if data.channels != c:
        raise CnnlabError(f"the autoencoder takes {c}-channel images but '{data.name}' has {data.channels}; use data "
                          f"with {c} channel(s)")
    check_fits(data, (h, w))
    data = data.map(Preprocess((h, w), 0, [0.0] * c, [1.0] * c).geometry)
    splits = {k: v if v.labels is not None else ImageSet(v.images, torch.full((len(v),), -1, dtype=torch.long))
              for k, v in data.splits().items()}
    return dataclasses.replace(data, **splits)


def resolved(a: AEConfig) -> AEConfig:
    """The config with what its kind chooses by default written out (the body of a denoising, sparse or
    variational autoencoder, the denoising noise, a sparse code's k), so that config.yaml says what trained."""
    changes = {}
    if a.kind in ("denoising", "sparse", "vae") and a.body is None:
        changes["body"] = a.architecture
    if a.kind == "denoising" and not a.noise:
        changes["noise"] = "gaussian:0.3"
    if a.kind == "sparse" and a.topk is None and not (a.sparsity_l1 or a.sparsity_kl):
        changes["topk"] = max(1, a.latent_dim // 4)  # nothing asked: a quarter of the code active
    return a.replace(**changes)


class AERecipe(Recipe):
    def prepare(self, config: AEConfig, resuming: bool) -> AEConfig:
        self._config = config = resolved(config)
        return config

    def make_task(self, data, config: AEConfig) -> ReconstructionTask:
        self.task_args = task_args(config)
        self._task = reconstruction_task(self.task_args)  # kept: the KL warm-up sets its weight per epoch
        return self._task

    def build_model(self, config: AEConfig, data, task) -> nn.Module:
        side = config.image_size
        h, w = (side, side) if side else data.image_size
        self.args = model_args(config, (data.channels, h, w))
        return build_autoencoder(self.args)

    def prepare_data(self, config: AEConfig, model: nn.Module, data):
        """Resize to the autoencoder's input; no normalisation (pixels stay in [0, 1])."""
        c, h, w = model.input_shape
        self._classes = [str(k) for k in data.classes]
        return to_input(data, (c, h, w)), Preprocess((h, w), 0, [0.0] * c, [1.0] * c)

    def loaders(self, data, config: AEConfig, device, preprocess) -> dict:
        return split_loaders(data, config.batch_size, device, config.augment, config.seed)

    def start_epoch(self, model: nn.Module, epoch: int, log) -> None:
        a = self._config
        if a.kind == "vae" and a.kl_warmup:
            self._task.kl_scale = min(1.0, (epoch + 1) / a.kl_warmup)

    def train_view(self, model, batches, config: AEConfig, device, log):
        noise = self.task_args["noise"]
        body = f"{config.architecture}" + (f", {config.cell.upper()}" if config.architecture == "recurrent" else "")
        log(f"{config.kind} autoencoder ({body} body), latent {config.latent_dim}"
            + (f", trained on {noise}-corrupted inputs" if noise else ""))
        return super().train_view(model, batches, config, device, log)

    def meta(self, meta: dict) -> dict:
        return {**meta, "autoencoder": self.args, "task": self.task_args,
                "training": {"kind": self._config.kind, "noise": self.task_args["noise"]}}

    @staticmethod
    def _code_pictures(model, loader, folder, classes: list[str]) -> None:
        """The code map of up to 2,000 test images (2-D: PCA of the codes, coloured by class) and the paths
        between the codes of two test images of different classes (or the first two)."""
        from . import apps
        from .viz import code_maps, rows_grid

        xs, ys, n = [], [], 0
        for x, y in loader:
            xs.append(x.cpu())
            ys.append(y.cpu())
            n += len(x)
            if n >= 2000:
                break
        images, labels = torch.cat(xs)[:2000], torch.cat(ys)[:2000]
        if len(images) < 2:
            return
        model = copy.deepcopy(model).cpu().eval()  # trained on any device; pictured on the CPU, with the images
        codes = apps.encode(model, images).numpy()
        labelled = bool((labels >= 0).all()) and classes
        what, axes = apps.projection(codes.shape[1])
        code_maps({f"test images: {what}": (apps.project_2d(codes), axes)}, labels.clamp_min(0).numpy(),
                  classes if labelled else ["unlabelled"], folder / "code_map.png")
        other = torch.nonzero(labels != labels[0]).flatten()
        b = int(other[0]) if len(other) else 1
        rows_grid(apps.interpolate(model, images[0], images[b], 10), folder / "interpolations.png",
                  "decoded along the path from one test image's code (left) to another's (right)")

    def test(self, model, loader, task, device, precision, channels_last) -> dict:
        # in fp32, with SSIM, whatever the run's precision (bf16 on a GPU): `cnnlab ae evaluate` measures so, and
        # the pictures are made so
        return task.evaluate(model, loader, device, ssim=True, samples=ELBO_SAMPLES)

    def finish(self, result, run, batches, task, device, log) -> None:
        from .viz import reconstruction_grid, samples_grid

        model, full = result.model, result.test
        x = next(iter(batches["test"]))[0][:16]
        g = torch.Generator().manual_seed(0)
        noisy = task.noise(x, g) if task.noise is not None else None
        with torch.no_grad():
            model.eval()
            recon = torch.sigmoid(model(noisy if noisy is not None else x).logits.float())
        reconstruction_grid(x, recon, run.path / "plots" / "reconstructions.png", noisy=noisy)
        if model.variational:
            samples_grid(model.sample(64, torch.Generator().manual_seed(0)), run.path / "plots" / "samples.png")
        self._code_pictures(model, batches["test"], run.path / "plots", self._classes)
        result.extra["autoencoder"] = {**self.args, "training": self._config.kind,
                                       "active_code_fraction": round(full["active"], 4)}
        log(f"test: mse {full['mse']:.5f}, psnr {full['psnr']:.2f} dB, ssim {full['ssim']:.4f}, "
            f"active code units {100 * full['active']:.1f}%" + (f", elbo {full['elbo']:.2f} nats" if "elbo" in full
                                                             else ""))
