"""``cnnlab transfer``."""

from __future__ import annotations

import argparse
import textwrap

from .options import add_run_options, train_command


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..transfer import TransferConfig

    p = sub.add_parser(
        "transfer", help="reuse a trained model for a new task (feature extraction, fine-tuning, ...)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    add_run_options(p, TransferConfig, model_args=True)
    p.set_defaults(func=train_command(TransferConfig))

