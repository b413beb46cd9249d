"""``cnnlab train``, ``cnnlab evaluate``, ``cnnlab predict`` and ``cnnlab datasets``."""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import dataclass

from .._options import option
from ..errors import CnnlabError
from ..inspect import format_table
from .options import add_options, add_run_options, options_from, train_command


@dataclass
class RunOptions:
    """What every command that reads a run takes besides the run."""

    checkpoint: str | None = option(None, "which weights (default: those the run's results.json came from: best "
                                          "after early stopping, else last)", choices=("best", "last"))
    format: str = option("table", "output", choices=("table", "json"))


def add_run_argument(p: argparse.ArgumentParser, holds: str) -> None:
    p.add_argument("run", help=f"a run directory of {holds} (or one of its checkpoint .safetensors files)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..classify import ClassifierConfig, PredictOptions
    from ..train import EvalOptions

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "train", help="train a model on a dataset and write its run directory", formatter_class=fmt,
        description="Train a classifier; writes config.yaml, metrics.csv, results.json, checkpoints, plots and\n"
                    "report.html into the run directory. With no options: LeNet-5 on digits.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab train
              cnnlab train --model resnet18 --small-input --data shapes --epochs 10
              cnnlab train --model vgg11_bn --small-input --data textures --optimizer sgd --lr 0.01 --epochs 3
              cnnlab train --data faces --model lenet5 --early-stopping 5
              cnnlab train --data folder:~/pictures/cats_vs_dogs --model mobilenet_v2 --image-size 96
              cnnlab train --config runs/lenet5-digits-20261125-101500/config.yaml --seed 1
              cnnlab train --resume runs/lenet5-digits-20261125-101500 --epochs 60
              cnnlab train --model resnet18 --small-input --data shapes --nproc 2   # 2 processes (DDP)"""),
    )
    add_run_options(p, ClassifierConfig, model_args=True)
    p.set_defaults(func=train_command(ClassifierConfig))

    p = sub.add_parser(
        "evaluate", help="evaluate a trained classifier on a dataset", formatter_class=fmt,
        description="Accuracy, loss and confusion matrix of a run's model on a dataset split (by default the run's\n"
                    "own data, split as the run split it).",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab evaluate runs/lenet5-digits-20261125-101500
              cnnlab evaluate runs/my-run --data mnist:~/data/mnist --split test
              cnnlab evaluate runs/my-run --data folder:~/data/held-out --split all
              cnnlab evaluate runs/my-run --checkpoint last --format json"""),
    )
    add_run_argument(p, "a classifier")
    p.add_argument("--data", default=None, metavar="SPEC", help="dataset spec (default: the run's own)")
    add_options(p, EvalOptions)
    add_options(p, RunOptions)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "predict", help="classify image files with a trained run", formatter_class=fmt,
        description="Top-k classes with probabilities for each image.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab predict runs/lenet5-digits-20261125-101500 seven.png
              cnnlab predict runs/my-run photos/*.jpg --top-k 3 --format json
              cnnlab predict runs/my-run seven.png --onnx runs/my-run/export/model.onnx"""),
    )
    add_run_argument(p, "a classifier")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--onnx", default=None, metavar="FILE",
                   help="run this file exported from the run (cnnlab export) instead of its checkpoint, with the "
                        "run's preprocessing")
    add_options(p, PredictOptions)
    add_options(p, RunOptions)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "datasets", help="list the datasets (built in, and the file formats read)", formatter_class=fmt,
        description="The built-in datasets with their size, classes and source, and the file formats.",
        epilog="examples:\n  cnnlab datasets\n  cnnlab datasets --format json",
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="output (default: table)")
    p.set_defaults(func=cmd_datasets)






def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..train import EvalOptions, Run

    run = Run.open(args.run, args.checkpoint, holds="classifier")
    o = options_from(args, EvalOptions)
    result = run.evaluate(o.split, args.data, o.batch_size, o.device)
    name = args.data or run.meta["data"]
    if args.format == "json":
        # the confusion matrix's rows (true) and columns (predicted) follow "classes"
        print(json.dumps({"data": name, "split": o.split, "classes": run.meta["classes"], **result}, indent=2))
        return 0
    rows = [["accuracy", f"{100 * result['accuracy']:.2f}%"], ["loss", f"{result['loss']:.4f}"],
            ["images", result["count"]]]
    if "top5" in result:
        rows.insert(1, ["top-5", f"{100 * result['top5']:.2f}%"])
    print(format_table([f"{o.split} on {name}", "value"], rows))
    classes = run.meta["classes"]
    print("\nconfusion matrix (rows: true, columns: predicted)")
    print(format_table(["", *classes], [[c, *r] for c, r in zip(classes, result["confusion_matrix"], strict=True)],
                       [False] + [True] * len(classes)))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..classify import PredictOptions, predict
    from ..train import Run

    run = Run.open(args.run, args.checkpoint, holds="classifier")
    results = predict(run, args.images, options_from(args, PredictOptions).top_k, onnx=args.onnx)
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
        record = {"name": info.name, "description": info.description, "source": info.source,
                  "train_defaults": dict(info.train_defaults)}
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
    for r in records:
        if r["train_defaults"]:
            flags = [("--" if v else "--no-") + k.replace("_", "-") if isinstance(v, bool) else
                     f"--{k.replace('_', '-')} {v:g}" for k, v in r["train_defaults"].items()]
            print(f"{r['name']} trains with its own defaults when none of --epochs, --batch-size, --lr, --augment is "
                  f"given: {' '.join(flags)}")
    return 0


def no_command(group: str, commands: str):
    """The handler of a command group called without a command (``cnnlab ae``)."""
    def handler(args: argparse.Namespace) -> int:
        raise CnnlabError(f"choose a command: {commands} (see 'cnnlab {group} --help')")

    return handler
