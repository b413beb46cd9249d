"""``cnnlab segment``: semantic segmentation with a convolutional encoder-decoder (train, predict, evaluate)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import textwrap
from dataclasses import fields
from pathlib import Path

from ..errors import CnnlabError
from ..inspect import format_table
from .train_cmds import _add_config_options, add_dataclass_options, config_from_args, resume_config

# What `cnnlab segment train` changes in cnnlab train's defaults (a --config file's values win over these):
# the shapes masks at 64x64, few epochs of small batches (1,400 training images give 88 steps an epoch), no
# label smoothing (a pixel's class is not ambiguous), and no augmentation (the generated shapes already vary in
# position, size and rotation).
DEFAULTS = {"data": "shapes:size=64", "epochs": 3, "batch_size": 16, "label_smoothing": 0.0, "augment": False}

HELP = {"skips": "U-Net-style skip connections from each encoder stage to the decoder (--no-skips: a "
                 "SegNet-style plain decoder)",
        "depth": "halvings of the image in the encoder; image sides must be divisible by 2**depth",
        "width": "channels of the first stage, doubled at every halving"}


def _add_segment_options(p: argparse.ArgumentParser) -> None:
    from ..train.config import SegmentConfig

    add_dataclass_options(p, SegmentConfig, HELP)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    seg = sub.add_parser("segment", help="semantic segmentation: train, predict, evaluate (per-pixel classes)",
                         formatter_class=fmt,
                         description="Semantic segmentation with a convolutional encoder-decoder (U-Net-style with "
                                     "skip connections,\nSegNet-style without), trained with the same engine as "
                                     "classifiers.",
                         epilog="examples:\n  cnnlab segment train\n  cnnlab segment predict RUN image.png\n"
                                "  cnnlab segment evaluate RUN\n  cnnlab segment train --help")
    seg.set_defaults(func=_no_command)
    seg_sub = seg.add_subparsers(title="commands", metavar="COMMAND", parser_class=type(seg))

    p = seg_sub.add_parser(
        "train", formatter_class=fmt, help="train a segmentation network and write its run directory",
        description="Train an encoder-decoder on images with per-pixel masks; writes config.yaml, metrics.csv,\n"
                    "results.json (pixel accuracy, IoU and Dice per class and their means over the foreground\n"
                    "classes), checkpoints, plots/overlays.png (image, true mask, predicted mask) and report.html.\n"
                    "Takes the options of 'cnnlab train' (epochs, batch size, learning rate, seed, --run-dir,\n"
                    "--resume, ...); here the defaults are --data shapes:size=64 --epochs 3 --batch-size 16\n"
                    "--label-smoothing 0 --no-augment (with --augment, crops and flips move each mask with its image).",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab segment train
              cnnlab segment train --no-skips                         # SegNet-style: no skip connections
              cnnlab segment train --data shapes:size=32,count=1000 --depth 2 --width 8 --epochs 5
              cnnlab segment train --data shapes:size=48 --image-size 64 --augment
              cnnlab segment train --resume runs/unet-shapes_size_64-20261125-101500 --epochs 12"""),
    )
    p.add_argument("--config", default=None, help="a config.yaml to start from (options given here override it)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a segmentation run")
    from ..train import TrainConfig

    _add_config_options(p, defaults=TrainConfig(**DEFAULTS), skip=("model", "init", "aux_weight", "monitor", "loss"),
                        model_args=False)
    _add_segment_options(p)
    p.set_defaults(func=cmd_segment_train)

    p = seg_sub.add_parser(
        "predict", formatter_class=fmt, help="segment image files with a trained run; write overlays",
        description="Predict the class of every pixel of each image: prints each image's class pixel shares and\n"
                    "writes IMAGE_overlay.png (the image with the predicted mask coloured on top) into --out.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab segment predict runs/unet-shapes_size_64-20261125-101500 a.png b.png
              cnnlab segment predict RUN photos/*.png --out overlays --format json"""),
    )
    p.add_argument("run", help="a segmentation run directory (or a checkpoint .safetensors)")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write the overlays (default: RUN/predictions)")
    p.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which weights (default: those the run's results.json was computed with)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output (default: table)")
    p.set_defaults(func=cmd_segment_predict)

    p = seg_sub.add_parser(
        "evaluate", formatter_class=fmt, help="IoU and Dice per class of a run on a dataset split",
        description="Pixel accuracy, IoU and Dice per class and their means over the foreground classes, of a\n"
                    "segmentation run on a dataset split (default: the run's own test split).",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab segment evaluate runs/unet-shapes_size_64-20261125-101500
              cnnlab segment evaluate RUN --data shapes:size=64,count=500 --split test --format json"""),
    )
    p.add_argument("run", help="a segmentation run directory (or a checkpoint .safetensors)")
    p.add_argument("--data", default=None, help="dataset spec with masks (default: the run's own)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="which split (default: test)")
    p.add_argument("--checkpoint", choices=("best", "last"), default=None,
                   help="which weights (default: those the run's results.json was computed with)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output (default: table)")
    p.set_defaults(func=cmd_segment_evaluate)


def _no_command(args: argparse.Namespace) -> int:
    raise CnnlabError("choose a command: cnnlab segment train, predict or evaluate (see 'cnnlab segment --help')")


def _run_dir(path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_dir() else p.parent.parent


def cmd_segment_train(args: argparse.Namespace) -> int:
    from ..segment.recipe import model_name
    from ..train import TrainConfig, fit
    from ..train.config import SegmentConfig

    given = {f.name: getattr(args, f.name) for f in fields(SegmentConfig) if getattr(args, f.name) is not None}
    if args.resume:
        config = resume_config(args, "segment", given, what="a segmentation")
    else:
        base = TrainConfig.load(args.config).replace(run_dir=None) if args.config else TrainConfig(**DEFAULTS)
        config = config_from_args(args, base)
        s = dataclasses.replace(base.segment or SegmentConfig(), **given)
        config = config.replace(segment=s, model=model_name(s))
    result = fit(config, resume=args.resume)
    t = result.test
    rows = [["test pixel accuracy", f"{100 * t['accuracy']:.2f}%"], ["test mean IoU", _num(t["mean_iou"])],
            ["test mean Dice", _num(t["mean_dice"])]]
    rows += [[f"IoU {c}", _num(v)] for c, v in t["iou"].items() if c != "background"]
    rows += [["test images", t["count"]], ["epochs", len(result.history)], ["run directory", str(result.run_dir)]]
    print(format_table(["result", "value"], rows))
    return 0


def _num(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def cmd_segment_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from ..data import read_image_file
    from ..data.prepare import Preprocess
    from ..segment.recipe import load_segment_run, resize_masks
    from ..segment.viz import overlay

    model, meta = load_segment_run(args.run, args.checkpoint)
    pre = Preprocess.from_dict(meta["preprocess"])
    in_chans, classes = meta["segment"]["in_chans"], meta["classes"]
    images = []
    for path in args.images:
        images.append(read_image_file(path, in_chans))
    out = Path(args.out).expanduser() if args.out else _run_dir(args.run) / "predictions"
    out.mkdir(parents=True, exist_ok=True)
    results, names = [], set()
    with torch.no_grad():
        for path, image in zip(args.images, images, strict=True):
            pred = model(pre(image[None])).argmax(1)
            mask = resize_masks(pred, tuple(image.shape[-2:]))[0]  # back to the image's own size
            counts = torch.bincount(mask.flatten(), minlength=len(classes)).double()
            shares = {c: float(n) for c, n in zip(classes, counts / counts.sum(), strict=True)}
            name = f"{Path(path).stem}_overlay"
            while name in names:
                name += "_"
            names.add(name)
            file = out / f"{name}.png"
            picture = (overlay(image, mask, len(classes)) * 255).round().astype(np.uint8)
            Image.fromarray(picture).save(file)
            results.append({"image": path, "overlay": str(file), "shares": shares})
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return 0
    rows = [[r["image"] if j == 0 else "", c, f"{100 * s:.1f}%"]
            for r in results for j, (c, s) in enumerate((c, s) for c, s in r["shares"].items() if s > 0)]
    print(format_table(["image", "class", "pixels"], rows, [False, False, True]))
    print(f"\noverlays written to {out}")
    return 0


def cmd_segment_evaluate(args: argparse.Namespace) -> int:
    import yaml

    from ..data import load_dataset
    from ..data.prepare import Preprocess
    from ..segment.recipe import BACKGROUND, check_masks, load_segment_run, mask_loader, prepare_split
    from ..segment.task import SegmentationTask
    from ..train.setup import resolve_device

    if args.batch_size < 1:
        raise CnnlabError(f"--batch-size must be at least 1, got {args.batch_size}")
    model, meta = load_segment_run(args.run, args.checkpoint)
    run = _run_dir(args.run)
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    name = args.data or meta["data"]
    data = load_dataset(name, seed=config.get("seed", 0), val_fraction=config.get("val_fraction", 0.15),
                        test_fraction=config.get("test_fraction", 0.15))
    check_masks(data)
    classes, theirs = [str(c) for c in meta["classes"]], [BACKGROUND, *map(str, data.classes)]
    if theirs != classes:
        raise CnnlabError(f"the run segments {', '.join(classes)} but '{name}' has {', '.join(theirs)}; evaluate on "
                          f"data with the run's classes in the same order")
    in_chans = meta["segment"]["in_chans"]
    if data.channels != in_chans:
        raise CnnlabError(f"the run's model takes {in_chans}-channel images but '{name}' has {data.channels}")
    device = resolve_device(args.device)
    split = prepare_split(data.splits()[args.split], Preprocess.from_dict(meta["preprocess"]))
    result = SegmentationTask(classes).evaluate(model.to(device), mask_loader(split, args.batch_size, device), device)
    result.pop("confusion_matrix")
    if args.format == "json":
        print(json.dumps({"data": name, "split": args.split, **result}, indent=2))
        return 0
    rows = [[c, _num(result["iou"][c]), _num(result["dice"][c])] for c in classes]
    rows.append(["mean (foreground)", _num(result["mean_iou"]), _num(result["mean_dice"])])
    print(format_table([f"{args.split} on {name}", "IoU", "Dice"], rows, [False, True, True]))
    print(f"\npixel accuracy {100 * result['accuracy']:.2f}%, loss {result['loss']:.4f}, {result['count']} images")
    return 0
