"""Autoencoders: one contract, three bodies, three variants.

Every autoencoder is ``encoder body -> code layer -> decoder body``:

* the **body** is ``dense`` (fully connected), ``conv`` (strided convolutions down, transposed convolutions
  up) or ``recurrent`` (a GRU or LSTM reads the image row by row; another writes it back row by row; it
  takes any ``N x T x F`` sequence the same way);
* the **code layer** is plain (``latent_dim`` linear units), **sparse** (only the ``topk`` largest
  activations kept, and/or a penalty added by the task) or **variational** (a Gaussian ``mu, log sigma^2``
  with the reparameterisation trick, and the KL divergence to the standard normal prior as a loss term).

The decoder outputs logits: ``torch.sigmoid(logits)`` are pixels in [0, 1] (the data is not normalised for
autoencoders, so that reconstruction errors, PSNR and SSIM are in pixel units). Denoising is not a model but
a way of training any of them (the task corrupts the input and keeps the clean target).

Contract: ``encode(x) -> code`` (the mean for a VAE), ``decode(code) -> logits``,
``forward(x) -> AEOutput(logits, code, terms)`` where ``terms`` holds the unweighted extra loss terms.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..errors import CnnlabError
from ..nn.conv import ConvNormAct

KINDS = ("dense", "conv", "recurrent")


class AEOutput(NamedTuple):
    logits: torch.Tensor              # N x C x H x W (or N x T x F): sigmoid gives the reconstruction
    code: torch.Tensor                # N x latent_dim (sampled while a VAE trains, its mean otherwise)
    terms: dict[str, torch.Tensor]    # e.g. {"kl": ...}: per-sample means, unweighted
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


class Autoencoder(nn.Module):
    """``encoder -> code -> decoder`` with an optional sparse or variational code layer.

    Args:
        encoder: maps an input to ``N x feat_dim``.
        decoder: maps ``N x feat_dim`` to output logits of the input's shape.
        feat_dim: width between the bodies and the code layer.
        latent_dim: code size.
        variational: Gaussian code with the reparameterisation trick and a KL term.
        topk: keep only the ``topk`` largest code activations per sample (sparse; the rest are zero).
        code_act: ``none``, ``relu`` (non-negative codes, for an L1 sparsity penalty) or ``sigmoid`` (codes in
            (0, 1), for a KL sparsity penalty against a target rate).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, feat_dim: int, latent_dim: int,
                 input_shape: tuple[int, ...], kind: str, variational: bool = False, topk: int | None = None,
                 code_act: str = "none") -> None:
        super().__init__()
        if latent_dim < 1:
            raise CnnlabError(f"latent_dim must be at least 1, got {latent_dim}")
        if topk is not None and not 1 <= topk <= latent_dim:
            raise CnnlabError(f"topk (--topk) must be between 1 and the code size (--latent-dim {latent_dim}), "
                              f"got {topk}")
        if variational and (topk or code_act != "none"):
            raise CnnlabError("a variational code is Gaussian: it takes neither topk nor a code activation")
        if code_act not in ("none", "relu", "sigmoid"):
            raise CnnlabError(f"code_act must be none, relu or sigmoid, got '{code_act}'")
        self.encoder, self.decoder = encoder, decoder
        self.to_code = nn.Linear(feat_dim, latent_dim * (2 if variational else 1))
        self.from_code = nn.Sequential(nn.Linear(latent_dim, feat_dim), nn.ReLU(inplace=True))
        self.latent_dim, self.variational, self.topk, self.code_act = latent_dim, variational, topk, code_act
        self.input_shape, self.kind = tuple(input_shape), kind

    def check_input(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            shape = "x".join(map(str, self.input_shape))
            raise CnnlabError(f"this {self.kind} autoencoder was built for inputs of {shape}, got "
                              f"{'x'.join(map(str, x.shape[1:]))}")

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mu, logvar)`` for a VAE, ``(code, None)`` otherwise."""
        h = self.to_code(self.encoder(x))
        if self.variational:
            mu, logvar = h.chunk(2, dim=1)
            return mu, logvar.clamp(-30, 20)
        if self.code_act == "relu":
            h = torch.relu(h)
        elif self.code_act == "sigmoid":
            h = torch.sigmoid(h)
        if self.topk is not None:
            keep = h.abs().topk(self.topk, dim=1).indices
            h = torch.zeros_like(h).scatter(1, keep, h.gather(1, keep))
        return h, None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of ``x`` (a VAE's mean: deterministic)."""
        return self.encode_distribution(x)[0]

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Logits of the reconstruction; ``torch.sigmoid`` of them are pixels in [0, 1]."""
        return self.decoder(self.from_code(code))

    def forward(self, x: torch.Tensor) -> AEOutput:
        self.check_input(x)
        mu, logvar = self.encode_distribution(x)
        terms: dict[str, torch.Tensor] = {}
        code = mu
        if self.variational:
            if self.training:
                code = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            terms["kl"] = kl_divergence(mu, logvar)
        return AEOutput(self.decode(code), code, terms, mu, logvar)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images decoded from codes drawn from the prior N(0, I) (a VAE's generation)."""
        if not self.variational:
            raise CnnlabError(f"only a variational autoencoder samples from a prior; this one is {self.kind}")
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator).to(p.device, p.dtype)
        return torch.sigmoid(self.decode(z))


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over the code, per sample: ``N`` values, each >= 0."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


