"""``cnnlab experiment``: studies that train many runs and compare them."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap

from ..errors import CnnlabError
from .options import add_options, given
from .train_cmds import no_command


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..experiments import TransferSettings

    fmt = argparse.RawDescriptionHelpFormatter
    exp = sub.add_parser("experiment", help="reproducible experiments: transfer, efficiency, depth",
                         formatter_class=fmt, description="Experiments that train many runs and compare them.",
                         epilog="examples:\n  cnnlab experiment transfer\n  cnnlab experiment transfer --help")
    exp.set_defaults(func=no_command("experiment", "cnnlab experiment transfer"))
    exp_sub = exp.add_subparsers(title="experiments", metavar="EXPERIMENT", parser_class=type(exp))
    p = exp_sub.add_parser(
        "transfer", formatter_class=fmt,
        help="scratch vs feature extraction vs fine-tuning, over label budgets, on a similar and a dissimilar target",
        description="Model A is trained on the source data (or given with --from). On each target, train from\n"
                    "scratch, by feature extraction and by fine-tuning, with a share of the target's training\n"
                    "labels, over several seeds. Writes results.csv, summary.json, a table and a plot. An\n"
                    "interrupted experiment continues with --resume DIR.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab experiment transfer
              cnnlab experiment transfer --budgets 0.05,0.25,1.0 --seeds 0,1 --epochs 20
              cnnlab experiment transfer --source digits@classes=0-4 --target near=digits@classes=5-9 \\
                  --target far=textures --model resnet18 --small-input
              cnnlab experiment transfer --resume runs/experiment-transfer-20261125-101500"""),
    )
    p.add_argument("--target", action="append", default=None, metavar="NAME=SPEC",
                   help="a target (repeatable; default: similar=digits@classes=5-9 dissimilar=textures)")
    add_options(p, TransferSettings)
    p.add_argument("--run-dir", default=None, metavar="DIR", help="default: runs/experiment-transfer-<time>")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue an interrupted experiment, as it was set")
    p.set_defaults(func=cmd_experiment_transfer)

    from ..experiments import DepthSettings, EfficiencySettings

    p = exp_sub.add_parser(
        "depth", formatter_class=fmt,
        help="plain vs residual networks of equal depth (the ResNet paper's CIFAR family): training and test error",
        description="The ResNet paper's degradation problem: plain networks train worse as they get deeper, the\n"
                    "same stacks with shortcuts better. Trains each network on each seed with the same data,\n"
                    "epochs and recipe; writes results.csv, summary.json, a table, the training-error curves and\n"
                    "report.html. An interrupted experiment continues with --resume DIR.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab experiment depth
              cnnlab experiment depth --quick
              cnnlab experiment depth --models plain20,plain32,plain44,plain56,resnet20,resnet56,resnet110 \\
                  --data cifar10:~/data/cifar-10-batches-py --epochs 160 --seeds 0"""),
    )
    add_options(p, DepthSettings)
    p.add_argument("--quick", action="store_true",
                   help="plain20 and resnet20, 2 epochs on a quarter of digits, one seed (what the tests run)")
    p.add_argument("--run-dir", default=None, metavar="DIR", help="default: runs/experiment-depth-<time>")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue an interrupted experiment, as it was set")
    p.set_defaults(func=cmd_experiment_depth)

    p = exp_sub.add_parser(
        "efficiency", formatter_class=fmt,
        help="standard vs 1x1-reduced vs depthwise separable convolutions, and MobileNet v1 against full "
             "convolutions: parameters, MACs, time",
        description="No training, seconds: three ways to map C channels to C over a 3x3 neighbourhood (a standard\n"
                    "convolution, Inception's 1x1 reduction, MobileNet's depthwise separable one) and MobileNet v1\n"
                    "against the same network with full convolutions. Parameters and multiply-adds are counted\n"
                    "from the modules; times are medians of forward and forward + backward passes on this\n"
                    "machine. Writes results.csv, summary.json, a table, a plot and report.html.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab experiment efficiency
              cnnlab experiment efficiency --quick
              cnnlab experiment efficiency --channels 512 --size 14 --device cuda"""),
    )
    add_options(p, EfficiencySettings)
    p.add_argument("--quick", action="store_true",
                   help="smaller layers, images and batches, two timed passes (a few seconds; what the tests run)")
    p.add_argument("--run-dir", default=None, metavar="DIR", help="default: runs/experiment-efficiency-<time>")
    p.set_defaults(func=cmd_experiment_efficiency)


def cmd_experiment_transfer(args: argparse.Namespace) -> int:
    from ..experiments import TransferSettings, run_transfer_experiment

    changes = given(args, TransferSettings)
    if args.target:
        targets = {}
        for item in args.target:
            name, eq, spec = item.partition("=")
            if not eq or not name or not spec or any(c in name for c in ":@+/"):
                raise CnnlabError(f"--target '{item}' is not NAME=SPEC (example: --target far=textures)")
            if name in targets:
                raise CnnlabError(f"--target {name} is given twice; give each target its own name")
            targets[name] = spec
        changes["targets"] = targets
    if args.resume:
        if changes or args.run_dir:
            raise CnnlabError("--resume continues the experiment with its own settings; drop the other options")
        result = run_transfer_experiment(resume=args.resume)
    else:
        result = run_transfer_experiment(dataclasses.replace(TransferSettings(), **changes), run_dir=args.run_dir)
    print(result.table())
    print(f"\nexperiment directory  {result.path}")
    return 0


def cmd_experiment_efficiency(args: argparse.Namespace) -> int:
    from ..experiments import EFFICIENCY_QUICK, EfficiencySettings, run_efficiency_experiment

    base = EFFICIENCY_QUICK if args.quick else EfficiencySettings()
    result = run_efficiency_experiment(dataclasses.replace(base, **given(args, EfficiencySettings)), args.run_dir,
                                       log=lambda *a: None)
    print(f"on {result.cpu}")
    print(result.table())
    print(f"\nexperiment directory  {result.path}")
    return 0


def cmd_experiment_depth(args: argparse.Namespace) -> int:
    from ..experiments import DEPTH_QUICK, DepthSettings, run_depth_experiment

    changes = given(args, DepthSettings)
    if args.resume:
        if changes or args.run_dir or args.quick:
            raise CnnlabError("--resume continues the experiment with its own settings; drop the other options")
        result = run_depth_experiment(resume=args.resume)
    else:
        base = DEPTH_QUICK if args.quick else DepthSettings()
        result = run_depth_experiment(dataclasses.replace(base, **changes), args.run_dir)
    print(result.table())
    print(f"\nexperiment directory  {result.path}")
    return 0
