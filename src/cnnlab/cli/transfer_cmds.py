"""``cnnlab transfer`` and ``cnnlab experiment transfer``."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from dataclasses import fields

from ..errors import CnnlabError
from .train_cmds import _add_config_options, add_dataclass_options, config_from_args, print_results, resume_config

HELP = {
    "backbone_lr": "backbone learning rate = --lr x this (fine-tune, partial, incremental)",
    "head_epochs": "fine-tune warm start: train only the head for this many epochs first",
    "freeze_stages": "partial: freeze the first K stages (see 'cnnlab summary MODEL')",
    "bn": "batch norm of trainable backbone layers: frozen (keeps the source's statistics) | train",
    "cache": "feature-extraction: cache the backbone's features in memory, on disk, auto or off",
    "adapt_channels": "first conv for other image channels: auto | sum (RGB->gray) | repeat (gray->RGB)",
    "memory": "incremental: rehearsal exemplars kept per old class (0: none)",
    "distill": "incremental: weight of distillation from the old model (0: none)",
    "compare_naive": "incremental: also train without mitigation, in RUN/naive, and compare",
}
_OWN = ("source", "mode")  # --from and --mode


def _add_transfer_options(p: argparse.ArgumentParser) -> None:
    from ..train import TransferConfig

    add_dataclass_options(p, TransferConfig, HELP, skip=_OWN)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..train.config import TRANSFER_MODES

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "transfer", help="reuse a trained model for a new task (feature extraction, fine-tuning, ...)",
        formatter_class=fmt,
        description="Start from a trained model (a cnnlab run or checkpoint, or a torchvision weights file): its\n"
                    "backbone keeps its weights, its classifier is new and sized for the target's classes. Takes\n"
                    "every option of 'cnnlab train' and writes the same run directory.",
        epilog=textwrap.dedent("""\
            modes:
              feature-extraction  the backbone is frozen (batch norm too); its features are cached; the head trains
              fine-tune           every layer trains, the backbone at --lr x --backbone-lr (warm start: --head-epochs)
              partial             the first --freeze-stages stages are frozen, the rest trains
              incremental         the source's classes stay, the target's are added (--memory, --distill)

            examples:
              cnnlab train --data digits@classes=0-4 --run-dir runs/base
              cnnlab transfer --from runs/base --data digits@classes=5-9@labels=10 --mode feature-extraction
              cnnlab transfer --from runs/base --data textures --mode fine-tune --head-epochs 3
              cnnlab transfer --from runs/base --data digits@classes=5-9 --mode incremental --memory 20
              cnnlab transfer --from resnet18-f37072fd.pth --model resnet18 --data folder:~/pets --mode partial
              cnnlab transfer --resume runs/lenet5-digits_classes_5-9-20261125-101500 --epochs 30"""),
    )
    p.add_argument("--from", dest="source", default=None, metavar="SOURCE",
                   help="a cnnlab run directory or checkpoint, or a torchvision weights file (needs --model)")
    p.add_argument("--mode", choices=TRANSFER_MODES, default=None, help="how to transfer (default: fine-tune)")
    p.add_argument("--config", default=None, help="a config.yaml to start from (options given here override it)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a transfer run")
    from ..train import TrainConfig

    _add_config_options(p, defaults=TrainConfig(model=None))  # the architecture comes from the source
    _add_transfer_options(p)
    p.set_defaults(func=cmd_transfer)

    exp = sub.add_parser("experiment", help="reproducible experiments (transfer: the lecture's comparison)",
                         formatter_class=fmt, description="Experiments that train many runs and compare them.",
                         epilog="examples:\n  cnnlab experiment transfer\n  cnnlab experiment transfer --help")
    exp.set_defaults(func=_no_experiment)
    exp_sub = exp.add_subparsers(title="experiments", metavar="EXPERIMENT", parser_class=type(p))
    p = exp_sub.add_parser(
        "transfer", formatter_class=fmt,
        help="scratch vs feature extraction vs fine-tuning, over label budgets, on a similar and a dissimilar target",
        description="Model A is trained on the source data (or given with --from). On each target, train from\n"
                    "scratch, by feature extraction and by fine-tuning, with a share of the target's training\n"
                    "labels, over several seeds. Writes results.csv, summary.json, a table and a plot.",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab experiment transfer
              cnnlab experiment transfer --budgets 0.05,0.25,1.0 --seeds 0,1 --epochs 20
              cnnlab experiment transfer --source digits@classes=0-4 --target near=digits@classes=5-9 \\
                  --target far=textures --model resnet18 --small-input"""),
    )
    p.add_argument("--source", default="digits@classes=0-4", help="data model A trains on (default: %(default)s)")
    p.add_argument("--from", dest="source_run", default=None, metavar="RUN",
                   help="use this trained run as model A instead of training one")
    p.add_argument("--target", action="append", default=None, metavar="NAME=SPEC",
                   help="a target (repeatable; default: similar=digits@classes=5-9 dissimilar=textures)")
    p.add_argument("--model", default="lenet5", help="architecture of model A (default: %(default)s)")
    p.add_argument("--small-input", action="store_true", help="the model's small-input form")
    p.add_argument("--budgets", default="0.05,0.1,0.25,0.5,1.0",
                   help="shares of the target's training labels (default: %(default)s)")
    p.add_argument("--seeds", default="0,1,2", help="seeds (default: %(default)s)")
    p.add_argument("--methods", default="scratch,feature-extraction,fine-tune",
                   help="methods to compare (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=30, help="epochs of every target run (default: %(default)s)")
    p.add_argument("--source-epochs", type=int, default=20, help="epochs of model A (default: %(default)s)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: %(default)s)")
    p.add_argument("--run-dir", default=None, help="default: runs/experiment-transfer-<time>")
    p.set_defaults(func=cmd_experiment_transfer)


def _no_experiment(args: argparse.Namespace) -> int:
    raise CnnlabError("choose an experiment: cnnlab experiment transfer (see 'cnnlab experiment --help')")


def cmd_transfer(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, TransferConfig, fit

    given = {f.name: getattr(args, f.name) for f in fields(TransferConfig) if getattr(args, f.name) is not None}
    if args.resume:
        config = resume_config(args, "transfer", given, section_fixed=("source", "mode"), what="a transfer")
    else:
        base = TrainConfig.load(args.config).replace(run_dir=None) if args.config else TrainConfig(model=None)
        if args.source is None and (base.transfer is None or not base.transfer.source):
            raise CnnlabError("cnnlab transfer needs --from SOURCE (a run directory, checkpoint or weights file)")
        config = config_from_args(args, base)
        config = config.replace(transfer=dataclasses.replace(base.transfer or TransferConfig(), **given))
    print_results(fit(config, resume=args.resume))
    return 0


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CnnlabError(f"--{what} takes numbers separated by commas, got '{text}'") from None
    if not values:
        raise CnnlabError(f"--{what} is empty")
    return values


def cmd_experiment_transfer(args: argparse.Namespace) -> int:
    from ..transfer.experiment import DEFAULT_TARGETS, run_transfer_experiment

    targets = dict(DEFAULT_TARGETS)
    if args.target:
        targets = {}
        for item in args.target:
            name, eq, spec = item.partition("=")
            if not eq or not name or not spec or any(c in name for c in ":@+"):
                raise CnnlabError(f"--target '{item}' is not NAME=SPEC (example: --target far=textures)")
            targets[name] = spec
    budgets = _floats(args.budgets, "budgets")
    if any(not 0 < b <= 1 for b in budgets):
        raise CnnlabError(f"--budgets are shares of the training labels in (0, 1], got {args.budgets}")
    seeds = [int(s) for s in _floats(args.seeds, "seeds")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    result = run_transfer_experiment(
        source=args.source, source_run=args.source_run, targets=targets, model=args.model,
        model_kwargs={"small_input": True} if args.small_input else {}, budgets=budgets, seeds=seeds,
        methods=methods, epochs=args.epochs, source_epochs=args.source_epochs, lr=args.lr, device=args.device,
        run_dir=args.run_dir)
    print(result.table())
    print(f"\nexperiment directory  {result.path}")
    return 0
