"""The ``cnnlab`` command line: thin wrappers over the Python API.

Every command is a module here with ``add_parser(subparsers)``; the parser's ``func`` runs it. A
:class:`~cnnlab.errors.CnnlabError` (bad input) prints one line and exits with code 2; Ctrl-C prints
``cnnlab: interrupted`` (exit code 130) and SIGTERM ``cnnlab: terminated`` (exit code 143), never a traceback.
Warnings print as one line each, ``cnnlab: warning: ...``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from contextlib import contextmanager

from .._io import removed_if_unused
from .._signals import signals_held, stop_hearing_children
from ..errors import CnnlabError

# the modules that add commands, imported when the parser is built (inside main, so that Ctrl-C during
# their imports is handled like any other)
COMMANDS = ("train_cmds", "transfer_cmds", "ae_cmds", "segment_cmds", "experiment_cmds", "explain_cmds",
            "export_cmds", "inspect_cmds")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that ``finally`` blocks, the training engine's
    interrupt handling and atomic writes all run before the process exits."""


class _Parser(argparse.ArgumentParser):
    """One line for an error instead of the usage block (still exit code 2), pointing to the help of the command
    that was given; no abbreviated options (``--ep`` is not ``--epochs``: a later option could make it mean
    another)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs, allow_abbrev=False)

    def parse_known_args(self, args=None, namespace=None):
        namespace = namespace if namespace is not None else argparse.Namespace()
        namespace._prog = self.prog  # the innermost command parsed last: its help is the one to point to
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:
        from ..train import distributed

        ranks = distributed.from_env()  # under torchrun every process of a node meets it: the node's first says it
        if distributed.said_by_the_node(ranks):
            self.exit(2)
        who = f"process {ranks.rank} of {ranks.world}: " if not ranks.main else ""
        self.exit(2, f"cnnlab: error: {who}{message} (see '{self.prog} --help')\n")


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
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parsers(sub)
    return parser


def _resume_hint(e: BaseException) -> str:
    """'; continue with: cnnlab ae train --resume DIR' when the stopped run (or experiment) can continue: the
    engine names the command of the run's kind."""
    resume = getattr(e, "resume", None)
    if resume is None:
        return ""
    from ..train import distributed

    command, path = resume
    ranks = distributed.from_env()  # a distributed run continues in as many processes
    more = "" if not ranks.distributed else f" --nproc {ranks.world}" if ranks.world == ranks.local_world else \
        " (with the same torchrun line on every node)"
    return f"; continue with: {command} --resume {shlex.quote(str(path))}{more}"


def _speaks(e: BaseException) -> bool:
    """Whether this process tells the user why it stopped: in a distributed job only rank 0 does (every process
    meets the same bad input or signal); and when ``cnnlab train --nproc`` started the job, a stop caused by
    another process (terminated by the launcher, or a collective that lost its peer) is the launcher's to
    explain, in one line (Ctrl-C and SIGTERM included: it stops every process)."""
    from ..train import distributed

    if not distributed.from_env().main:
        return False
    launched = bool(os.environ.get(distributed.LAUNCH_DIR))
    return not (launched and (isinstance(e, KeyboardInterrupt) or getattr(e, "peer", False)))


