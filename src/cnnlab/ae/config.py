"""The configuration of an autoencoder run (``cnnlab ae train``)."""

from __future__ import annotations

from dataclasses import dataclass

from .._options import like, option
from ..errors import CnnlabError
from ..train import RunConfig

KINDS = ("dense", "conv", "recurrent", "denoising", "sparse", "vae")


@dataclass
class AEConfig(RunConfig):
    """An autoencoder trained to reconstruct its input; the options of ``cnnlab ae train``."""

    data: str = like(RunConfig, "data", "digits", fixed=True)
    channels_last: bool | None = like(RunConfig, "channels_last", None, unset="off: the autoencoders declare no layout")
    augment: bool = like(RunConfig, "augment", False, help="random crop and flip while training (the target is the "
                                                         "input: shifting it only makes it harder)")
    monitor: str = like(RunConfig, "monitor", "val_loss", choices=("val_loss", "val_mse", "val_psnr"))
    kind: str = option("conv", "the autoencoder: a body (dense, conv, recurrent) or a training (denoising, "
                                "sparse, vae) of a body", choices=KINDS, fixed=True)
    body: str | None = option(None, "the body of denoising, sparse and vae (default: conv; dense for vae)",
                              choices=("dense", "conv", "recurrent"), applies=("kind", ("denoising", "sparse", "vae")),
                              fixed=True)
    latent_dim: int = option(16, "size of the code (the bottleneck)", low=1, high=65_536, fixed=True)
    noise: str | None = option(None, "corrupt training inputs: gaussian:L | salt-pepper:L | mask:L | shift:L "
                                     "(denoising: gaussian:0.3)", metavar="NOISE", fixed=True)
    topk: int | None = option(None, "sparse: keep only the k largest code activations (default: latent_dim / 4)",
                              low=1, high=65_536, applies=("kind", ("sparse",)), fixed=True)
    sparsity_l1: float = option(0.0, "sparse: L1 penalty on the (ReLU) code", low=0, high=100,
                                applies=("kind", ("sparse",)), fixed=True)
    sparsity_kl: float = option(0.0, "sparse: KL penalty on sigmoid codes", low=0, high=100,
                                applies=("kind", ("sparse",)), fixed=True)
    sparsity_target: float = option(0.05, "sparse: the activation rate the KL penalty aims at", above=0, below=1,
                                    applies=("kind", ("sparse",)))
    beta: float = option(1.0, "vae: weight of the KL term", low=0, high=1000, applies=("kind", ("vae",)))
    kl_warmup: int = option(0, "vae: epochs over which the KL weight rises to beta", low=0, high=100_000,
                            applies=("kind", ("vae",)))
    likelihood: str = option("bernoulli", "the reconstruction loss: bernoulli is the cross-entropy of each pixel, "
                                          "gaussian its squared error",
                             choices=("bernoulli", "gaussian"), fixed=True)
    rnn_hidden: int = option(128, "recurrent: state size", low=1, high=65_536,
                             applies=("architecture", ("recurrent",)), fixed=True)
    cell: str = option("gru", "recurrent: the cell", choices=("gru", "lstm"),
                       applies=("architecture", ("recurrent",)), fixed=True)

    @property
    def name(self) -> str:
        return f"{self.kind}_ae"

    @property
    def architecture(self) -> str:
        """The body: the kind itself, or ``body``; by default conv, and dense for a VAE (on the small
        built-in images its samples were clearly better: 79% mean classifier confidence against 52%)."""
        if self.kind in ("dense", "conv", "recurrent"):
            return self.kind
        return self.body or ("dense" if self.kind == "vae" else "conv")

    def validate(self, name=lambda key: key) -> AEConfig:
        super().validate(name)
        if self.body and self.kind in ("dense", "conv", "recurrent"):
            raise CnnlabError(f"{name('body')} is for denoising, sparse and vae; kind {self.kind} is itself the body")
        if self.kind == "vae" and self.kl_warmup > self.epochs:
            raise CnnlabError(f"{name('kl_warmup')} ({self.kl_warmup}) must be at most {name('epochs')} "
                              f"({self.epochs}): the KL weight would never reach beta")
        if self.kind == "sparse" and self.sparsity_l1 and self.sparsity_kl:
            raise CnnlabError(f"choose one sparsity penalty: {name('sparsity_l1')} or {name('sparsity_kl')}")
        if self.noise:
            from .task import Noise

            Noise.parse(self.noise)
        return self
