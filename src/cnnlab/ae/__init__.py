"""Autoencoders: dense, convolutional and recurrent bodies with plain, sparse or variational codes."""

from .models import KINDS, AEOutput, Autoencoder, create_autoencoder, kl_divergence

__all__ = ["KINDS", "AEOutput", "Autoencoder", "create_autoencoder", "kl_divergence"]
