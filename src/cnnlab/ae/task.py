"""Reconstruction: what an autoencoder is trained on and measured by.

The loss per image is the negative log-likelihood of the input under the decoder's output, averaged over
pixels: binary cross-entropy (a Bernoulli likelihood, the default for pixels in [0, 1]) or the squared
error (a Gaussian one). A VAE adds ``beta x KL`` (also divided by the pixel count, so that the balance of the
two terms is the ELBO's); a sparse code adds its penalty. Measured on a split: MSE, PSNR and SSIM of the
reconstruction in pixel units, and for a VAE the ELBO (a Monte-Carlo estimate, :data:`ELBO_SAMPLES` draws of
the code per image) and its terms in nats per image.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.loader import send
from ..errors import CnnlabError
from ..train import autocast
from .models import AEOutput

NOISES = ("gaussian", "salt-pepper", "mask", "shift")
ELBO_SAMPLES = 10  # draws of a VAE's code per test image for its ELBO: the estimate's spread over a split is small


@dataclass(frozen=True)
class Noise:
    """A corruption of a batch of images in [0, 1]: ``gaussian`` (added, std = level), ``salt-pepper``
    (a share ``level`` of pixels set to 0 or 1), ``mask`` (a share ``level`` of pixels set to 0) or ``shift``
    (each image moved by up to ``level`` of its side and rotated by up to ``level x 45`` degrees)."""

    kind: str
    level: float

    @classmethod
    def parse(cls, text: str) -> Noise:
        """``"gaussian:0.3"`` -> Noise("gaussian", 0.3)."""
        kind, _, level = text.partition(":")
        if kind not in NOISES:
            raise CnnlabError(f"noise '{kind}' is not one of {', '.join(NOISES)} (example: gaussian:0.3)")
        if not level:
            raise CnnlabError(f"noise '{kind}' needs a level (example: {kind}:0.3)")
        try:
            value = float(level)
        except ValueError:
            raise CnnlabError(f"noise '{text}' (--noise): the level '{level}' is not a number (example: "
                              f"gaussian:0.3)") from None
        if not 0 < value <= (10 if kind == "gaussian" else 1):
            top = 10 if kind == "gaussian" else 1
            raise CnnlabError(f"noise '{text}' (--noise): the level must be in (0, {top}], got {value:g}")
        return cls(kind, value)

    def __str__(self) -> str:
        return f"{self.kind}:{self.level:g}"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        def rand(*shape):  # drawn on the CPU (reproducible anywhere), sent without a wait where that is safe
            return send(torch.rand(*shape, generator=generator), x.device)

        if self.kind == "gaussian":
            noise = send(torch.randn(x.shape, generator=generator), x.device)
            return (x + self.level * noise).clamp(0, 1)
        if self.kind == "salt-pepper":
            hit = rand(x.shape[0], 1, *x.shape[2:]) < self.level
            salt = (rand(x.shape[0], 1, *x.shape[2:]) < 0.5).to(x.dtype)
            return torch.where(hit, salt, x)
        if self.kind == "mask":
            return x * (rand(x.shape[0], 1, *x.shape[2:]) >= self.level).to(x.dtype)
        # shift: a random affine warp per image (translation and rotation), zeros outside
        n = x.shape[0]
        angle = (rand(n) * 2 - 1) * self.level * math.pi / 4
        shift = (rand(n, 2) * 2 - 1) * self.level * 2  # grid units: the image spans [-1, 1]
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@dataclass
class ReconstructionTask:
    """Train an autoencoder to reconstruct its (clean) input.

    Args:
        likelihood: ``bernoulli`` (binary cross-entropy on the logits) or ``gaussian`` (squared error).
        beta: weight of a VAE's KL term (1: the ELBO).
        noise: corruption of the training input (denoising); the target stays clean.
        l1: weight of an L1 penalty on the code (sparsity).
        sparsity_kl: weight of KL(rho || mean activation) over the code units (needs codes in (0, 1)).
        target_rate: ``rho``, the activation rate the KL sparsity penalty aims at.
    """

    likelihood: str = "bernoulli"
    beta: float = 1.0
    noise: Noise | None = None
    l1: float = 0.0
    sparsity_kl: float = 0.0
    target_rate: float = 0.05
    kl_scale: float = 1.0  # KL warm-up: set per epoch by the recipe

    def evaluation(self) -> ReconstructionTask:
        """Validation and test weigh a VAE's KL term fully, whatever the warm-up has reached: a loss whose weight
        rose every epoch would rise with it, and stop a run early or pick its best epoch for that."""
        return dataclasses.replace(self, kl_scale=1.0)

    def inputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.noise(x) if self.noise is not None else x), x

    def recon_loss(self, logits: torch.Tensor, target: torch.Tensor, reduce: bool = True) -> torch.Tensor:
        """Per-pixel negative log-likelihood: averaged (``reduce``) or summed per image."""
        logits, target = logits.float(), target.float()
        if self.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            nll = (torch.sigmoid(logits) - target).pow(2)
        return nll.mean() if reduce else nll.flatten(1).sum(1)

    def loss(self, output: AEOutput, target: torch.Tensor) -> torch.Tensor:
        loss = self.recon_loss(output.logits, target)
        pixels = target[0].numel()
        if "kl" in output.terms:
            loss = loss + self.beta * self.kl_scale * output.terms["kl"].mean() / pixels
        if self.l1:
            loss = loss + self.l1 * output.code.float().abs().mean()
        if self.sparsity_kl:
            rate = output.code.float().mean(0).clamp(1e-6, 1 - 1e-6)
            rho = self.target_rate
            kl = (rho * torch.log(rho / rate) + (1 - rho) * torch.log((1 - rho) / (1 - rate))).sum()
            loss = loss + self.sparsity_kl * kl
        return loss

    def batch_stats(self, output: AEOutput, target: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            mse = (torch.sigmoid(output.logits.float()) - target.float()).pow(2).flatten(1).mean(1)
        return {"mse": mse.sum()}

    def nll(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Each image's negative log-likelihood in nats under the decoder's output: Bernoulli (the cross-entropy;
        a density only for binary pixels) or a Gaussian of variance 1/2, the one whose negative log-likelihood
        is the squared error, plus ``log(pi) / 2`` per pixel."""
        nll = self.recon_loss(logits, target, reduce=False)
        return nll + target[0].numel() * math.log(math.pi) / 2 if self.likelihood == "gaussian" else nll

    @torch.no_grad()
    def evaluate(self, model, loader, device, precision: str = "fp32", channels_last: bool = False,
                 ssim: bool = False, samples: int = 0) -> dict:
        """MSE, PSNR (mean over images, peak 1), the loss, active code units, the reconstruction's negative
        log-likelihood in nats per image (:meth:`nll`); SSIM with ``ssim=True``. A VAE's reconstruction is
        decoded from its posterior mean; with ``samples`` its ELBO, ``E_q[log p(x | z)] - KL(q || p)`` in nats
        per image (Kingma & Welling 2014, Eq. 3), is estimated by that many draws of ``z`` from ``q(z | x)``
        per image (seeded), and ``nll`` is the expectation's estimate. A denoising task measures the
        reconstruction of the corrupted input against the clean one, with the same corruption every time
        (seeded).

        ``active``: the share of the code that carries information. For a deterministic code, the share of
        each image's code units away from zero (|u| > 1e-3; what a sparse code's penalty or top-k acts on),
        averaged over images. For a VAE, whose posterior mean of a collapsed unit sits near but not at zero,
        the share of units whose posterior mean varies over the split, Var_x(E[u | x]) > 0.01 (the activity
        of Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", 2016)."""
        model.eval()
        g = torch.Generator().manual_seed(12345)
        sums = {"loss": 0.0, "mse": 0.0, "psnr": 0.0, "nll": 0.0, "kl": 0.0, "active": 0.0, "ssim": 0.0}
        seen = 0
        variational = getattr(model, "variational", False)
        moments = [0.0, 0.0]  # a VAE's posterior means, summed and squared-summed per unit (float64)
        for x, _ in loader:
            x_in = self.noise(x, g) if self.noise is not None else x
            if channels_last:
                x_in = x_in.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                out = model(x_in)
                loss = self.loss(out, x)
            recon = torch.sigmoid(out.logits.float()).clamp(0, 1)
            mse = (recon - x.float()).pow(2).flatten(1).mean(1)
            n = len(x)
            sums["loss"] += float(loss) * n
            sums["mse"] += float(mse.sum())
            sums["psnr"] += float(psnr_of(mse).sum())
            if variational and samples:
                std = torch.exp(0.5 * out.logvar.float())
                for _ in range(samples):
                    z = out.mu.float() + std * send(torch.randn(out.mu.shape, generator=g), out.mu.device)
                    with autocast(device, precision):
                        logits = model.decode(z.to(out.mu.dtype))
                    sums["nll"] += float(self.nll(logits, x).sum()) / samples
            else:
                sums["nll"] += float(self.nll(out.logits, x).sum())
            if "kl" in out.terms:
                sums["kl"] += float(out.terms["kl"].sum())
            if variational:  # in eval mode a VAE's code is its posterior mean
                mu = out.code.double()
                moments = [moments[0] + mu.sum(0), moments[1] + mu.pow(2).sum(0)]
            else:
                sums["active"] += float((out.code.abs() > 1e-3).float().mean(1).sum())
            if ssim:
                sums["ssim"] += ssim_sum(recon, x.float())
            seen += n
        if seen == 0:
            raise CnnlabError("cannot evaluate on an empty split")
        out = {k: v / seen for k, v in sums.items()}
        out["count"] = seen
        if not ssim:
            del out["ssim"]
        if variational:
            mean = moments[0] / seen
            out["active"] = float(((moments[1] / seen - mean.pow(2)) > 0.01).double().mean())
            if samples:
                out["elbo"] = -(out["nll"] + out["kl"])
        else:
            del out["kl"]
        return out

    def record(self, val: dict) -> dict:
        return {"val_loss": val["loss"], "val_mse": val["mse"], "val_psnr": val["psnr"]}

    def format_record(self, record: dict) -> str:
        return f"val_mse {record['val_mse']:.5f}  val_psnr {record['val_psnr']:.2f} dB"


def psnr_of(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB (peak 1) of each image's mean squared error."""
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def psnr(recon: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR in dB over images (pixels in [0, 1])."""
    return float(psnr_of((recon.float() - target.float()).pow(2).flatten(1).mean(1)).mean())


def ssim_sum(recon: torch.Tensor, target: torch.Tensor) -> float:
    """The sum over images of SSIM (scikit-image's ``structural_similarity``, data range 1, channels averaged)."""
    from skimage.metrics import structural_similarity

    a = recon.detach().cpu().numpy()
    b = target.detach().cpu().numpy()
    total = 0.0
    for i in range(len(a)):
        side = min(a.shape[-2:])
        win = min(7, side if side % 2 else side - 1)
        total += float(structural_similarity(b[i], a[i], data_range=1.0, channel_axis=0, win_size=win))
    return total


def ssim(recon: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM over images."""
    return ssim_sum(recon, target) / len(recon)
