"""``cnnlab segment``: semantic segmentation with a convolutional encoder-decoder (train, predict, evaluate)."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from ..inspect import format_table
from ..segment import score_text
from .options import add_options, add_run_options, options_from, train_command
from .train_cmds import RunOptions, add_run_argument, no_command


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..segment import SegmentConfig
    from ..train import EvalOptions

    fmt = argparse.RawDescriptionHelpFormatter
    seg = sub.add_parser("segment", help="semantic segmentation: train, predict, evaluate (per-pixel classes)",
                         formatter_class=fmt,
                         description="Semantic segmentation with a convolutional encoder-decoder (U-Net-style with "
                                     "skip connections,\nSegNet-style without), trained with the same engine as "
                                     "classifiers.",
                         epilog="examples:\n  cnnlab segment train\n  cnnlab segment predict RUN image.png\n"
                                "  cnnlab segment evaluate RUN\n  cnnlab segment train --help")
    seg.set_defaults(func=no_command("segment", "cnnlab segment train, predict or evaluate"))
    seg_sub = seg.add_subparsers(title="commands", metavar="COMMAND", parser_class=type(seg))

    p = seg_sub.add_parser(
        "train", formatter_class=fmt, help="train a segmentation network and write its run directory",
        description="Train an encoder-decoder on images with per-pixel masks; writes config.yaml, metrics.csv,\n"
                    "results.json (pixel accuracy, IoU and Dice per class and their means over the foreground\n"
                    "classes), checkpoints, plots/overlays.png (image, true mask, predicted mask) and report.html.\n"
                    "Takes the options of 'cnnlab train' (epochs, batch size, learning rate, seed, --run-dir,\n"
                    "--resume, ...); here the defaults are --data shapes:size=64 --epochs 6 --batch-size 16\n"
                    "--label-smoothing 0 --no-augment (with --augment, crops and flips move each mask with its image).",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab segment train
              cnnlab segment train --no-skips                         # SegNet-style: no skip connections
              cnnlab segment train --data shapes:size=32,count=1000 --depth 2 --width 8 --epochs 5
              cnnlab segment train --data shapes:size=48 --image-size 64 --augment
              cnnlab segment train --resume runs/unet-shapes_size_64-20261125-101500 --epochs 12"""),
    )
    add_run_options(p, SegmentConfig)
    p.set_defaults(func=train_command(SegmentConfig))

    p = seg_sub.add_parser(
        "predict", formatter_class=fmt, help="segment image files with a trained run; write overlays",
        description="Predict the class of every pixel of each image: prints each image's class pixel shares and\n"
                    "writes IMAGE_overlay.png (the image with the predicted mask coloured on top) into --out.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab segment predict runs/unet-shapes_size_64-20261125-101500 a.png b.png
              cnnlab segment predict RUN photos/*.png --out overlays --format json
              cnnlab segment predict RUN a.png --onnx RUN/export/model.onnx"""),
    )
    add_run_argument(p, "a segmentation network")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write the overlays (default: RUN/predictions)")
    p.add_argument("--onnx", default=None, metavar="FILE",
                   help="run this file exported from the run (cnnlab export) instead of its checkpoint, with the "
                        "run's preprocessing")
    add_options(p, RunOptions)
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
    add_run_argument(p, "a segmentation network")
    p.add_argument("--data", default=None, metavar="SPEC", help="dataset spec with masks (default: the run's own)")
    add_options(p, EvalOptions)
    add_options(p, RunOptions)
    p.set_defaults(func=cmd_segment_evaluate)


def cmd_segment_predict(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from .._io import atomic_write
    from ..segment import predict
    from ..segment.viz import overlay
    from ..train import Run

    run = Run.open(args.run, args.checkpoint, holds="segmenter")
    out = run.output_dir("predictions", args.out)
    classes = run.meta["classes"]
    results, names = [], set()
    for r in predict(run, args.images, onnx=args.onnx):
        name = f"{Path(r['image']).stem}_overlay"
        while name in names:
            name += "_"
        names.add(name)
        file = out / f"{name}.png"
        picture = (overlay(r["picture"], r["mask"], len(classes)) * 255).round().astype(np.uint8)
        atomic_write(file, lambda tmp, p=picture: Image.fromarray(p).save(tmp, format="PNG"))
        results.append({"image": r["image"], "overlay": str(file), "shares": r["shares"]})
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return 0
    # the classes with any pixel; a share that rounds to 0.0% reads '<0.1%', not as an absent class
    rows = [[r["image"] if j == 0 else "", c, f"{100 * s:.1f}%" if s >= 0.0005 else "<0.1%"]
            for r in results for j, (c, s) in enumerate((c, s) for c, s in r["shares"].items() if s > 0)]
    print(format_table(["image", "class", "pixels"], rows, [False, False, True]))
    print(f"\noverlays written to {out}")
    return 0


def cmd_segment_evaluate(args: argparse.Namespace) -> int:
    from ..train import EvalOptions, Run

    run = Run.open(args.run, args.checkpoint, holds="segmenter")
    o = options_from(args, EvalOptions)
    result = run.evaluate(o.split, args.data, o.batch_size, o.device)
    result.pop("confusion_matrix")
    name = args.data or run.meta["data"]
    if args.format == "json":
        print(json.dumps({"data": name, "split": o.split, **result}, indent=2))
        return 0
    classes = run.meta["classes"]
    rows = [[c, score_text(result["iou"][c]), score_text(result["dice"][c])] for c in classes]
    rows.append(["mean (foreground)", score_text(result["mean_iou"]), score_text(result["mean_dice"])])
    print(format_table([f"{o.split} on {name}", "IoU", "Dice"], rows, [False, True, True]))
    print(f"\npixel accuracy {100 * result['accuracy']:.2f}%, loss {result['loss']:.4f}, {result['count']} images")
    return 0
