"""The autoencoder quality figures of the README, measured in one run.

1. Convolutional autoencoder on digits (latent 16) against PCA with 16 components: test MSE.
2. Denoising at gaussian 0.3 on digits and on photos: PSNR and SSIM of the noisy input, the autoencoder and
   the best classical filter (chosen on the validation split).
3. VAE samples on digits (dense, latent 8), labelled by a LeNet-5 digits classifier: the class distribution
   and the mean confidence.
4. Encoder features against raw pixels and PCA for logistic regression with few labels per class.

    python benchmarks/ae_quality.py [--photos-epochs 12]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import cnnlab
from cnnlab.ae import AEConfig, apps
from cnnlab.ae.task import Noise
from cnnlab.classify import ClassifierConfig, class_probabilities
from cnnlab.run import Run, fit


def ae(tmp: Path, name: str, data: str, epochs: int, **kwargs):
    return fit(AEConfig(data=data, epochs=epochs, quiet=True, run_dir=str(tmp / name), **kwargs), log=lambda *a: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos-epochs", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"on {cnnlab.cpu_description()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        conv = ae(tmp, "conv", "digits", 30, kind="conv", latent_dim=16)
        from sklearn.decomposition import PCA

        data = Run.open(conv.run_dir).data()
        tr, te = data.train.images.flatten(1).numpy(), data.test.images.flatten(1).numpy()
        pca = PCA(16).fit(tr)
        pca_mse = float(((pca.inverse_transform(pca.transform(te)).clip(0, 1) - te) ** 2).mean())
        print(f"1. digits, 16 components: conv autoencoder test MSE {conv.test['mse']:.5f}, PCA {pca_mse:.5f}")

        for name, spec, epochs in (("digits", "digits", 15), ("photos", "photos", args.photos_epochs)):
            r = ae(tmp, f"dn-{name}", spec, epochs, kind="denoising", noise="gaussian:0.3")
            res, _ = apps.denoise_compare(r.model, Run.open(r.run_dir).data(), Noise("gaussian", 0.3))
            print(f"2. {name}, gaussian 0.3 ({epochs} epochs): PSNR noisy {res.noisy['psnr']:.2f}, autoencoder "
                  f"{res.autoencoder['psnr']:.2f} (+{res.autoencoder['psnr'] - res.noisy['psnr']:.2f}), "
                  f"{res.filter_name} {res.filter['psnr']:.2f} dB; SSIM {res.noisy['ssim']:.3f} / "
                  f"{res.autoencoder['ssim']:.3f} / {res.filter['ssim']:.3f}")

        vae = ae(tmp, "vae", "digits", 60, kind="vae", latent_dim=8)
        # LeNet-5 with the general recipe (40 epochs: not digits' own shorter defaults), as the README's figures had
        clf = fit(ClassifierConfig(run_dir=str(tmp / "clf"), quiet=True, epochs=40), log=lambda *a: None)
        samples = vae.model.sample(1000, torch.Generator().manual_seed(0))
        probs = class_probabilities(Run.open(clf.run_dir), samples)
        conf, pred = probs.max(1)
        counts = np.bincount(pred.numpy(), minlength=10)
        print(f"3. VAE samples (1,000), classifier test accuracy {100 * clf.test['accuracy']:.1f}%: classes "
              f"{' '.join(f'{c}:{n}' for c, n in enumerate(counts))}; spread {apps.spread(counts):.2f} of uniform; "
              f"mean confidence {100 * float(conf.mean()):.1f}%, {100 * float((conf > 0.9).float().mean()):.1f}% "
              f"above 90%")

        rows = apps.features_compare(conv.model, data, (5, 10, 25))
        print("4. logistic regression, test accuracy: " + "; ".join(
            f"{r['labels_per_class']}/class {r['features']} {100 * r['accuracy_mean']:.1f}%" for r in rows))


if __name__ == "__main__":
    main()
