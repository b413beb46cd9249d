"""The autoencoder kind of run (``cnnlab ae train``): registered with the engine, and what reading one of its
runs back means (its model, its data resized to the model's input, its reconstruction metrics)."""

from __future__ import annotations

from ..data.loader import InMemoryLoader
from ..train import Kind, Run, register_kind
from .config import AEConfig
from .recipe import AERecipe, build_autoencoder, reconstruction_task, to_input


@register_kind
class AutoencoderKind(Kind):
    name = "autoencoder"
    config = AEConfig
    holds = "autoencoder"
    article = "an autoencoder"
    command = "cnnlab ae train"
    tools = "cnnlab ae encode, denoise, generate, interpolate, features or evaluate"
    recipe_class = AERecipe
    legacy_section = "autoencoder"


    def build_model(self, meta: dict):
        return build_autoencoder(meta["autoencoder"])

    def prepare(self, run: Run, data):
        return to_input(data, tuple(run.meta["autoencoder"]["input_shape"]))

    def evaluate(self, run: Run, data, split: str, batch_size: int, device) -> dict:
        """MSE, PSNR, SSIM and the loss, as the run measured them (a denoising run on its corrupted inputs)."""
        s = data.splits()[split]
        task = reconstruction_task(run.meta.get("task") or {"noise": run.meta.get("training", {}).get("noise")})
        loader = InMemoryLoader(s.images.to(device), s.labels.to(device), batch_size)
        return task.evaluate(run.model.to(device), loader, device, ssim=True)

    def result_rows(self, test: dict) -> list[tuple[str, str]]:
        rows = [("test mse", f"{test['mse']:.5f}"), ("test psnr", f"{test['psnr']:.2f} dB"),
                ("test ssim", f"{test['ssim']:.4f}")]
        if "elbo" in test:
            rows += [("test elbo", f"{test['elbo']:.2f} nats/image"), ("test kl", f"{test['kl']:.2f} nats/image")]
        return rows + [("active code units", f"{100 * test['active']:.1f}%")]
