"""``cnnlab models``, ``cnnlab shape`` and ``cnnlab summary``."""

from __future__ import annotations

import argparse
import json
import re
import textwrap
import warnings

import torch

from ..errors import CnnlabError, InputSizeError
from ..inspect import (
    conv_output_shape,
    format_table,
    human,
    input_shape,
    padding_sides,
    pair,
    parse_size,
    pool_output_shape,
    summary,
)
from ..inspect.catalog import model_counts
from ..models import create_model, list_models, model_meta


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "models", help="list the architectures with their size, cost and paper", formatter_class=fmt,
        description="Every registered architecture with its parameters and multiply-adds at its default\n"
                    "input size, its minimum input size and its paper.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab models
              cnnlab models 'resnet*'
              cnnlab models --small-input      # the configurations for 28-32 px images
              cnnlab models --format json"""),
    )
    p.add_argument("pattern", nargs="?", default="*",
                   help="shell-style filter, e.g. 'vgg*'; a plain word matches the names with a part that begins with "
                        "it, e.g. resnet (default: all)")
    p.add_argument("--small-input", action="store_true", help="show the small_input=True configurations")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output (default: table)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "shape", help="output size of a convolution or pooling layer", formatter_class=fmt,
        description="Output size of a 2-D convolution (or pooling with --pool) on an HxWxC input, with the\n"
                    "arithmetic per axis. Padding takes 1 number, 2 (vertical horizontal) or 4\n"
                    "(top bottom left right).",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab shape --input 224x224x3 --kernel 3 --stride 1 --padding 0 --dilation 1 --filters 32
              cnnlab shape --input 32x32x3 --kernel 5 --padding 2 1 --filters 16
              cnnlab shape --input 28x28x1 --kernel 3 --padding 0,1,1,0 --dilation 2
              cnnlab shape --input 112x112x64 --pool max --kernel 3 --stride 2 --padding 1"""),
    )
    p.add_argument("--input", required=True, help="input size HxWxC, e.g. 224x224x3")
    p.add_argument("--kernel", default="3", help="kernel size: 3 or 3x5 (default 3)")
    p.add_argument("--stride", default=None, help="stride: 2 or 2x1 (default 1; the kernel for pooling)")
    p.add_argument("--padding", nargs="+", default=["0"], help="1, 2 (vertical horizontal) or 4 (top bottom left "
                   "right) numbers, by spaces or commas: 0 1 1 0 or 0,1,1,0 (default 0)")
    p.add_argument("--dilation", default="1", help="dilation: 1 or 2x1 (default 1)")
    p.add_argument("--filters", type=int, default=None, help="output channels (default: input channels)")
    p.add_argument("--groups", type=int, default=1, help="convolution groups (default 1)")
    p.add_argument("--pool", choices=("max", "avg"), default=None, help="pooling instead of convolution")
    p.add_argument("--ceil-mode", action="store_true", help="pooling: round the output size up")
    p.set_defaults(func=cmd_shape)

    p = sub.add_parser(
        "summary", help="per-layer table of a model: shapes, parameters, MACs, receptive field",
        formatter_class=fmt,
        description="Per-layer table of a model on one input: kernel, stride, padding, dilation, output\n"
                    "shape, parameters, multiply-adds and receptive field, with totals. Computed on the\n"
                    "meta device: instant, no memory, even for VGG-19 at 224x224.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab summary resnet18 --input-size 3x224x224
              cnnlab summary lenet5                           # its default input, 1x32x32
              cnnlab summary resnet18 --input-size 1x28x28 --small-input --num-classes 10
              cnnlab summary vgg16 --format json > vgg16.json"""),
    )
    p.add_argument("model", help="a name from 'cnnlab models'")
    p.add_argument("--input-size", default=None, help="CxHxW (default: the model's default input size)")
    p.add_argument("--num-classes", type=int, default=None, help="classifier outputs (default: the model's)")
    p.add_argument("--small-input", action="store_true", help="the model's configuration for small images")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (default: table)")
    p.set_defaults(func=cmd_summary)


def _build_meta(name: str, **kwargs):
    with torch.device("meta"):  # shapes only: no memory, no compute
        return create_model(name, **kwargs)


def _model_record(name: str, small_input: bool) -> dict:
    """One row of ``cnnlab models``: the counts as cnnlab ships them (:mod:`cnnlab.inspect.catalog`) and the
    registry's facts."""
    meta = model_meta(name)
    counts = model_counts(name, small_input)  # params: those used at inference (no auxiliary heads)
    return {
        "name": name, "family": meta.family,
        **{k: counts[k] for k in ("params", "macs", "input_size", "min_input_size")},
        # small_input changes the stem, so torchvision's weights no longer fit
        "torchvision": None if small_input else meta.torchvision, "paper": meta.paper,
        "channels_last": meta.channels_last,  # its runs' memory layout on a CPU, unless told
    }


def cmd_models(args: argparse.Namespace) -> int:
    if any(c in args.pattern for c in "*?["):
        names = list_models(args.pattern)
    else:  # a plain word begins a name or a part of it after '_' ('resnet': every ResNet, wide ones too)
        word = re.compile(rf"(^|_){re.escape(args.pattern.lower())}")
        names = [n for n in list_models() if word.search(n.lower())]
    if not names:
        raise CnnlabError(f"no model matches '{args.pattern}'; run 'cnnlab models' to see them all")
    records = [dict(_model_record(name, args.small_input)) for name in names]
    if args.format == "json":
        print(json.dumps(records, indent=2))
        return 0
    size = lambda v: "x".join(map(str, v))  # noqa: E731
    rows = [[r["name"], human(r["params"]), human(r["macs"]), size(r["input_size"]), size(r["min_input_size"]),
             "yes" if r["torchvision"] else "-", "yes" if r["channels_last"] else "-", r["paper"]] for r in records]
    print(format_table(["model", "params", "MACs", "input", "min input", "tv weights", "ch-last", "paper"], rows,
                       [False, True, True, False, False, False, False, False]))
    print("\nparams and MACs at the default input, in eval mode (the training-only auxiliary classifiers of "
          "GoogLeNet and Inception v3 are not counted).")
    if any(r["channels_last"] for r in records):
        print("ch-last: trained channels-last on a CPU unless told (measured faster there; "
              "benchmarks/memory_format.py).")
    return 0


def cmd_shape(args: argparse.Namespace) -> int:
    padding = padding_sides(",".join(args.padding))
    h, w, c = input_shape(args.input)
    if h in (1, 3, 4) and w == c > 4:  # CxHxW, as summary --input-size and PyTorch write it: valid, but unlikely
        warnings.warn(f"--input takes HxWxC: {args.input} is {h} pixels high with {c} channels; a {w}x{c} image "
                      f"with {h} channels is {w}x{c}x{h}", stacklevel=1)
    if args.pool and (args.filters is not None or args.groups != 1):
        raise CnnlabError("--filters and --groups apply to convolutions; pooling keeps the channels")
    if args.pool:
        out = pool_output_shape(args.input, args.kernel, args.stride, padding, args.dilation, args.ceil_mode,
                                args.pool)
    else:
        if args.ceil_mode:
            raise CnnlabError("--ceil-mode applies to pooling only; add --pool max|avg")
        out = conv_output_shape(args.input, args.kernel, args.stride or 1, padding, args.dilation,
                                args.filters, args.groups)
    print(out)
    (kh, kw), (dh, dw) = pair(args.kernel, "kernel"), pair(args.dilation, "dilation")
    sh, sw = (kh, kw) if args.pool and args.stride is None else pair(args.stride or 1, "stride")
    top, bottom, left, right = padding
    rounding = "ceil" if args.ceil_mode else "floor"
    for axis, n, k, s, d, lo, hi, o in (("height", h, kh, sh, dh, top, bottom, out.height),
                                         ("width", w, kw, sw, dw, left, right, out.width)):
        formula = (n + lo + hi - d * (k - 1) - 1 + (s - 1 if args.ceil_mode else 0)) // s + 1
        note = "  (PyTorch drops a last window that would start in the padding)" if formula != o else ""
        print(f"  {axis:6}: {rounding}(({n} + {lo} + {hi} - {d}*({k}-1) - 1) / {s}) + 1 = {o}{note}")
    if not args.pool:
        params = out.channels * (c // args.groups * kh * kw + 1)
        print(f"  channels: {out.channels} (one per filter); parameters {params:,} (weights + biases), "
              f"multiply-adds {out.height * out.width * out.channels * (c // args.groups) * kh * kw:,}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    kwargs: dict = {}
    if args.num_classes is not None:
        if args.num_classes < 0:  # the flag, not the builder's argument, is what the user wrote
            raise CnnlabError(f"--num-classes must be at least 0 (0: no classifier), got {args.num_classes}")
        kwargs["num_classes"] = args.num_classes
    if args.small_input:
        kwargs["small_input"] = True
    size = parse_size(args.input_size, "input size", "3x224x224") if args.input_size else None
    if size is not None:
        if len(size) != 3 or min(size) < 1:
            raise CnnlabError(f"--input-size takes CxHxW of positive numbers, e.g. 3x224x224, got '{args.input_size}'")
        if size[0] > 4 and size[2] in (1, 3, 4):
            raise CnnlabError(f"--input-size takes CxHxW, channels first: {size[2]}x{size[0]}x{size[1]}, not "
                              f"'{args.input_size}' (cnnlab shape --input takes HxWxC)")
        kwargs["in_chans"] = size[0]
    model = _build_meta(args.model, **kwargs)
    try:
        s = summary(model, size)
    except InputSizeError as e:  # the model's own words are Python's; here the option is a flag
        raise InputSizeError(str(e).replace("create it with small_input=True", "add --small-input")
                             .replace("use small_input=True", "add --small-input")) from None
    if args.format == "json":
        print(json.dumps({"model": s.model, "input_size": s.input_size, "total_params": s.total_params,
                          "used_params": s.used_params,
                          "trainable_params": s.trainable_params, "total_macs": s.total_macs,
                          "stages": s.stages, "rows": s.to_dicts()}, indent=2))
    elif args.format == "csv":
        import csv
        import sys

        rows = s.to_dicts()
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "x".join(map(str, v)) if isinstance(v, tuple) else v for k, v in r.items()})
    else:
        print(s)
    return 0
