"""The autoencoder recipe: how :func:`cnnlab.train.fit` trains an autoencoder with the same loop, checkpoints,
``--resume`` and run directory as a classifier."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from ..data._base import ImageData, ImageSet
from ..data.prepare import Preprocess
from ..errors import CnnlabError
from ..train.config import AEConfig, TrainConfig
from ..train.engine import Recipe
from .models import Autoencoder, create_autoencoder
from .task import Noise, ReconstructionTask


def model_args(a: AEConfig, input_shape: tuple[int, ...]) -> dict:
    """The builder arguments of :func:`create_autoencoder` for a config (saved in meta.json)."""
    topk = a.topk
    if a.kind == "sparse" and topk is None and not (a.sparsity_l1 or a.sparsity_kl):
        topk = max(1, a.latent_dim // 4)  # sparse with nothing asked: a quarter of the code active
    code_act = "sigmoid" if a.sparsity_kl else "relu" if a.sparsity_l1 else "none"
    return {"kind": a.architecture, "input_shape": list(input_shape), "latent_dim": a.latent_dim,
            "variational": a.kind == "vae", "topk": topk, "code_act": code_act, "rnn_hidden": a.rnn_hidden,
            "cell": a.cell}


def build_autoencoder(args: dict) -> Autoencoder:
    args = dict(args)
    return create_autoencoder(args.pop("kind"), tuple(args.pop("input_shape")), **args)


def noise_of(a: AEConfig) -> Noise | None:
    if a.noise:
        return Noise.parse(a.noise)
    return Noise("gaussian", 0.3) if a.kind == "denoising" else None


class AERecipe(Recipe):
    def prepare(self, config: TrainConfig, resuming: bool) -> TrainConfig:
        self._config = config
        a = config.autoencoder
        if a.noise and a.kind != "denoising":
            Noise.parse(a.noise)  # any kind may train on corrupted inputs; check the spec early
        return config

    def make_task(self, data, config: TrainConfig) -> ReconstructionTask:
        a = config.autoencoder
        self._task = ReconstructionTask(a.likelihood, a.beta, noise_of(a), a.sparsity_l1, a.sparsity_kl,
                                        a.sparsity_target)  # kept: the KL warm-up sets its weight per epoch
        return self._task

    def build_model(self, config: TrainConfig, data, task) -> nn.Module:
        side = config.image_size
        h, w = (side, side) if side else data.image_size
        self.args = model_args(config.autoencoder, (data.channels, h, w))
        return build_autoencoder(self.args)

    def prepare_data(self, config: TrainConfig, model: nn.Module, data):
        """Resize to the autoencoder's input; no normalisation (pixels stay in [0, 1])."""
        if not isinstance(data, ImageData):
            raise CnnlabError("autoencoders train on datasets that fit in memory")
        c, h, w = model.input_shape
        pre = Preprocess((h, w), 0, [0.0] * c, [1.0] * c)
        data = data.map(pre.geometry)
        # unlabelled data (photos) trains too: the loaders carry a label of -1
        splits = {k: v if v.labels is not None else ImageSet(v.images, torch.full((len(v),), -1, dtype=torch.long))
                  for k, v in data.splits().items()}
        return dataclasses.replace(data, **splits), pre

    def start_epoch(self, model: nn.Module, epoch: int, log) -> None:
        a = self._config.autoencoder
        if a.kind == "vae" and a.kl_warmup:
            self._task.kl_scale = min(1.0, (epoch + 1) / a.kl_warmup)

    def train_view(self, model, batches, config, device, log):
        a = config.autoencoder
        noise = noise_of(a)
        log(f"{a.kind} autoencoder ({a.architecture} body), latent {a.latent_dim}"
            + (f", trained on {noise}-corrupted inputs" if noise else ""))
        return super().train_view(model, batches, config, device, log)

    def meta(self, meta: dict) -> dict:
        meta.update(kind="autoencoder", model_kwargs={}, autoencoder=self.args,
                    training={"kind": self._config.autoencoder.kind, "noise": str(noise_of(self._config.autoencoder))
                              if noise_of(self._config.autoencoder) else None})
        return meta

    def finish(self, result, run, batches, task, device, log) -> None:
        from .viz import reconstruction_grid, samples_grid

        model = result.model
        full = task.evaluate(model, batches["test"], device, ssim=True)
        result.test.update({k: v for k, v in full.items() if k not in result.test})
        x = next(iter(batches["test"]))[0][:16]
        g = torch.Generator().manual_seed(0)
        noisy = task.noise(x, g) if task.noise is not None else None
        with torch.no_grad():
            model.eval()
            recon = torch.sigmoid(model(noisy if noisy is not None else x).logits.float())
        reconstruction_grid(x, recon, run.path / "plots" / "reconstructions.png", noisy=noisy)
        if model.variational:
            samples_grid(model.sample(64, torch.Generator().manual_seed(0)), run.path / "plots" / "samples.png")
        result.extra["autoencoder"] = {**self.args, "training": self._config.autoencoder.kind,
                                       "active_code_fraction": round(full["active"], 4)}
        log(f"test: mse {full['mse']:.5f}, psnr {full['psnr']:.2f} dB, ssim {full['ssim']:.4f}, "
            f"active code units {100 * full['active']:.1f}%" + (f", elbo {full['elbo']:.2f} nats" if "elbo" in full
                                                             else ""))


def load_ae_run(path: str | Path, which: str | None = None) -> tuple[Autoencoder, dict]:
    """Rebuild an autoencoder run's model from its checkpoint, with its metadata."""
    from ..train.rundir import read_run_checkpoint, run_kind

    state, meta, file = read_run_checkpoint(path, which)
    if meta.get("kind") != "autoencoder":
        raise CnnlabError(f"'{path}' holds {run_kind(meta)}, not an autoencoder; "
                          f"use the commands of its kind (cnnlab evaluate/predict, cnnlab segment)")
    model = build_autoencoder(meta["autoencoder"])
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CnnlabError(f"checkpoint '{file}' does not fit its autoencoder: {str(e).splitlines()[-1].strip()}"
                          ) from None
    return model.eval(), meta
