"""``cnnlab export``: a trained model as an ONNX file."""

from __future__ import annotations

import argparse
import textwrap

from .train_cmds import add_run_argument


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..train.onnx import OPSET, OPSETS

    p = sub.add_parser(
        "export", help="write a run's model as an ONNX file, checked against PyTorch",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Exports each part of a run's model (a classifier's or segmentation network's 'model'; an\n"
                    "autoencoder's 'encoder', 'decoder' and 'autoencoder') to RUN/export/PART.onnx. Each file is\n"
                    "checked with onnx.checker and run with onnxruntime, whose outputs must equal PyTorch's. The\n"
                    "files take images preprocessed as the run prepared them (the preprocessing is in their\n"
                    "metadata); 'cnnlab predict RUN IMAGES --onnx FILE' applies it and runs the file.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab export runs/lenet5-digits-20261125-101500
              cnnlab export runs/my-run --dynamic-batch --opset 18 --out shipped/
              cnnlab export runs/my-autoencoder --part encoder"""),
    )
    add_run_argument(p, "any kind")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="the file format (default: onnx)")
    p.add_argument("--opset", type=int, default=OPSET, metavar="N",
                   help=f"ONNX opset version, {OPSETS[0]} to {OPSETS[-1]} (default: {OPSET})")
    p.add_argument("--dynamic-batch", action="store_true", help="any batch size (default: the file takes batches of 2)")
    p.add_argument("--part", action="append", default=None, metavar="NAME",
                   help="export only this part (repeatable; default: all of the run's parts)")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write the files (default: RUN/export; "
                   "for a checkpoint file outside a run, export/ beside it)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ..train import Run
    from ..train.onnx import export_run

    run = Run.open(args.run)  # export_run checks the opset and the parts before any work
    for path in export_run(run, args.out, args.opset, args.dynamic_batch, args.part):
        print(f"{path}  (checked: onnx.checker, and onnxruntime's outputs equal PyTorch's)")
    return 0
