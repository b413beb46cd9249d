"""The autoencoder kind of run (``cnnlab ae train``): registered with the engine, and what reading one of its
runs back means (its model, its data resized to the model's input, its reconstruction metrics)."""

from __future__ import annotations

import torch
from torch import nn

from ..data.loader import InMemoryLoader
from ..data.prepare import Preprocess
from ..errors import CnnlabError
from ..nn.conv import ConvNormAct
from ..train import Kind, Run, register_kind
from .config import AEConfig
from .recipe import AERecipe, build_autoencoder, reconstruction_task, to_input
from .task import ELBO_SAMPLES


class _Encoder(nn.Module):
    """Images in [0, 1] to codes (a VAE's mean)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)


class _Decoder(_Encoder):
    """Codes to images in [0, 1]."""

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model.decode(code))


class _Reconstruct(_Encoder):
    """Images to their reconstructions (a VAE's from its mean code, deterministic)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model.decode(self.model.encode(x)))


@register_kind
class AutoencoderKind(Kind):
    name = "autoencoder"
    config = AEConfig
    holds = "autoencoder"
    article = "an autoencoder"
    command = "cnnlab ae train"
    tools = "cnnlab ae encode, denoise, generate, interpolate, features or evaluate"
    recipe_class = AERecipe
    meta_keys = {**Kind.meta_keys, "autoencoder": dict}
    legacy_section = "autoencoder"


    def build_model(self, meta: dict):
        return build_autoencoder(meta["autoencoder"])

    def export_parts(self, run: Run) -> dict:
        """The encoder (images in [0, 1] to codes), the decoder (codes to images) and both in one."""
        model = run.model
        shape = tuple(model.input_shape)
        with torch.no_grad():
            code = tuple(model.encode(torch.zeros(1, *shape)).shape[1:])
        return {"encoder": (_Encoder(model), shape), "decoder": (_Decoder(model), code),
                "autoencoder": (_Reconstruct(model), shape)}

    def prepare(self, run: Run, data):
        return to_input(data, tuple(run.meta["autoencoder"]["input_shape"]))

    def evaluate(self, run: Run, data, split: str, batch_size: int, device) -> dict:
        """MSE, PSNR, SSIM and the loss, as the run measured them (a denoising run on its corrupted inputs)."""
        s = data.split(split)
        task = reconstruction_task(run.meta.get("task") or {"noise": run.meta.get("training", {}).get("noise")})
        loader = InMemoryLoader(s.images.to(device), s.labels.to(device), batch_size)
        with torch.autocast(device.type, enabled=False):  # in fp32, as the run measured its test split
            return task.evaluate(run.model.to(device), loader, device, ssim=True, samples=ELBO_SAMPLES)

    def explain_subject(self, run: Run):
        """The encoder of a conv or dense autoencoder: its first layer's kernels (a dense one's weights as
        images) and the maps of each encoder block."""
        from ..explain import first_layer
        from ..explain.maps import WEIGHTED
        from ..explain.views import Subject

        model = run.model
        if model.kind == "recurrent" or len(model.input_shape) != 3:
            raise CnnlabError("a recurrent autoencoder reads its input row by row: it has no kernels or feature maps "
                              "to show (the views are for conv and dense autoencoders)")
        c, h, w = model.input_shape
        stages = [f"encoder.{i}" for i, m in enumerate(model.encoder) if isinstance(m, (ConvNormAct, nn.ReLU))]
        return Subject(model, Preprocess((h, w), 0, [0.0] * c, [1.0] * c), "an autoencoder", None, stages,
                       filter_layer="encoder." + first_layer(model.encoder, WEIGHTED))

    def report_sections(self, run: Run) -> list:
        """The encoder's first-layer kernels and the maps of each of its blocks for one test image."""
        from ..explain.views import features_view, filters_view
        from ..report import Section, figures

        if run.model.kind == "recurrent":
            return []
        subject = self.explain_subject(run)
        x = run.sample(1).test.images
        pictures = [filters_view(subject)] + (features_view(subject, x) if len(x) else [])
        return [Section("Inside the encoder", figures(pictures),
                        "The first layer's weights as images, and what each encoder block makes of the first test "
                        "image.")]

    def result_rows(self, test: dict) -> list[tuple[str, str]]:
        rows = [("test mse", f"{test['mse']:.5f}"), ("test psnr", f"{test['psnr']:.2f} dB"),
                ("test ssim", f"{test['ssim']:.4f}")]
        if "elbo" in test:
            rows += [("test elbo", f"{test['elbo']:.2f} nats/image"), ("test kl", f"{test['kl']:.2f} nats/image")]
        return rows + [("active code units", f"{100 * test['active']:.1f}%")]
