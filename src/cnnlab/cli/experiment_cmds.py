"""``cnnlab experiment``: studies that train many runs and compare them."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import textwrap

from ..errors import CnnlabError
from .options import add_options, given
from .train_cmds import no_command


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..experiments import TransferSettings

    fmt = argparse.RawDescriptionHelpFormatter
    exp = sub.add_parser("experiment", help="reproducible experiments: transfer, efficiency, depth, activations, "
                                            "init, regularization, architectures",
                         formatter_class=fmt, description="Experiments that train many runs and compare them.",
                         epilog="examples:\n  cnnlab experiment transfer\n  cnnlab experiment transfer --help")
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
              cnnlab experiment transfer --quick
              cnnlab experiment transfer --budgets 0.05,0.25,1.0 --seeds 0,1 --epochs 20
              cnnlab experiment transfer --source digits@classes=0-4 --target near=digits@classes=5-9 \\
                  --target far=textures --model resnet18 --small-input
              cnnlab experiment transfer --resume runs/experiment-transfer-20261125-101500"""),
    )
    p.add_argument("--target", action="append", default=None, metavar="NAME=SPEC",
                   help="a target (repeatable; default: similar=digits@classes=5-9 dissimilar=textures)")
    add_options(p, TransferSettings)
    p.add_argument("--quick", action="store_true",
                   help="budgets 10%% and 100%%, one seed, 3 epochs (model A too): a small run, options given still "
                        "apply")
    p.add_argument("--run-dir", default=None, metavar="DIR", help="default: runs/experiment-transfer-<time>")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue an interrupted experiment, as it was set")
    p.set_defaults(func=cmd_experiment_transfer)

    from .. import experiments as ex

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
    add_options(p, ex.EfficiencySettings)
    p.add_argument("--quick", action="store_true",
                   help="smaller layers, images and batches, two timed passes (a few seconds; what the tests run)")
    p.add_argument("--run-dir", default=None, metavar="DIR", help="default: runs/experiment-efficiency-<time>")
    p.set_defaults(func=cmd_experiment_efficiency)

    study = functools.partial(add_study, exp_sub)
    study("depth", ex.DepthSettings, ex.DEPTH_QUICK, ex.run_depth_experiment,
          help="plain vs residual networks of equal depth (the ResNet paper's CIFAR family): training and test error",
          description="""\
              The ResNet paper's degradation problem: plain networks train worse as they get deeper, the
              same stacks with shortcuts better. Trains each network on each seed with the same data,
              epochs and recipe; writes results.csv, summary.json, a table, the training-error curves and
              report.html.""",
          examples=["", "--quick", "--models plain20,plain32,plain44,plain56,resnet20,resnet56,resnet110 \\\n"
                                   "      --data cifar10:~/data/cifar-10-batches-py --epochs 160 --seeds 0"],
          quick="plain20 and resnet20, 2 epochs on a quarter of digits, one seed")
    study("activations", ex.ActivationsSettings, ex.ACTIVATIONS_QUICK, ex.run_activations_experiment,
          help="ReLU vs tanh vs sigmoid in the same network: loss curves, time to a target accuracy, gradient "
               "per layer",
          description="""\
              AlexNet's claim that a non-saturating activation trains faster. Trains the same network
              (LeNet-5 by default) with each activation, the same initialisation, data and recipe (SGD with
              momentum at a constant learning rate), over seeds; records the epochs and seconds until the
              validation accuracy first reaches --target and the weight-gradient norm of every layer after
              each epoch. Writes results.csv, summary.json, a table, a plot and report.html.""",
          examples=["", "--quick", "--acts relu,gelu,tanh,sigmoid --model plain20 --epochs 10"],
          quick="relu and sigmoid, 3 epochs, one seed, target 50%%")
    study("init", ex.InitSettings, ex.INIT_QUICK, ex.run_init_experiment,
          help="init schemes x depth, with and without batch norm: activation and gradient per layer at init, "
               "and whether the net trains",
          description="""\
              Plain ReLU networks of the ResNet paper's CIFAR family, with and without batch norm, each
              initialised by each scheme. At initialisation, on one batch: the standard deviation of every
              activation and the weight-gradient norm of every layer (vanishing and exploding made
              visible); then a few epochs of SGD say whether the network trains. Writes results.csv,
              summary.json, a table, a plot per layer and report.html.""",
          examples=["", "--quick", "--schemes kaiming_normal,kaiming_normal:mode=fan_in --models plain56"],
          quick="plain20 without batch norm, small normal vs He init, 2 epochs on half of digits")
    study("regularization", ex.RegularizationSettings, ex.REGULARIZATION_QUICK, ex.run_regularization_experiment,
          help="none vs dropout, L1, L2, batch norm, augmentation, early stopping on few labels: the overfitting gap",
          description="""\
              Trains LeNet-5 (ReLU, max-pool) on a small training subset with no regulariser, with each
              one alone and with all of them, over seeds. Reports training (in eval mode), validation and
              test accuracy, the train-validation gap, the weights' L2 norm and the share of weights near
              zero. Writes results.csv, summary.json, a table, a plot and report.html.""",
          examples=["", "--quick", "--variants none,l2,all --l2 0.01 --data digits@labels=10"],
          quick="none, l1, l2, batchnorm and early_stopping (patience 2), 8 epochs, one seed")
    study("architectures", ex.ArchitecturesSettings, ex.ARCHITECTURES_QUICK, ex.run_architectures_experiment,
          help="one network per zoo family on the same data, epochs and recipe: parameters, MACs, seconds per "
               "epoch, test accuracy; and torchvision's published ImageNet chart",
          description="""\
              Trains one network of each family of the zoo (its small-input form) on the same data,
              input size, epochs, optimiser and seeds, and reports its parameters, multiply-adds per
              image, seconds per epoch and test accuracy, with a plot of accuracy against multiply-adds.
              Beside it, the ImageNet chart (top-1 accuracy against multiply-adds, bubble size the
              parameters) from the metadata torchvision ships with its weights: read offline, not
              measured here. Writes results.csv, summary.json, imagenet_reference.csv, a table, both
              plots and report.html.""",
          examples=["", "--quick", "--models resnet18,resnet34,resnet50 --epochs 10 --seeds 0,1,2",
                    "--data textures --image-size 32"],
          quick="lenet5, resnet20 and mobilenet_v2, 2 epochs on a quarter of digits, one seed")
    exp.set_defaults(func=no_command("experiment", f"cnnlab experiment {', '.join(exp_sub.choices)}"))


