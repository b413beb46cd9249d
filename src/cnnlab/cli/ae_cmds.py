"""``cnnlab ae``: autoencoders."""

from __future__ import annotations

import argparse
import os
import textwrap
import warnings

from ..errors import CnnlabError
from ..inspect import format_table
from .options import add_options, add_run_options, given, options_from, train_command
from .train_cmds import add_run_argument, no_command


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..ae import AEConfig

    fmt = argparse.RawDescriptionHelpFormatter
    ae = sub.add_parser("ae", help="autoencoders: train, encode, denoise, generate, interpolate, features, evaluate",
                        formatter_class=fmt, description="Autoencoders, trained with the same engine as classifiers,\n"
                                                         "and what they are for.",
                        epilog="examples:\n  cnnlab ae train --kind conv --data digits --latent-dim 16\n"
                               "  cnnlab ae COMMAND --help")
    ae.set_defaults(func=no_command("ae", "cnnlab ae train, encode, denoise, generate, interpolate, features or "
                                          "evaluate"))
    ae_sub = ae.add_subparsers(title="commands", metavar="COMMAND", parser_class=type(ae))
    p = ae_sub.add_parser(
        "train", formatter_class=fmt, help="train an autoencoder and write its run directory",
        description="Train an autoencoder; writes config.yaml, metrics.csv, results.json (MSE, PSNR, SSIM; the ELBO\n"
                    "for a VAE), checkpoints, reconstruction grids and report.html. Takes the options of\n"
                    "'cnnlab train' that concern data and training (epochs, batch size, learning rate, seed,\n"
                    "--run-dir, --resume, ...).",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab ae train --kind conv --data digits --latent-dim 16
              cnnlab ae train --kind denoising --data photos --noise gaussian:0.3
              cnnlab ae train --kind sparse --body dense --data digits --latent-dim 64 --topk 8
              cnnlab ae train --kind vae --data digits --latent-dim 8 --kl-warmup 5
              cnnlab ae train --kind recurrent --cell lstm --data digits
              cnnlab ae train --resume runs/conv_ae-digits-20261125-101500 --epochs 60"""),
    )
    add_run_options(p, AEConfig)
    p.set_defaults(func=train_command(AEConfig))
    _add_app_parsers(ae_sub, fmt)


def _run_args(p: argparse.ArgumentParser, data: str | None = "dataset spec (default: the run's own)") -> None:
    from .train_cmds import RunOptions

    add_run_argument(p, "an autoencoder")
    if data:
        p.add_argument("--data", default=None, metavar="SPEC", help=data)
    add_options(p, RunOptions, skip=("format",))
    p.add_argument("--out", default=None, metavar="DIR", help="where to write files (default: RUN/<command>)")


def _tool(ae_sub, fmt, name: str, help: str, examples: list[str]) -> argparse.ArgumentParser:
    """The parser of one of the tools that use a trained autoencoder."""
    return ae_sub.add_parser(name, formatter_class=fmt, help=help, description=help[0].upper() + help[1:] + ".",
                             epilog="examples:\n" + "\n".join(f"  {e}" for e in examples))


def _add_app_parsers(ae_sub, fmt) -> None:
    from ..ae.apps import DenoiseOptions, EncodeOptions, FeaturesOptions, GenerateOptions, InterpolateOptions

    p = _tool(ae_sub, fmt, "encode", "latent codes of a dataset to .npy/.csv, and a 2-D map",
              ["cnnlab ae encode runs/conv_ae-digits-20261125-101500",
               "cnnlab ae encode RUN --data digits --split train"])
    _run_args(p)
    add_options(p, EncodeOptions)
    p.set_defaults(func=cmd_encode)

    p = _tool(ae_sub, fmt, "denoise", "noisy / denoised / clean, PSNR and SSIM, against a classical filter",
              ["cnnlab ae denoise RUN --data digits --noise gaussian:0.3",
               "cnnlab ae denoise RUN noisy1.png noisy2.png"])
    _run_args(p)
    p.add_argument("images", nargs="*", help="image files to denoise (else --data)")
    add_options(p, DenoiseOptions)
    p.set_defaults(func=cmd_denoise)

    p = _tool(ae_sub, fmt, "generate", "a grid of samples from a VAE's prior",
              ["cnnlab ae generate RUN -n 64",
               "cnnlab ae generate RUN -n 500 --classifier runs/lenet5-digits-20261125-101500"])
    _run_args(p, data=None)
    add_options(p, GenerateOptions)
    p.add_argument("--classifier", default=None, metavar="RUN",
                   help="a classifier run that labels the samples: class distribution and mean confidence")
    p.set_defaults(func=cmd_generate)

    p = _tool(ae_sub, fmt, "interpolate", "linear and spherical paths between two codes; attribute arithmetic",
              ["cnnlab ae interpolate RUN 3 17 --steps 10      # test images 3 and 17",
               "cnnlab ae interpolate RUN a.png b.png",
               "cnnlab ae interpolate RUN 3 17 --arithmetic 1 7   # + mean(7) - mean(1)"])
    _run_args(p, data="dataset spec for indices and class means (default: the run's own)")
    p.add_argument("a", help="an image file, or the index of an image of the test split")
    p.add_argument("b", help="an image file, or the index of an image of the test split")
    add_options(p, InterpolateOptions)
    p.add_argument("--arithmetic", nargs=2, default=None, metavar=("FROM", "TO"),
                   help="add mean code(TO) - mean code(FROM) (class names) to A's code, at strengths 0 to 1.5")
    p.set_defaults(func=cmd_interpolate)

    p = _tool(ae_sub, fmt, "features", "the frozen encoder as features for a classifier, against raw pixels and PCA",
              ["cnnlab ae features RUN",
               "cnnlab ae features RUN --labels 5,10,25"])
    _run_args(p)
    add_options(p, FeaturesOptions)
    p.set_defaults(func=cmd_features)

    p = _tool(ae_sub, fmt, "evaluate", "reconstruction error on the training distribution and on another dataset",
              ["cnnlab ae evaluate RUN --data textures:size=8"])
    _run_args(p, data="another dataset spec to compare with")
    p.set_defaults(func=cmd_ae_evaluate)


def _open(args: argparse.Namespace, command: str):
    """The autoencoder run the command reads, and the folder it writes into."""
    from ..train import Run

    run = Run.open(args.run, args.checkpoint, holds="autoencoder")
    return run, run.output_dir(command, args.out)


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from .._io import atomic_write, atomic_write_text
    from ..ae import apps
    from ..ae.apps import EncodeOptions
    from ..ae.viz import code_maps
    from ..train.rundir import data_slug

    run, out = _open(args, "encode")
    split_name = options_from(args, EncodeOptions).split
    data = run.data(args.data)
    split = data.splits()[split_name]
    if len(split.images) == 0:
        raise CnnlabError(f"the {split_name} split of '{data.name}' has no images; choose another with --split")
    # everything that can fail before any file is written: a run never leaves half its outputs
    codes = apps.encode(run.model, split.images).numpy()
    labels = split.labels.numpy()
    header = ",".join([f"z{i}" for i in range(codes.shape[1])] + ["label", "class"])
    lines = [",".join([*(f"{v:.6g}" for v in row), str(int(y)), data.classes[y] if y >= 0 else ""])
             for row, y in zip(codes, labels, strict=True)]
    maps = None
    if len(codes) < 2:
        warnings.warn(f"the {split_name} split of '{data.name}' has 1 image: no code map (a map needs at least 2)",
                      stacklevel=2)
    else:
        what, axes = apps.projection(codes.shape[1])
        pixels = split.images.flatten(1).numpy()
        maps = {f"autoencoder: {what}": (apps.project_2d(codes), axes),
                "PCA of the raw pixels": (apps.project_2d(pixels), apps.projection(pixels.shape[1], "pixels")[1])}
    # the test split of the run's own data keeps the plain names; other data and another split are named in
    # them (codes-mnist-train.npy), so that encoding one does not overwrite another's
    other = args.data is not None and args.data != run.meta.get("data")
    tag = (f"-{data_slug(args.data)}" if other else "") + ("" if split_name == "test" else f"-{split_name}")
    paths = {"codes": out / f"codes{tag}.npy", "labels": out / f"labels{tag}.npy", "table": out / f"codes{tag}.csv",
             "map": out / f"code_map{tag}.png"}
    for name, array in (("codes", codes), ("labels", labels)):
        atomic_write(paths[name], lambda tmp, a=array: _save_npy(tmp, a))
    atomic_write_text(paths["table"], header + "\n" + "\n".join(lines) + "\n")
    if maps is not None:
        labelled = bool((labels >= 0).all())
        code_maps(maps, np.maximum(labels, 0), data.classes if labelled else ["unlabelled"], paths["map"])
    print(f"{_count(len(codes), 'code')} of {_count(codes.shape[1], 'value')} ({data.name}, {split_name}) -> "
          f"{paths['codes']}, {paths['table']}" + (f"; map: {paths['map']}" if maps is not None else ""))
    return 0


def _count(n: int, noun: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _save_npy(path: str, array) -> None:
    import numpy as np

    with open(path, "wb") as f:  # a file object: np.save would add .npy to the temporary name
        np.save(f, array)


def cmd_denoise(args: argparse.Namespace) -> int:
    from .._io import atomic_write_json
    from ..ae import apps
    from ..ae.apps import DenoiseOptions
    from ..ae.task import Noise
    from ..ae.viz import rows_grid

    run, out = _open(args, "denoise")
    options = options_from(args, DenoiseOptions)
    trained_on = _trained_noise(run)  # a run trained on corrupted inputs is checked on its own corruption
    noise = Noise.parse(trained_on if trained_on and "noise" not in given(args, DenoiseOptions) else options.noise)
    if args.images:
        if args.data or "noise" in given(args, DenoiseOptions):
            warnings.warn("image files are denoised as they are: --data and --noise apply only without them",
                          stacklevel=2)
        noisy = apps.load_images(args.images, tuple(run.meta["autoencoder"]["input_shape"]))
        rows_grid({"input": noisy, "denoised": apps.reconstruct(run.model, noisy)}, out / "denoised.png")
        print(f"{_count(len(noisy), 'image')} denoised -> {out / 'denoised.png'}")
        return 0
    data = run.data(args.data)
    result, images = apps.denoise_compare(run.model, data, noise, options.seed)
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
    atomic_write_json(out / "denoise.json", {"data": data.name, "noise": str(noise), **vars(result)})
    print(f"grid: {out / 'denoise.png'}")
    return 0


def _trained_noise(run) -> str | None:
    """The ``--noise`` a run trained with (None: clean inputs): its config.yaml's, else, for a checkpoint file
    outside its run directory, the checkpoint's metadata."""
    if run.config is not None:
        return getattr(run.config, "noise", None)
    return (run.meta.get("training") or run.meta.get("task") or {}).get("noise")


def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..ae import apps
    from ..ae.apps import GenerateOptions
    from ..ae.viz import samples_grid

    run, out = _open(args, "generate")
    options = options_from(args, GenerateOptions)
    if not run.model.variational:
        kind = getattr(run.config, "kind", None) or run.model.kind  # the run's kind (sparse, ...), else its body
        raise CnnlabError(f"only a variational autoencoder samples from a prior; this one is {kind} (train one with "
                          f"cnnlab ae train --kind vae)")
    clf = counts = None
    if args.classifier:
        from ..classify import class_probabilities
        from ..train import Run

        clf = Run.open(args.classifier)
        if clf.kind.holds != "classifier":
            raise CnnlabError(f"--classifier takes a classifier's run (cnnlab train); '{args.classifier}' holds "
                              f"{clf.kind.article}")
        if clf.meta["model_kwargs"]["in_chans"] != run.meta["autoencoder"]["input_shape"][0]:
            raise CnnlabError(f"the classifier takes {clf.meta['model_kwargs']['in_chans']}-channel images but the "
                              f"samples have {run.meta['autoencoder']['input_shape'][0]}")
        counts, confidences = np.zeros(len(clf.meta["classes"]), dtype=np.int64), []
    shown = []
    for batch in apps.sample_batches(run.model, options.n, options.seed):
        if len(shown) < 256:
            shown.extend(batch[:256 - len(shown)])
        if clf is not None:
            probs = class_probabilities(clf, batch)
            conf, pred = probs.max(1)
            counts += np.bincount(pred.numpy(), minlength=len(counts))
            confidences.append(conf)
    samples_grid(torch.stack(shown), out / "samples.png", f"{len(shown)} samples from the prior")
    print(f"{_count(options.n, 'sample')} -> {out / 'samples.png'}"
          + (f" (the grid shows the first {len(shown)})" if options.n > len(shown) else ""))
    if clf is not None:
        conf = torch.cat(confidences)
        rows = [[c, int(k), f"{100 * k / options.n:.1f}%"] for c, k in zip(clf.meta["classes"], counts, strict=True)]
        print(format_table(["class", "samples", "share"], rows, right=[False, True, True]))
        print(f"mean confidence {100 * float(conf.mean()):.1f}%; {100 * float((conf > 0.9).float().mean()):.1f}% of "
              f"samples above 90%; spread over classes {apps.spread(counts):.2f} (1 = uniform)")
    return 0


def _pick(text: str, images, shape):
    from ..ae import apps

    if text.isascii() and text.lstrip("-").isdigit():
        i = int(text)
        if not 0 <= i < len(images):
            raise CnnlabError(f"index {i} is outside the test split's {len(images)} images (0 to {len(images) - 1})")
        return images[i]
    if not os.path.exists(text):
        raise CnnlabError(f"image '{text}' does not exist (A and B are image files or indices of the test split's "
                          f"{len(images)} images, 0 to {len(images) - 1})")
    return apps.load_images([text], shape)[0]


def cmd_interpolate(args: argparse.Namespace) -> int:
    from ..ae import apps
    from ..ae.apps import InterpolateOptions
    from ..ae.viz import rows_grid

    run, out = _open(args, "interpolate")
    steps = options_from(args, InterpolateOptions).steps
    shape = tuple(run.meta["autoencoder"]["input_shape"])
    data = run.data(args.data)
    a, b = _pick(args.a, data.test.images, shape), _pick(args.b, data.test.images, shape)
    rows = apps.interpolate(run.model, a, b, steps)
    if args.arithmetic:
        src, dst = args.arithmetic
        if not data.classes:
            raise CnnlabError(f"'{data.name}' has no classes (it is unlabelled); --arithmetic needs labelled data")
        for name in (src, dst):
            if name not in data.classes:
                raise CnnlabError(f"class '{name}' is not one of {', '.join(data.classes)}")
        if src == dst:
            raise CnnlabError(f"--arithmetic {src} {dst} names one class twice: its direction, mean({dst}) - "
                              f"mean({src}), is zero; give two classes, e.g. --arithmetic {src} "
                              f"{next(c for c in data.classes if c != src)}")
        rows[f"A + s x (mean {dst} - mean {src}), s = 0, 0.5, 1, 1.5"] = apps.attribute_shift(
            run.model, data.train.images, data.train.labels, data.classes.index(src), data.classes.index(dst), a)
    if run.model.latent_dim == 1:  # slerp takes the linear path between codes of one direction or opposite ones
        warnings.warn("a 1-value code has no sphere to follow: the spherical row shows the linear path", stacklevel=2)
    rows_grid(rows, out / "interpolation.png", "from A (left) to B (right)")
    shift = f", and A + mean({args.arithmetic[1]}) - mean({args.arithmetic[0]})" if args.arithmetic else ""
    print(f"linear and spherical interpolation in {steps} steps{shift} -> {out / 'interpolation.png'}")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from .._io import atomic_write_json
    from ..ae import apps
    from ..ae.apps import FeaturesOptions

    run, out = _open(args, "features")
    per_class = tuple(options_from(args, FeaturesOptions).labels)
    data = run.data(args.data)
    rows = apps.features_compare(run.model, data, per_class)
    print(f"{data.name}: logistic regression on each representation, test split, mean ± std over 3 seeds")
    print(format_table(["labels/class", "features", "test accuracy"],
                       [[r["labels_per_class"], r["features"], f"{100 * r['accuracy_mean']:.1f} ± "
                         f"{100 * r['accuracy_std']:.1f}%"] for r in rows], right=[True, False, True]))
    atomic_write_json(out / "features.json", {"data": data.name, "rows": rows})
    return 0


def cmd_ae_evaluate(args: argparse.Namespace) -> int:
    from .._io import atomic_write_json

    run, out = _open(args, "evaluate")
    results = {f"{run.meta['data']} (its training distribution)": run.evaluate("test")}
    if args.data:
        results[args.data] = run.evaluate("test", data=args.data)
    print(format_table(["test split of", "MSE", "PSNR (dB)", "SSIM", "images"],
                       [[k, f"{v['mse']:.5f}", f"{v['psnr']:.2f}", f"{v['ssim']:.4f}", v["count"]]
                        for k, v in results.items()], right=[False, True, True, True, True]))
    atomic_write_json(out / "evaluate.json", results)
    return 0
