"""``cnnlab train``, ``cnnlab evaluate``, ``cnnlab predict`` and ``cnnlab datasets``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import textwrap
import typing
from dataclasses import fields
from pathlib import Path

from ..errors import CnnlabError
from ..inspect import format_table

# Help for each TrainConfig field; the options are generated from the dataclass so that the command line,
# the config file and the Python API can never disagree on names or defaults.
HELP = {
    "model": "architecture, from 'cnnlab models'", "data": "dataset spec, from 'cnnlab datasets' (e.g. digits, "
    "shapes:size=64, folder:PATH)", "init": "weight-init scheme, e.g. kaiming_normal or normal:std=0.02",
    "image_size": "resize images to this side (default: what the model needs)",
    "val_fraction": "share of the data held out for validation", "test_fraction": "share held out for testing",
    "epochs": "epochs to train (with --resume: the new total)", "batch_size": "images per optimiser step",
    "lr": "peak learning rate", "optimizer": "sgd | adam | adamw", "momentum": "SGD momentum",
    "nesterov": "Nesterov momentum (SGD)", "weight_decay": "the optimiser's weight decay (decoupled for adamw)",
    "l1": "L1 penalty on conv/linear weights", "l2": "L2 penalty on conv/linear weights",
    "scheduler": "none | step | cosine | onecycle", "warmup_epochs": "linear warm-up epochs",
    "step_size": "step schedule: epochs between decays", "gamma": "step schedule: decay factor",
    "grad_clip": "clip the gradient norm to this", "loss": "auto | ce | bce (auto: bce for two classes)",
    "label_smoothing": "label smoothing of the targets", "dropout": "override the model's dropout rate",
    "aux_weight": "weight of GoogLeNet's auxiliary losses", "augment": "random crop and flip while training",
    "early_stopping": "stop after this many epochs without improvement (0: off); keeps the best weights",
    "monitor": "val_loss | val_acc (early stopping and the best checkpoint)", "seed": "random seed",
    "device": "auto | cpu | cuda | cuda:N | mps", "precision": "fp32 | bf16 | fp16 (autocast)",
    "channels_last": "channels-last memory format", "compile": "torch.compile the model",
    "deterministic": "deterministic algorithms (exact resume)", "threads": "CPU threads",
    "quiet": "no progress bar or per-epoch lines", "tensorboard": "log to RUN_DIR/tensorboard",
    "run_dir": "where to write the run (default runs/<model>-<data>-<time>)",
}


# --model-arg, and the sections `cnnlab transfer`, `ae` and `segment` set with options of their own
_NOT_OPTIONS = ("model_kwargs", "transfer", "autoencoder", "segment")


def add_dataclass_options(p: argparse.ArgumentParser, cls, help_texts: dict[str, str], skip=(),
                          defaults=None) -> None:
    """One option per field of the config dataclass ``cls`` (``--flag-name``, default None: "not given"), so
    that the command line, the config file and the Python API can never disagree on names or defaults.
    ``defaults`` is the instance whose values the help shows (a command's own defaults)."""
    defaults = defaults if defaults is not None else cls()
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = help_texts[f.name] + (f" (default: {default})" if default not in (None, False) else "")
        hint = hints[f.name]
        if hint is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            base = next((t for t in typing.get_args(hint) if t is not type(None)), hint) if typing.get_args(hint) \
                else hint
            metavar = {int: "N", float: "X"}.get(base, "NAME")
            p.add_argument(flag, type=base if base in (int, float) else str, default=None, help=help_text,
                           metavar=metavar)


# what only a classifier uses: left out of the commands that train other models
CLASSIFIER_ONLY = ("model", "init", "loss", "label_smoothing", "aux_weight", "monitor", "dropout")


def _add_config_options(p: argparse.ArgumentParser, defaults=None, skip: tuple[str, ...] = (),
                        model_args: bool = True) -> None:
    from ..train import TrainConfig

    add_dataclass_options(p, TrainConfig, HELP, skip=_NOT_OPTIONS + tuple(skip), defaults=defaults)
    if not model_args:
        return
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="an argument of the model builder, e.g. small_input=true or width_mult=0.5 (repeatable)")
    p.add_argument("--small-input", action="store_true", help="shortcut for --model-arg small_input=true")


