"""Autoencoders, a kind of run (``cnnlab ae train``): dense, convolutional and recurrent bodies with plain,
sparse or variational codes, and what they are for (:mod:`cnnlab.ae.apps`).

>>> from cnnlab.ae import AEConfig
>>> from cnnlab.train import fit
>>> result = fit(AEConfig(kind="vae", data="digits", latent_dim=8))  # doctest: +SKIP
"""

from .config import KINDS as AE_KINDS
from .config import AEConfig
from .kind import AutoencoderKind
from .models import KINDS, AEOutput, Autoencoder, create_autoencoder, kl_divergence
from .recipe import AERecipe, build_autoencoder

__all__ = ["AE_KINDS", "AEConfig", "AEOutput", "AERecipe", "Autoencoder", "AutoencoderKind", "KINDS",
           "build_autoencoder", "create_autoencoder", "kl_divergence"]