# --- bodies ---------------------------------------------------------------------------------------------
def _dense(shape: tuple[int, int, int], hidden: tuple[int, ...]) -> tuple[nn.Module, nn.Module, int]:
    n = math.prod(shape)
    widths = [n, *hidden]
    enc: list[nn.Module] = [nn.Flatten(1)]
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        enc += [nn.Linear(a, b), nn.ReLU(inplace=True)]
    dec: list[nn.Module] = []
    rev = widths[::-1]
    for i, (a, b) in enumerate(zip(rev[:-1], rev[1:], strict=True)):
        dec.append(nn.Linear(a, b))
        if i < len(rev) - 2:
            dec.append(nn.ReLU(inplace=True))
    dec.append(nn.Unflatten(1, shape))
    return nn.Sequential(*enc), nn.Sequential(*dec), widths[-1]


def conv_depth(size: tuple[int, int], widths: tuple[int, ...]) -> int:
    """How many stride-2 stages an image of ``size`` takes (each halves the side; at least 2x2 remains)."""
    h, w = size
    depth = 0
    while depth < len(widths) and h % 2 == 0 and w % 2 == 0 and h >= 4 and w >= 4:
        h, w, depth = h // 2, w // 2, depth + 1
    return depth


def _conv(shape: tuple[int, int, int], widths: tuple[int, ...]) -> tuple[nn.Module, nn.Module, int]:
    c, h, w = shape
    depth = conv_depth((h, w), widths)
    if depth == 0:
        raise CnnlabError(f"a conv autoencoder halves the image at each stage; {h}x{w} cannot be halved "
                          f"(use an even size of at least 4, e.g. --image-size 32)")
    widths = widths[:depth]
    enc: list[nn.Module] = []
    chs = c
    for width in widths:
        enc.append(ConvNormAct(chs, width, 3, stride=2))
        enc.append(ConvNormAct(width, width, 3))
        chs = width
    bottom = (widths[-1], h >> depth, w >> depth)
    enc.append(nn.Flatten(1))
    dec: list[nn.Module] = [nn.Unflatten(1, bottom)]
    rev = list(widths[::-1]) + [widths[0]]
    for a, b in zip(rev[:-1], rev[1:], strict=True):
        dec += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(b),
                nn.ReLU(inplace=True), ConvNormAct(b, b, 3)]
    dec.append(nn.Conv2d(widths[0], c, 3, padding=1))
    return nn.Sequential(*enc), nn.Sequential(*dec), math.prod(bottom)