def add_study(exp_sub: argparse._SubParsersAction, name: str, settings_class: type, quick_settings, run,
              help: str, description: str, examples: list[str], quick: str) -> None:
    """``cnnlab experiment NAME``: a study that trains runs, with its settings as options, ``--quick`` (what the
    tests run), ``--run-dir`` and ``--resume``."""
    lines = "\n".join(f"  cnnlab experiment {name} {e}".rstrip() for e in examples)
    p = exp_sub.add_parser(name, formatter_class=argparse.RawDescriptionHelpFormatter, help=help,
                           description=textwrap.dedent(description) + "\nAn interrupted experiment continues with "
                           "--resume DIR.", epilog=f"examples:\n{lines}")
    add_options(p, settings_class)
    p.add_argument("--quick", action="store_true", help=f"{quick} (what the tests run)")
    p.add_argument("--run-dir", default=None, metavar="DIR", help=f"default: runs/experiment-{name}-<time>")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue an interrupted experiment, as it was set")
    p.set_defaults(func=functools.partial(cmd_study, settings_class, quick_settings, run))


def cmd_study(settings_class: type, quick_settings, run, args: argparse.Namespace) -> int:
    changes = given(args, settings_class)
    if args.resume:
        if changes or args.run_dir or args.quick:
            raise CnnlabError("--resume continues the experiment with its own settings; drop the other options")
        result = run(resume=args.resume)
    else:
        base = quick_settings if args.quick else settings_class()
        result = run(dataclasses.replace(base, **changes), args.run_dir)
    print(result.table())
    print(f"\nexperiment directory  {result.path}")
    return 0


def cmd_experiment_transfer(args: argparse.Namespace) -> int:
    from ..experiments import TRANSFER_QUICK, TransferSettings, run_transfer_experiment

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
        if changes or args.run_dir or args.quick:
            raise CnnlabError("--resume continues the experiment with its own settings; drop the other options")
        result = run_transfer_experiment(resume=args.resume)
    else:
        base = TRANSFER_QUICK if args.quick else TransferSettings()
        result = run_transfer_experiment(dataclasses.replace(base, **changes), run_dir=args.run_dir)
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
