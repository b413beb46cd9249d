"""``cnnlab ae``: autoencoders."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from dataclasses import fields
from pathlib import Path

from ..errors import CnnlabError
from .train_cmds import CLASSIFIER_ONLY, _add_config_options, add_dataclass_options, config_from_args, resume_config

HELP = {
    "kind": "dense | conv | recurrent | denoising | sparse | vae",
    "body": "for denoising, sparse and vae: dense | conv | recurrent (default: conv; dense for vae)",
    "latent_dim": "size of the code (the bottleneck)",
    "noise": "corrupt training inputs: gaussian:L | salt-pepper:L | mask:L | shift:L (denoising: gaussian:0.3)",
    "topk": "sparse: keep only the k largest code activations (sparse default: latent_dim / 4)",
    "sparsity_l1": "sparse: L1 penalty on the (ReLU) code", "sparsity_kl": "sparse: KL penalty on sigmoid codes",
    "sparsity_target": "sparse: the activation rate the KL penalty aims at",
    "beta": "vae: weight of the KL term", "kl_warmup": "vae: epochs over which the KL weight rises to beta",
    "likelihood": "bernoulli (cross-entropy) | gaussian (squared error)",
    "rnn_hidden": "recurrent: state size", "cell": "recurrent: gru | lstm",
}


def _add_ae_options(p: argparse.ArgumentParser) -> None:
    from ..train.config import AEConfig

    add_dataclass_options(p, AEConfig, HELP)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    ae = sub.add_parser("ae", help="autoencoders: train, encode, denoise, generate, interpolate, features, evaluate",
                        formatter_class=fmt, description="Autoencoders, trained with the same engine as classifiers,\n"
                                                         "and what they are for.",
                        epilog="examples:\n  cnnlab ae train --kind conv --data digits --latent-dim 16\n"
                               "  cnnlab ae COMMAND --help")
    ae.set_defaults(func=_no_command)
    ae_sub = ae.add_subparsers(title="commands", metavar="COMMAND", parser_class=type(ae))
    p = ae_sub.add_parser(
        "train", formatter_class=fmt, help="train an autoencoder and write its run directory",
        description="Train an autoencoder; writes config.yaml, metrics.csv, results.json (MSE, PSNR, SSIM; the ELBO\n"
                    "for a VAE), checkpoints, reconstruction grids and report.html. Takes the options of\n"
                    "'cnnlab train' (epochs, batch size, learning rate, seed, --run-dir, --resume, ...).",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab ae train --kind conv --data digits --latent-dim 16
              cnnlab ae train --kind denoising --data photos --noise gaussian:0.3
              cnnlab ae train --kind sparse --body dense --data digits --latent-dim 64 --topk 8
              cnnlab ae train --kind vae --data digits --latent-dim 8 --kl-warmup 5
              cnnlab ae train --kind recurrent --cell lstm --data digits
              cnnlab ae train --resume runs/conv_ae-digits-20261125-101500 --epochs 60"""),
    )
    p.add_argument("--config", default=None, help="a config.yaml to start from (options given here override it)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an autoencoder run")
    from ..train import TrainConfig

    _add_config_options(p, defaults=TrainConfig(data="digits", augment=False), skip=CLASSIFIER_ONLY, model_args=False)
    _add_ae_options(p)
    p.set_defaults(func=cmd_ae_train)
    _add_app_parsers(ae_sub, fmt)


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="an autoencoder run directory (or its checkpoint .safetensors)")
    p.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which weights (default: those the run ended with)")
    p.add_argument("--out", default=None, help="where to write files (default: RUN/<command>)")


