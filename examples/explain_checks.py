"""Are the class activation maps right? The pointing game and the deletion check on `shapes`, whose every image
comes with the true object mask, for LeNet-5 and a small-input ResNet-18; and first-layer activation
maximisation of a digits model. Reproduces the README's explainability figures:

    python examples/explain_checks.py            # about 3 minutes on 2 CPU cores
    python examples/explain_checks.py --quick    # fewer epochs and images (what the tests run)

Prints the tables and writes explain_pointing.png and explain_maximize.png: into docs/ (the README's figures)
for the full run, into the runs' folder (``--out``) with ``--quick``, or where ``--figures`` says.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab import ClassifierConfig, Run, cpu_description, fit
from cnnlab.data.prepare import Preprocess
from cnnlab.explain import METHODS, class_activation_maps, maximize, unit_activations
from cnnlab.explain.checks import centre_hits, deletion_drop, pointing_hits
from cnnlab.viz.images import overlay, save_png, tile

TOLERANCE = 15 / 224  # the pointing game's 15 pixels at 224x224 (Zhang et al. 2016), as a share of the side
# kwargs, epochs, images, seeds
MODELS = {"lenet5": ({}, 30, 4000, (0, 1)), "resnet18": ({"small_input": True}, 6, 2000, (0,))}
DOCS = Path(__file__).resolve().parent.parent / "docs"


def masks_as_input(masks: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """Object masks brought to the model's input geometry, as the images were (resized, then padded)."""
    inner = [pre.size[0] - 2 * pre.pad, pre.size[1] - 2 * pre.pad]
    m = F.interpolate(masks[:, None].float(), size=inner, mode="nearest")
    return F.pad(m, (pre.pad,) * 4)[:, 0].long()


def check_cams(run: Run, limit: int = 400) -> dict:
    """Pointing-game hit rates per method and the centre baseline on correctly classified test images, and the
    deletion check of Grad-CAM, for one trained shapes run."""
    data, model = run.data(), run.model
    pre = Preprocess.from_dict(run.meta["preprocess"])
    x, y = data.test.images[:limit], data.test.labels[:limit]
    masks = masks_as_input(data.test.masks[:limit], pre)
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    x, y, masks = x[correct], y[correct], masks[correct]
    tol = round(TOLERANCE * x.shape[-1])
    centre = centre_hits(masks, tol)
    out = {"images": len(x), "centre": float(centre.float().mean()), "tolerance": tol}
    for method in METHODS:
        cam = class_activation_maps(model, x, y, method)
        hits = pointing_hits(cam.maps, masks, tol)
        out[method] = float(hits.float().mean())
        out[method + " off-centre"] = float(hits[~centre].float().mean()) if (~centre).any() else float("nan")
        if method == "gradcam":
            top, rand = deletion_drop(model, x, cam.maps, y, 0.2)
            out["drop_top"], out["drop_random"] = float(top.mean()), float(rand.mean())
            out["example"] = (x[:8], cam.maps[:8], pre)
    out["layer"] = cam.layer
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and images")
    parser.add_argument("--out", default=None, help="a folder for the runs (default: a temporary one)")
    parser.add_argument("--figures", default=None, help="where the two figures go (default: docs/, the README's; "
                                                         "with --quick, the runs' folder)")
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        # a quick run's figures never replace the README's
        figures = Path(args.figures) if args.figures else root if args.quick else DOCS
        figures.mkdir(parents=True, exist_ok=True)
        rows, examples = [], []
        for model, (kwargs, epochs, count, seeds) in MODELS.items():
            if args.quick and model != "lenet5":
                continue
            for seed in seeds[:1] if args.quick else seeds:
                t = time.perf_counter()
                path = root / f"{model}-{seed}"
                cfg = ClassifierConfig(model=model, model_kwargs=kwargs, data=f"shapes:count={count}", epochs=epochs,
                                       seed=seed, run_dir=str(path), quiet=True)
                fit(cfg, log=lambda *a: None)
                run = Run.open(path)
                r = check_cams(run)
                r["model"], r["seed"], r["accuracy"] = model, seed, run.results["test"]["accuracy"]
                rows.append(r)
                examples.append(r.pop("example"))
                print(f"{model} seed {seed}: trained and checked in {time.perf_counter() - t:.0f} s")
        print(f"\npointing game on shapes (correctly classified test images; hit = the map's maximum within "
              f"{rows[0]['tolerance']} pixels of the object)")
        print("| model | seed | test accuracy | images | layer | " + " | ".join(METHODS)
              + " | centre baseline | Grad-CAM where the centre misses |")
        print("|---|---|---|---|---|" + "---|" * (len(METHODS) + 2))
        for r in rows:
            print(f"| {r['model']} | {r['seed']} | {100 * r['accuracy']:.1f}% | {r['images']} | {r['layer']} | "
                  + " | ".join(f"{100 * r[m]:.0f}%" for m in METHODS) + f" | {100 * r['centre']:.0f}% | "
                  f"{100 * r['gradcam off-centre']:.0f}% |")
        print("\ndeletion check (Grad-CAM, 20% of the pixels set to the data mean): mean fall of the class logit")
        print("| model | seed | top-20% CAM pixels | 20% random pixels |")
        print("|---|---|---|---|")
        for r in rows:
            print(f"| {r['model']} | {r['seed']} | {r['drop_top']:.2f} | {r['drop_random']:.2f} |")
        pictures = []
        for x, maps, pre in examples:
            img = pre.unnormalise(x)
            pictures += [img, overlay(img, maps)]
        save_png(tile(torch.cat(pictures), 8, pad=2, scale=3), figures / "explain_pointing.png")

        t = time.perf_counter()
        cfg = ClassifierConfig(model="lenet5", data="digits", epochs=3 if args.quick else 10,
                               run_dir=str(root / "digits"), quiet=True)
        fit(cfg, log=lambda *a: None)
        run = Run.open(root / "digits")
        pre = Preprocess.from_dict(run.meta["preprocess"])
        steps = 64 if args.quick else 256
        train = run.data().train.images
        print(f"\nactivation maximisation, LeNet-5 on digits: the centre unit of channels 0-5 of each convolution "
              f"(before its tanh), {steps} steps")
        print("| layer | synthesised / best training image, per channel |")
        print("|---|---|")
        for layer in ("features.c1.conv", "features.c3.conv", "features.c5.conv"):
            result = maximize(run.model, (1, 28, 28), layer=layer, channels=list(range(6)), prepare=pre, steps=steps)
            best = unit_activations(run.model, train, layer, list(range(6))).amax(0)
            print(f"| {layer} | " + ", ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(result.objective, best, strict=True))
                  + " |")
            if layer == "features.c1.conv":
                first = result.images
        print(f"({time.perf_counter() - t:.0f} s with training)")
        kernels = run.model.features.c1.conv.weight.detach()
        kernels = 0.5 + 0.5 * kernels / kernels.abs().max()
        kernels = F.interpolate(kernels, size=(28, 28), mode="nearest")
        save_png(tile(torch.cat([kernels, first]), 6, pad=2, scale=4), figures / "explain_maximize.png")
        print(f"figures: {figures / 'explain_pointing.png'}, {figures / 'explain_maximize.png'}")


if __name__ == "__main__":
    main()