def _value(text: str):
    import yaml

    return yaml.safe_load(text)


def config_from_args(args: argparse.Namespace, base=None):
    from ..train import TrainConfig

    if base is not None:
        config = base
    elif args.config:  # a saved run's config starts a new run: it does not reuse that run's directory
        config = TrainConfig.load(args.config).replace(run_dir=None)
    else:
        config = TrainConfig()
    changes = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
               if f.name not in _NOT_OPTIONS and getattr(args, f.name, None) is not None}
    kwargs = dict(config.model_kwargs)
    for item in getattr(args, "model_arg", []):
        key, eq, value = item.partition("=")
        if not eq:
            raise CnnlabError(f"--model-arg '{item}' is not KEY=VALUE (example: --model-arg width_mult=0.5)")
        kwargs[key.strip()] = _value(value)
    if getattr(args, "small_input", False):
        kwargs["small_input"] = True
    return config.replace(**changes, model_kwargs=kwargs)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "train", help="train a model on a dataset and write its run directory", formatter_class=fmt,
        description="Train a classifier; writes config.yaml, metrics.csv, results.json, checkpoints, plots and\n"
                    "report.html into the run directory. With no options: LeNet-5 on digits.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab train
              cnnlab train --model resnet18 --small-input --data shapes --epochs 10
              cnnlab train --model vgg11_bn --small-input --data textures --optimizer sgd --lr 0.01 --scheduler onecycle
              cnnlab train --data faces --model lenet5 --early-stopping 5
              cnnlab train --data folder:~/pictures/cats_vs_dogs --model mobilenet_v2 --image-size 96
              cnnlab train --config runs/lenet5-digits-20261125-101500/config.yaml --seed 1
              cnnlab train --resume runs/lenet5-digits-20261125-101500 --epochs 60"""),
    )
    p.add_argument("--config", default=None, help="a config.yaml to start from (options given here override it)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run from its last checkpoint")
    _add_config_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", help="evaluate a trained run on a dataset", formatter_class=fmt,
        description="Accuracy, loss and confusion matrix of a run's model on a dataset split.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab evaluate runs/lenet5-digits-20261125-101500
              cnnlab evaluate runs/my-run --data mnist:~/data/mnist --split test
              cnnlab evaluate runs/my-run --checkpoint last --format json"""),
    )
    p.add_argument("run", help="a run directory (or a checkpoint .safetensors)")
    p.add_argument("--data", default=None, help="dataset spec (default: the run's own)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    p.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which weights (default: those the run ended with, as in its results.json: best after "
                        "early stopping, else last)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "predict", help="classify image files with a trained run", formatter_class=fmt,
        description="Top-k classes with probabilities for each image.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab predict runs/lenet5-digits-20261125-101500 seven.png
              cnnlab predict runs/my-run photos/*.jpg --top-k 3 --format json"""),
    )
    p.add_argument("run", help="a run directory (or a checkpoint .safetensors)")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which weights (default: those the run ended with, as in its results.json: best after "
                        "early stopping, else last)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "datasets", help="list the datasets (built in, and the file formats read)", formatter_class=fmt,
        description="The built-in datasets with their size, classes and source, and the file formats.",
        epilog="examples:\n  cnnlab datasets\n  cnnlab datasets --format json",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_datasets)


def cmd_train(args: argparse.Namespace) -> int:
    from ..train import fit

    if args.resume:
        config = resume_config(args)
    else:
        config = config_from_args(args)
    print_results(fit(config, resume=args.resume))
    return 0


# what defines a run: --resume continues it as it was and refuses to change these
_RUN_DEFINING = ("model", "data", "model_kwargs", "image_size", "val_fraction", "test_fraction", "seed", "run_dir",
                 "transfer", "autoencoder", "segment")


def resume_config(args: argparse.Namespace, section: str | None = None, given: dict | None = None,
                  section_fixed: tuple[str, ...] | None = None, what: str = ""):
    """The configuration that continues ``args.resume``: the run's own, with the options given now.

    ``section`` (``transfer``, ``autoencoder``, ``segment``) must be present in the run, and ``given`` are
    its options from the command line; those named in ``section_fixed`` (all of them when None) define the
    run and may not change, like the fields of :data:`_RUN_DEFINING`."""
    from ..train import TrainConfig

    if args.config:
        raise CnnlabError("--resume takes its configuration from the run; drop --config")
    base = TrainConfig.load(Path(args.resume) / "config.yaml")
    own = getattr(base, section) if section else None
    if section and own is None:
        raise CnnlabError(f"'{args.resume}' is not {what} run; continue it with cnnlab train --resume")
    config = config_from_args(args, base)
    given = given or {}
    changed = [k for k in _RUN_DEFINING if getattr(config, k) != getattr(base, k)]
    changed += [k for k in (given if section_fixed is None else section_fixed)
                if k in given and given[k] != getattr(own, k)]
    if changed:
        raise CnnlabError(f"--resume continues the run as it was configured; it cannot change "
                          f"{', '.join(changed)} (start a new run instead)")
    return config.replace(**{section: dataclasses.replace(own, **given)}) if section else config


def print_results(result) -> None:
    """The short results table that ends a training run."""
    test = result.test
    rows = [["test accuracy", f"{100 * test['accuracy']:.2f}%"]]
    if "top5" in test:
        rows.append(["test top-5", f"{100 * test['top5']:.2f}%"])
    rows += [["test loss", f"{test['loss']:.4f}"], ["test images", test["count"]],
             ["epochs", len(result.history)], ["run directory", str(result.run_dir)]]
    print(format_table(["result", "value"], rows))


def _load_eval_data(meta: dict, spec: str | None, config: dict, split: str):
    from ..data import load_dataset

    name = spec or meta["data"]
    data = load_dataset(name, seed=config.get("seed", 0), val_fraction=config.get("val_fraction", 0.15),
                        test_fraction=config.get("test_fraction", 0.15))
    if data.train.labels is None:
        raise CnnlabError(f"dataset '{name}' has no labels to evaluate against; use a labelled dataset")
    ours, theirs = [str(c) for c in meta["classes"]], [str(c) for c in data.classes]
    if theirs != ours:  # the model's outputs are positions in its class list: only the same list means the same
        def shown(classes: list[str]) -> str:
            return ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")

        what = (f"the same {len(ours)} classes in another order ({shown(theirs)})" if sorted(theirs) == sorted(ours)
                else f"{len(theirs)} ({shown(theirs)})")
        raise CnnlabError(f"the run was trained on {len(ours)} classes ({shown(ours)}) but '{name}' has {what}; "
                          f"evaluate on data with the run's classes, same names in the same order (a folder: one "
                          f"sub-folder per class, named as the run's)")
    in_chans = meta["model_kwargs"]["in_chans"]
    if data.channels != in_chans:
        raise CnnlabError(f"the run's model takes {in_chans}-channel images but '{name}' has {data.channels} "
                          f"channel(s); evaluate on data with {in_chans} channel(s)")
    return data, data.splits()[split]


def cmd_evaluate(args: argparse.Namespace) -> int:
    import yaml

    from ..data.loader import InMemoryLoader
    from ..data.prepare import Preprocess
    from ..data.streaming import StreamingData, StreamingLoader
    from ..train import ClassificationTask, evaluate, load_run_model
    from ..train.setup import resolve_device

    model, meta = load_run_model(args.run, args.checkpoint)
    run_dir = Path(args.run) if Path(args.run).is_dir() else Path(args.run).parent.parent
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else {}
    data, split = _load_eval_data(meta, args.data, config, args.split)
    device = resolve_device(args.device)
    pre = Preprocess.from_dict(meta["preprocess"])
    if isinstance(data, StreamingData):
        loader = StreamingLoader(split, data.channels, pre, args.batch_size, device)
    else:
        loader = InMemoryLoader(pre(split.images).to(device), split.labels.to(device), args.batch_size)
    task = ClassificationTask(len(meta["classes"]), meta["binary"])
    result = evaluate(model.to(device), loader, task, device)
    if args.format == "json":
        print(json.dumps({"data": args.data or meta["data"], "split": args.split, **result}, indent=2))
        return 0
    rows = [["accuracy", f"{100 * result['accuracy']:.2f}%"], ["loss", f"{result['loss']:.4f}"],
            ["images", result["count"]]]
    if "top5" in result:
        rows.insert(1, ["top-5", f"{100 * result['top5']:.2f}%"])
    print(format_table([f"{args.split} on {args.data or meta['data']}", "value"], rows))
    classes = meta["classes"]
    print("\nconfusion matrix (rows: true, columns: predicted)")
    print(format_table(["", *classes], [[c, *r] for c, r in zip(classes, result["confusion_matrix"], strict=True)],
                       [False] + [True] * len(classes)))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import torch

    from ..data import read_image_file
    from ..data.prepare import Preprocess
    from ..train import ClassificationTask, load_run_model

    model, meta = load_run_model(args.run, args.checkpoint)
    if args.top_k < 1:
        raise CnnlabError(f"--top-k must be at least 1, got {args.top_k}")
    pre = Preprocess.from_dict(meta["preprocess"])
    in_chans = meta["model_kwargs"]["in_chans"]
    images = []
    for path in args.images:
        images.append(pre(read_image_file(path, in_chans if in_chans in (1, 3) else None).unsqueeze(0)))
    task = ClassificationTask(len(meta["classes"]), meta["binary"])
    with torch.no_grad():
        probs = task.probabilities(model(torch.cat(images)))
    k = min(args.top_k, probs.shape[1])
    top = probs.topk(k, dim=1)
    results = [{"image": path, "top": [{"class": meta["classes"][int(i)], "probability": float(p)}
                                       for p, i in zip(top.values[n], top.indices[n], strict=True)]}
               for n, path in enumerate(args.images)]
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return 0
    rows = [[r["image"] if j == 0 else "", t["class"], f"{100 * t['probability']:.1f}%"]
            for r in results for j, t in enumerate(r["top"])]
    print(format_table(["image", "class", "probability"], rows, [False, False, True]))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..data import list_datasets, load_dataset

    records = []
    for info in list_datasets():
        record = {"name": info.name, "description": info.description, "source": info.source}
        if not info.takes_path:
            d = load_dataset(info.name)
            record.update(images=len(d.train) + len(d.val) + len(d.test),
                          split=f"{len(d.train)}/{len(d.val)}/{len(d.test)}",
                          size="x".join(map(str, (d.channels, *d.image_size))), classes=d.num_classes)
        records.append(record)
    if args.format == "json":
        print(json.dumps(records, indent=2))
        return 0
    rows = [[r["name"], r.get("images", "-"), r.get("split", "-"), r.get("size", "-"), r.get("classes", "-"),
             r["description"]] for r in records]
    print(format_table(["dataset", "images", "train/val/test", "size", "classes", "description"], rows,
                       [False, True, False, False, True, False]))
    print("\nbuilt-in datasets ship inside scikit-learn and scikit-image (nothing is downloaded); "
          "the others read your files: folder:PATH, mnist:PATH, cifar10:PATH, npz:FILE")
    return 0