class _RowsIn(nn.Module):
    """An image ``N x C x H x W`` as the sequence of its rows ``N x H x (C*W)``; a sequence passes as it is."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            n, c, h, w = x.shape
            x = x.permute(0, 2, 1, 3).reshape(n, h, c * w)
        _, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        return h_n[-1]


class _RowsOut(nn.Module):
    """The code's features fed at every step to an RNN that writes one row (or sequence element) per step."""

    def __init__(self, rnn: nn.Module, hidden: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.rnn, self.shape = rnn, shape
        steps, per_step = (shape[1], shape[0] * shape[2]) if len(shape) == 3 else shape
        self.steps = steps
        self.out = nn.Linear(hidden, per_step)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        seq, _ = self.rnn(h.unsqueeze(1).expand(-1, self.steps, -1).contiguous())
        y = self.out(seq)
        if len(self.shape) == 3:
            c, rows, w = self.shape
            y = y.reshape(-1, rows, c, w).permute(0, 2, 1, 3)
        return y.contiguous()


def _recurrent(shape: tuple[int, ...], hidden: int, cell: str, layers: int = 1) -> tuple[nn.Module, nn.Module, int]:
    if cell not in ("gru", "lstm"):
        raise CnnlabError(f"cell must be gru or lstm, got '{cell}'")
    rnn = nn.GRU if cell == "gru" else nn.LSTM
    per_step = shape[0] * shape[2] if len(shape) == 3 else shape[1]
    enc = _RowsIn(rnn(per_step, hidden, num_layers=layers, batch_first=True))
    dec = _RowsOut(rnn(hidden, hidden, num_layers=layers, batch_first=True), hidden, shape)
    return enc, dec, hidden


def create_autoencoder(kind: str, input_shape: tuple[int, ...], latent_dim: int = 16, *,
                       variational: bool = False, topk: int | None = None, code_act: str = "none",
                       hidden: tuple[int, ...] = (512, 256), widths: tuple[int, ...] = (32, 64, 128),
                       rnn_hidden: int = 128, cell: str = "gru") -> Autoencoder:
    """Build an autoencoder.

    Args:
        kind: ``dense``, ``conv`` or ``recurrent`` (the body).
        input_shape: ``(C, H, W)`` of the images (``(T, F)`` for a recurrent one over sequences).
        latent_dim: size of the code (the bottleneck).
        variational, topk, code_act: the code layer (see :class:`Autoencoder`).
        hidden: dense: widths of the hidden layers; widths: conv: channels per stage; rnn_hidden, cell:
            recurrent: state size and ``gru``/``lstm``.

    >>> ae = create_autoencoder("conv", (1, 32, 32), latent_dim=8)
    >>> ae(torch.rand(2, 1, 32, 32)).logits.shape
    torch.Size([2, 1, 32, 32])
    """
    shape = tuple(int(s) for s in input_shape)
    if kind == "dense":
        enc, dec, feat = _dense(shape, tuple(hidden))
    elif kind == "conv":
        if len(shape) != 3:
            raise CnnlabError(f"a conv autoencoder takes images C x H x W, got shape {shape}")
        enc, dec, feat = _conv(shape, tuple(widths))
    elif kind == "recurrent":
        enc, dec, feat = _recurrent(shape, rnn_hidden, cell)
    else:
        # the command line's other kinds are a code layer or a training of one of these bodies
        other = {"vae": f"a VAE is a body with variational=True: create_autoencoder('conv', {shape}, "
                        f"variational=True)",
                 "sparse": "a sparse autoencoder is a body with topk=K (or code_act='relu' and an L1 penalty "
                           "in training)",
                 "denoising": "a denoising autoencoder is a body trained on noisy inputs: "
                              "cnnlab.ae.AEConfig(kind='denoising')"}.get(kind)
        raise CnnlabError(f"create_autoencoder's kind is the body ({', '.join(KINDS)}); {other}" if other else
                          f"unknown autoencoder kind '{kind}'; kinds: {', '.join(KINDS)}")
    return Autoencoder(enc, dec, feat, latent_dim, shape, kind, variational, topk, code_act)