def _own_error(e: BaseException) -> bool:
    """An error of a process other than rank 0 that rank 0 does not report: not a lost peer, not rank 0's own
    failure relayed (see :func:`cnnlab.train.distributed.share`)."""
    return not getattr(e, "peer", False) and not getattr(e, "relayed", False)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = " ".join(str(message).split())  # one line, whatever the message holds
    try:
        print(f"cnnlab: warning: {text}", file=file or sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed: nothing to tell
        pass


def _raise_terminated(signum, frame) -> None:
    # before the stack unwinds: unwinding drops the epoch's DataLoader iterator, whose cleanup joins the workers
    # that the same signal may have killed (torch's SIGCHLD handler then raised in that cleanup, and Python
    # printed its traceback above the one stop line: a flaky CI failure)
    _ignore_worker_deaths()
    raise Terminated()


@contextmanager
def _cli_handlers():
    """SIGTERM raises :class:`Terminated`, warnings print one line; both restored afterwards (``main`` is
    also called in-process, by tests and scripts)."""
    previous_show = warnings.showwarning
    warnings.showwarning = _show_warning
    previous_term = None
    if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
        previous_term = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        warnings.showwarning = previous_show
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


@contextmanager
def _killed_workers_said_once():
    """A DataLoader worker that SIGTERM killed is not reported again by its loader's cleanup. SIGTERM sent to
    the process group can kill a worker first: torch's SIGCHLD handler raises that in the loop (the command then
    says `terminated`), and again in the cleanup of the iterator, which joins the killed workers when the error
    drops it (as late as the end of the ``except`` clause that says the line), where Python would print it as
    a traceback. Afterwards the hook and the SIGCHLD handler are as before, also after a stop (``main`` is
    called in-process too; the console command quiets its own exit: :func:`run`)."""
    previous = sys.unraisablehook

    def unraisable(report) -> None:
        if not (isinstance(report.exc_value, RuntimeError) and _killed_by_sigterm(report.exc_value)
                and _from_data_loading(report)):
            previous(report)

    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = previous
        while _replaced_sigchld:  # the handler a stop replaced (torch's, set by the run's first loader)
            signal.signal(signal.SIGCHLD, _replaced_sigchld.pop())


def _from_data_loading(report) -> bool:
    """Whether an unraisable error came from torch's data loading: by the object reported (a loader's
    ``__del__``), or, where there is none (Python 3.14 names the deallocator in the message instead), by the
    innermost frame of its traceback."""
    tb = report.exc_traceback
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    names = (str(getattr(report.object, "__module__", "") or ""),
             str(tb.tb_frame.f_globals.get("__name__", "")) if tb is not None else "")
    return any(n.startswith("torch.utils.data") for n in names)


def _killed_by_sigterm(error: RuntimeError) -> bool:
    """Whether ``error`` is torch's report of a DataLoader worker that SIGTERM killed."""
    return "DataLoader worker" in str(error) and "killed by signal: Terminated" in str(error)


_replaced_sigchld: list = []  # the SIGCHLD handler a stop set aside, put back when ``main`` returns


def _ignore_worker_deaths() -> None:
    """Stopping anyway: a DataLoader worker that the same signal killed (sent to the whole process group, it
    can reach a worker before the worker installs its own handler) must not add torch's "worker killed by
    signal" traceback when the stopped loader is cleaned up; nor may a loader's iterator that the signal
    interrupted while it was being built add the traceback of its ``__del__`` (an AttributeError on a field its
    ``__init__`` never set)."""
    replaced = stop_hearing_children()
    if not _replaced_sigchld and callable(replaced):
        _replaced_sigchld.append(replaced)
    default = sys.unraisablehook
    if getattr(default, "ignores_worker_deaths", False):  # the signal's handler set it already
        return

    def hook(unraisable) -> None:
        if not _from_data_loading(unraisable):
            default(unraisable)

    hook.ignores_worker_deaths = True
    sys.unraisablehook = hook


def _dispatch(argv: Sequence[str] | None, freeze_imports: bool) -> int:
    if freeze_imports:
        gc.disable()
    try:
        with signals_held():  # an exception inside a C extension's initialisation (numpy's) would be an ImportError
            parser = build_parser()
    finally:
        if freeze_imports:
            gc.freeze()
            gc.enable()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # named in the help of the command they were given to
            _Parser(prog=args._prog).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help (0) or a bad option (2, one line already printed): a code, as main returns
        return e.code if isinstance(e.code, int) else 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given (a command may run itself again)
    if not hasattr(args, "func"):
        print("cnnlab: error: choose a command (see 'cnnlab --help')", file=sys.stderr)
        return 2
    if not getattr(args, "distributed_ok", False) and not args._prog.startswith("cnnlab experiment"):
        from ..train import distributed

        if distributed.from_env().distributed:  # each process would do the same work and print it again
            raise CnnlabError(f"{args._prog} runs in one process; run it without torchrun (torchrun and --nproc "
                              f"are for the training commands: cnnlab train, transfer, ae train, segment train)")
    return args.func(args) or 0


def main(argv: Sequence[str] | None = None, freeze_imports: bool = False) -> int:
    """Run one command; return its exit code (0, 2 for bad input, 130 interrupted, 143 terminated; 1 and 75 for a
    distributed job that lost a process: see :mod:`cnnlab.train.distributed`).

    ``freeze_imports`` is the console command's: the garbage collector stays off while the commands' modules
    import (torch alone makes some 180,000 objects that live as long as the process, and the collector would walk
    them again and again), then ``gc.freeze`` sets them aside, so that neither later collections nor the
    interpreter's teardown walk them: 0.4 s of the 5-s default training run. Not for a caller that goes on
    after the command: what it sets aside is never collected."""
    with _killed_workers_said_once():
        return _command(argv, freeze_imports)


def _command(argv: Sequence[str] | None, freeze_imports: bool) -> int:
    try:
        with _cli_handlers(), removed_if_unused():
            return _dispatch(argv, freeze_imports)
    except BrokenPipeError as e:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if getattr(e, "resume", None) is None and not getattr(e, "run_stopped", False):  # a listing: stop quietly
            return 0
        # a run or an experiment stopped before its end: it keeps its last checkpoint, and says so (stderr is open)
        hint = _resume_hint(e) or " before its first epoch ended (nothing to continue)"
        what = "experiment" if str((getattr(e, "resume", None) or ("",))[0]).startswith("cnnlab experiment") else "run"
        try:
            print(f"cnnlab: the output was closed (broken pipe), so the {what} stopped{hint}", file=sys.stderr,
                  flush=True)
        except OSError:  # stderr went into the same pipe (2>&1): nothing can be said, the exit code says it
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
        return 128 + int(signal.SIGPIPE)
    except CnnlabError as e:
        if _speaks(e):
            print(f"cnnlab: error: {e}{_resume_hint(e)}", file=sys.stderr, flush=True)
            if os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
                from ..train import distributed

                distributed.told(distributed.from_env())
        elif getattr(e, "relayed", False) and not getattr(e, "peer", False):  # rank 0's error: it says it
            from ..train import distributed

            distributed.told(distributed.from_env(), str(e))
        elif _own_error(e):  # a process other than rank 0 that failed on its own
            from ..train import distributed

            ranks = distributed.from_env()
            if not distributed.said_by_the_node(ranks) and not distributed.report_error(ranks, str(e)):
                print(f"cnnlab: error: process {ranks.rank} of {ranks.world}: {e}", file=sys.stderr)
        if getattr(e, "peer", False):  # not bad input: another process of a distributed job stopped
            from ..train.distributed import PEER_EXIT

            return PEER_EXIT
        return 2
    except Terminated as e:
        _ignore_worker_deaths()
        if _speaks(e):
            print(f"cnnlab: terminated{_resume_hint(e)}", file=sys.stderr)
        return 128 + int(signal.SIGTERM)
    except RuntimeError as e:
        # SIGTERM sent to the whole process group can kill a DataLoader worker, and torch's SIGCHLD handler
        # report it, before this process runs its own SIGTERM handler: the same stop, seen from the worker
        if not _killed_by_sigterm(e):
            raise
        _ignore_worker_deaths()
        print(f"cnnlab: terminated{_resume_hint(e)}", file=sys.stderr)
        return 128 + int(signal.SIGTERM)
    except KeyboardInterrupt as e:
        _ignore_worker_deaths()
        if _speaks(e):
            print(f"cnnlab: interrupted{_resume_hint(e)}", file=sys.stderr)
        return 128 + int(signal.SIGINT)


def run() -> None:
    """The console entry point: ``sys.exit(main())``; a second Ctrl-C while exiting stays quiet too."""
    try:
        # not in a process of a distributed job: with the freeze, one of 12 two-process runs under load aborted at
        # exit ("terminate called without an active exception"), none of 12 without it
        code = main(freeze_imports=int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1)
    except KeyboardInterrupt:
        code = 128 + int(signal.SIGINT)
    if code in (128 + int(signal.SIGINT), 128 + int(signal.SIGTERM)):
        _ignore_worker_deaths()  # the stopped loaders may be cleaned up as the interpreter exits
    from ..train.distributed import PEER_EXIT

    if code == PEER_EXIT or (code == 2 and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1):
        # a process of a distributed job whose peer is gone, or that stopped on bad input (maybe its peer's,
        # which then leaves at once): its process group cannot be torn down, and the interpreter's own teardown
        # of it can abort in C++ ("terminate called without an active exception", SIGABRT), hiding the job's one
        # line behind a second one. Its files are written and closed: leave now.
        import multiprocessing

        for child in multiprocessing.active_children():  # data-loading workers
            child.terminate()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