def _add_app_parsers(ae_sub, fmt) -> None:
    p = ae_sub.add_parser("encode", formatter_class=fmt, help="latent codes of a dataset to .npy/.csv, and a 2-D map",
                          epilog="examples:\n  cnnlab ae encode runs/conv_ae-digits-20261125-101500\n"
                                 "  cnnlab ae encode RUN --data digits --split train")
    _run_args(p)
    p.add_argument("--data", default=None, help="dataset spec (default: the run's own)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="which split (default: test)")
    p.set_defaults(func=cmd_encode)

    p = ae_sub.add_parser("denoise", formatter_class=fmt,
                          help="noisy / denoised / clean, PSNR and SSIM, against a classical filter",
                          epilog="examples:\n  cnnlab ae denoise RUN --data digits --noise gaussian:0.3\n"
                                 "  cnnlab ae denoise RUN noisy1.png noisy2.png")
    _run_args(p)
    p.add_argument("images", nargs="*", help="image files to denoise (else --data)")
    p.add_argument("--data", default=None, help="dataset spec (default: the run's own)")
    p.add_argument("--noise", default="gaussian:0.3", help="corruption of the clean images (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the corruption (default: 0)")
    p.set_defaults(func=cmd_denoise)

    p = ae_sub.add_parser("generate", formatter_class=fmt, help="a grid of samples from a VAE's prior",
                          epilog="examples:\n  cnnlab ae generate RUN -n 64\n"
                                 "  cnnlab ae generate RUN -n 500 --classifier runs/lenet5-digits-20261125-101500")
    _run_args(p)
    p.add_argument("-n", type=int, default=64, help="how many samples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior draws (default: 0)")
    p.add_argument("--classifier", default=None, metavar="RUN",
                   help="a classifier run that labels the samples: class distribution and mean confidence")
    p.set_defaults(func=cmd_generate)

    p = ae_sub.add_parser("interpolate", formatter_class=fmt,
                          help="linear and spherical paths between two codes; attribute arithmetic",
                          epilog="examples:\n  cnnlab ae interpolate RUN 3 17 --steps 10      # test images 3 and 17\n"
                                 "  cnnlab ae interpolate RUN a.png b.png\n"
                                 "  cnnlab ae interpolate RUN 3 17 --arithmetic 1 7   # + mean(7) - mean(1)")
    _run_args(p)
    p.add_argument("a", help="an image file, or the index of an image of the test split")
    p.add_argument("b", help="an image file, or the index of an image of the test split")
    p.add_argument("--steps", type=int, default=10, help="images along each path, A and B included (default: 10)")
    p.add_argument("--data", default=None, help="dataset spec for indices and class means (default: the run's own)")
    p.add_argument("--arithmetic", nargs=2, default=None, metavar=("FROM", "TO"),
                   help="add mean code(TO) - mean code(FROM) (class names) to A's code, at strengths 0 to 1.5")
    p.set_defaults(func=cmd_interpolate)

    p = ae_sub.add_parser("features", formatter_class=fmt,
                          help="the frozen encoder as features for a classifier, against raw pixels and PCA",
                          epilog="examples:\n  cnnlab ae features RUN\n  cnnlab ae features RUN --labels 5,10,25")
    _run_args(p)
    p.add_argument("--data", default=None, help="dataset spec (default: the run's own)")
    p.add_argument("--labels", default="5,10,25,100", help="labels per class (default: %(default)s)")
    p.set_defaults(func=cmd_features)

    p = ae_sub.add_parser("evaluate", formatter_class=fmt,
                          help="reconstruction error on the training distribution and on another dataset",
                          epilog="examples:\n  cnnlab ae evaluate RUN --data textures:size=8")
    _run_args(p)
    p.add_argument("--data", default=None, help="another dataset spec to compare with")
    p.set_defaults(func=cmd_ae_evaluate)


def _no_command(args: argparse.Namespace) -> int:
    raise CnnlabError("choose a command: cnnlab ae train, encode, denoise, generate, interpolate, features or "
                      "evaluate (see 'cnnlab ae --help')")


def _load(args, command: str):
    import yaml

    from ..ae.recipe import load_ae_run

    model, meta = load_ae_run(args.run, args.checkpoint)
    run = Path(args.run)
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    out = Path(args.out) if args.out else (run if run.is_dir() else run.parent) / command
    out.mkdir(parents=True, exist_ok=True)
    return model, meta, config, out


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from .._io import atomic_write_text
    from ..ae import apps
    from ..ae.viz import code_maps

    model, meta, config, out = _load(args, "encode")
    data = apps.run_data(meta, config, args.data)
    split = data.splits()[args.split]
    codes = apps.encode(model, split.images).numpy()
    labels = split.labels.numpy() if split.labels is not None else np.full(len(codes), -1)
    np.save(out / "codes.npy", codes)
    np.save(out / "labels.npy", labels)
    header = ",".join([f"z{i}" for i in range(codes.shape[1])] + ["label", "class"])
    lines = [",".join([*(f"{v:.6g}" for v in row), str(int(y)), data.classes[y] if y >= 0 else ""])
             for row, y in zip(codes, labels, strict=True)]
    atomic_write_text(out / "codes.csv", header + "\n" + "\n".join(lines) + "\n")
    what = "the codes" if codes.shape[1] == 2 else f"PCA of the {codes.shape[1]}-D codes"
    maps = {f"autoencoder: {what}": apps.project_2d(codes),
            "PCA of the raw pixels": apps.project_2d(split.images.flatten(1).numpy())}
    classes = data.classes if split.labels is not None else ["unlabelled"]
    code_maps(maps, np.maximum(labels, 0), classes, out / "code_map.png")
    print(f"{len(codes)} codes of {codes.shape[1]} values ({data.name}, {args.split}) -> {out / 'codes.npy'}, "
          f"{out / 'codes.csv'}; map: {out / 'code_map.png'}")
    return 0


def cmd_denoise(args: argparse.Namespace) -> int:
    import json

    from ..ae import apps
    from ..ae.task import Noise
    from ..ae.viz import rows_grid
    from ..inspect import format_table

    model, meta, config, out = _load(args, "denoise")
    if args.images:
        noisy = apps.load_images(args.images, tuple(meta["autoencoder"]["input_shape"]))
        rows_grid({"input": noisy, "denoised": apps.reconstruct(model, noisy)}, out / "denoised.png")
        print(f"{len(noisy)} image(s) denoised -> {out / 'denoised.png'}")
        return 0
    noise = Noise.parse(args.noise)
    data = apps.run_data(meta, config, args.data)
    result, images = apps.denoise_compare(model, data, noise, args.seed)
    rows = [["noisy input", f"{result.noisy['psnr']:.2f}", f"{result.noisy['ssim']:.4f}"],
            ["autoencoder", f"{result.autoencoder['psnr']:.2f}", f"{result.autoencoder['ssim']:.4f}"],
            [f"{result.filter_name} (best on validation)", f"{result.filter['psnr']:.2f}",
             f"{result.filter['ssim']:.4f}"]]
    print(f"{data.name}, test split, {noise}: {len(images['clean'])} images")
    print(format_table(["images", "PSNR (dB)", "SSIM"], rows, right=[False, True, True]))
    k = 12
    rows_grid({"noisy": images["noisy"][:k], "autoencoder": images["denoised"][:k],
               "classical filter": images["filtered"][:k], "clean": images["clean"][:k]}, out / "denoise.png",
              f"{noise}: PSNR noisy {result.noisy['psnr']:.1f} dB, autoencoder {result.autoencoder['psnr']:.1f} dB, "
              f"{result.filter_name} {result.filter['psnr']:.1f} dB")
    (out / "denoise.json").write_text(json.dumps({"data": data.name, "noise": str(noise), **vars(result)}, indent=2))
    print(f"grid: {out / 'denoise.png'}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..ae.viz import samples_grid
    from ..inspect import format_table

    if args.n < 1:
        raise CnnlabError(f"-n must be at least 1, got {args.n}")
    model, meta, config, out = _load(args, "generate")
    samples = model.sample(args.n, torch.Generator().manual_seed(args.seed))
    samples_grid(samples[:256], out / "samples.png", f"{min(args.n, 256)} samples from the prior")
    print(f"{args.n} samples -> {out / 'samples.png'}")
    if args.classifier:
        from ..data.prepare import Preprocess
        from ..train import load_run_model
        from ..train.tasks import ClassificationTask

        clf, cmeta = load_run_model(args.classifier)
        if cmeta["model_kwargs"]["in_chans"] != samples.shape[1]:
            raise CnnlabError("the classifier takes images of another number of channels than the samples")
        task = ClassificationTask(len(cmeta["classes"]), cmeta.get("binary", False))
        with torch.no_grad():
            probs = task.probabilities(clf(Preprocess.from_dict(cmeta["preprocess"])(samples)))
        conf, pred = probs.max(1)
        counts = np.bincount(pred.numpy(), minlength=len(cmeta["classes"]))
        from ..ae.apps import spread

        rows = [[c, int(n), f"{100 * n / args.n:.1f}%"] for c, n in zip(cmeta["classes"], counts, strict=True)]
        print(format_table(["class", "samples", "share"], rows, right=[False, True, True]))
        print(f"mean confidence {100 * float(conf.mean()):.1f}%; {100 * float((conf > 0.9).float().mean()):.1f}% of "
              f"samples above 90%; spread over classes {spread(counts):.2f} (1 = uniform)")
    return 0


def _pick(text: str, images, shape):
    from ..ae import apps

    if text.isdigit():
        i = int(text)
        if i >= len(images):
            raise CnnlabError(f"index {i} is past the test split's {len(images)} images")
        return images[i]
    return apps.load_images([text], shape)[0]


def cmd_interpolate(args: argparse.Namespace) -> int:
    from ..ae import apps
    from ..ae.viz import rows_grid

    if args.steps < 2:
        raise CnnlabError(f"--steps must be at least 2, got {args.steps}")
    model, meta, config, out = _load(args, "interpolate")
    shape = tuple(meta["autoencoder"]["input_shape"])
    data = apps.run_data(meta, config, args.data)
    a, b = _pick(args.a, data.test.images, shape), _pick(args.b, data.test.images, shape)
    rows = apps.interpolate(model, a, b, args.steps)
    if args.arithmetic:
        src, dst = args.arithmetic
        for name in (src, dst):
            if name not in data.classes:
                raise CnnlabError(f"class '{name}' is not one of {data.classes}")
        rows[f"A + s x (mean {dst} - mean {src}), s = 0, 0.5, 1, 1.5"] = apps.attribute_shift(
            model, data.train.images, data.train.labels, data.classes.index(src), data.classes.index(dst), a)
    rows_grid(rows, out / "interpolation.png", "from A (left) to B (right)")
    print(f"linear and spherical interpolation in {args.steps} steps -> {out / 'interpolation.png'}")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    import json

    from ..ae import apps
    from ..inspect import format_table

    try:
        per_class = tuple(int(v) for v in args.labels.split(","))
    except ValueError:
        raise CnnlabError(f"--labels takes counts separated by commas, got '{args.labels}'") from None
    if any(n < 1 for n in per_class):
        raise CnnlabError("--labels counts must be at least 1")
    model, meta, config, out = _load(args, "features")
    data = apps.run_data(meta, config, args.data)
    rows = apps.features_compare(model, data, per_class)
    print(f"{data.name}: logistic regression on each representation, test split, mean ± std over 3 seeds")
    print(format_table(["labels/class", "features", "test accuracy"],
                       [[r["labels_per_class"], r["features"], f"{100 * r['accuracy_mean']:.1f} ± "
                         f"{100 * r['accuracy_std']:.1f}%"] for r in rows], right=[True, False, True]))
    (out / "features.json").write_text(json.dumps({"data": data.name, "rows": rows}, indent=2))
    return 0


def cmd_ae_evaluate(args: argparse.Namespace) -> int:
    import json

    from ..ae import apps
    from ..inspect import format_table

    model, meta, config, out = _load(args, "evaluate")
    own = apps.run_data(meta, config)
    results = {own.name + " (its training distribution)": apps.reconstruction_error(model, own.test.images)}
    if args.data:
        other = apps.run_data(meta, config, args.data)
        results[other.name] = apps.reconstruction_error(model, other.test.images)
    print(format_table(["test split of", "MSE", "PSNR (dB)", "SSIM", "images"],
                       [[k, f"{v['mse']:.5f}", f"{v['psnr']:.2f}", f"{v['ssim']:.4f}", v["count"]]
                        for k, v in results.items()], right=[False, True, True, True, True]))
    (out / "evaluate.json").write_text(json.dumps(results, indent=2))
    return 0


def cmd_ae_train(args: argparse.Namespace) -> int:
    from ..inspect import format_table
    from ..train import TrainConfig, fit
    from ..train.config import AEConfig

    given = {f.name: getattr(args, f.name) for f in fields(AEConfig) if getattr(args, f.name) is not None}
    if args.resume:
        config = resume_config(args, "autoencoder", given, what="an autoencoder")
    else:
        base = TrainConfig.load(args.config).replace(run_dir=None) if args.config else TrainConfig()
        config = config_from_args(args, base)
        a = dataclasses.replace(base.autoencoder or AEConfig(), **given)
        # autoencoders: no label smoothing to speak of, pixels are the targets; name runs by the kind
        config = config.replace(autoencoder=a, model=f"{a.kind}_ae")
        if args.augment is None and not args.config:
            config = config.replace(augment=False)  # the target is the input: shifting it only makes it harder
    result = fit(config, resume=args.resume)
    t = result.test
    rows = [["test mse", f"{t['mse']:.5f}"], ["test psnr", f"{t['psnr']:.2f} dB"], ["test ssim", f"{t['ssim']:.4f}"]]
    if "elbo" in t:
        rows += [["test elbo", f"{t['elbo']:.2f} nats/image"], ["test kl", f"{t['kl']:.2f} nats/image"]]
    rows += [["active code units", f"{100 * t['active']:.1f}%"], ["test images", t["count"]],
             ["epochs", len(result.history)], ["run directory", str(result.run_dir)]]
    print(format_table(["result", "value"], rows))
    return 0
