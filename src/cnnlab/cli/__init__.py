"""The ``cnnlab`` command line: thin wrappers over the Python API.

Every command is a module here with ``add_parser(subparsers)``; the parser's ``func`` runs it. A
:class:`~cnnlab.errors.CnnlabError` (bad input) prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import CnnlabError
from . import inspect_cmds, train_cmds

COMMANDS = (train_cmds, inspect_cmds)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of the usage block, still exit code 2
        self.exit(2, f"cnnlab: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="cnnlab",
        description="Understand, train and reuse convolutional networks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  cnnlab train\n  cnnlab models\n  cnnlab summary resnet18 --input-size 3x224x224\n"
               "  cnnlab shape --input 224x224x3 --kernel 3 --filters 32\n\n"
               "Run 'cnnlab COMMAND --help' for the options and examples of a command.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        print("cnnlab: error: choose a command (see 'cnnlab --help')", file=sys.stderr)
        return 2
    try:
        return args.func(args) or 0
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except CnnlabError as e:
        print(f"cnnlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())
