"""Command-line options generated from the fields of config and options dataclasses.

Each field declares its help, type, choices and range once (:func:`cnnlab._options.option`); here it becomes an
argparse option whose value is parsed and checked before the command runs (a bad value is one line naming the
flag, exit code 2), and whose help shows what it takes and its default. A training command starts from its
kind's defaults, then ``--config FILE``, then the options given; ``--resume`` starts from the run's own config
and may change only what does not define the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import warnings
from pathlib import Path
from typing import Any

from .._options import Spec, specs
from ..errors import CnnlabError


def _converter(spec: Spec):
    def convert(text: str):
        try:
            return spec.parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = spec.describe()  # what argparse names in its own messages
    return convert


def add_option(parser: argparse.ArgumentParser, spec: Spec, default: Any = None) -> None:
    """One option for ``spec``; ``default`` is what the help shows (the value itself stays None: not given)."""
    default = spec.meta.get("unset") if default is None else default
    shown = "" if default is None or default is False or default in ([], "") else \
        f"; default: {','.join(map(str, default)) if isinstance(default, list) else default}"
    if spec.type is bool:
        said = default if isinstance(default, str) else "on" if default else "off"
        parser.add_argument(spec.flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=None,
                            help=f"{spec.help} (default: {said})")
        return
    detail = "" if spec.type is str and not (spec.meta.get("choices") or spec.meta.get("pattern")) else spec.describe()
    shown = shown[2:] if not detail else shown
    metavar = spec.meta.get("metavar") or {int: "N", float: "X", list: "LIST"}.get(spec.type, "NAME")
    parser.add_argument(spec.flag, dest=spec.name, type=_converter(spec), default=None, metavar=metavar,
                        help=f"{spec.help} ({detail}{shown})" if detail or shown else spec.help)


def add_options(parser: argparse.ArgumentParser, cls: type, defaults: Any = None, skip: tuple[str, ...] = ()
                ) -> None:
    """An option per command-line field of the dataclass ``cls``; the help shows ``defaults``' values."""
    defaults = defaults if defaults is not None else cls()
    bases = [c for c in cls.__mro__ if dataclasses.is_dataclass(c)]  # the class itself first, RunConfig last

    def declared(spec: Spec) -> int:  # the most basic class that has the option: its own options come first
        return max(i for i, c in enumerate(bases) if spec.name in {f.name for f in dataclasses.fields(c)})

    for s in sorted(specs(cls), key=declared):
        if s.meta.get("cli") and s.name not in skip:
            add_option(parser, s, getattr(defaults, s.name))


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line."""
    return {s.name: getattr(args, s.name) for s in specs(cls) if getattr(args, s.name, None) is not None}


def options_from(args: argparse.Namespace, cls: type) -> Any:
    """An options dataclass from the command line (its defaults for what was not given)."""
    return cls(**given(args, cls))


# --- training commands ------------------------------------------------------------------------------------------

def add_run_options(parser: argparse.ArgumentParser, cls: type, model_args: bool = False) -> None:
    """``--config``, ``--resume`` and every option of the config class ``cls``; ``--model-arg`` and
    ``--small-input`` with ``model_args``."""
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="a config.yaml to start from (options given here override it)")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run from its last checkpoint")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train in N processes on this machine with DistributedDataParallel, as torchrun "
                             "--nproc_per_node N would (one per GPU, or a share of the CPU cores each; the "
                             "global batch is N x --batch-size)")
    parser.set_defaults(distributed_ok=True)  # a command torchrun may start (cnnlab._dispatch refuses the others)
    add_options(parser, cls)
    if model_args:
        parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                            help="an argument of the model builder, e.g. small_input=true or width_mult=0.5 "
                                 "(repeatable)")
        parser.add_argument("--small-input", action="store_true", help="shortcut for --model-arg small_input=true")


def _model_kwargs(args: argparse.Namespace, base: dict) -> dict:
    import yaml

    kwargs = dict(base)
    for item in getattr(args, "model_arg", []) or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CnnlabError(f"--model-arg '{item}' is not KEY=VALUE (example: --model-arg width_mult=0.5)")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, str):  # YAML 1.1 leaves 1e-3 as text: the number it reads as
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        kwargs[key.strip()] = parsed
    if getattr(args, "small_input", False):
        kwargs["small_input"] = True
    return kwargs


def _name(cls: type):
    """How a message on the command line names an option: by its flag."""
    flags = {s.name: s.flag for s in specs(cls)}
    return lambda key: flags.get(key, key)


def run_config(args: argparse.Namespace, cls: type) -> Any:
    """The config a training command runs: ``cls``'s defaults, then ``--config``, then the options given;
    ``--resume`` starts from the run's own config instead and refuses to change what defines the run."""
    from ..train import RunConfig, get_kind, saved_config

    changes = given(args, cls)
    if hasattr(args, "model_arg"):
        changes.pop("model_kwargs", None)
    if args.resume:
        if args.config:
            raise CnnlabError("--resume takes its configuration from the run; drop --config")
        base = saved_config(args.resume)
        # what concerns the command (not the run) comes from this command line: a run started with --quiet
        # shows its epochs when continued without it
        base = _without_session(base)
        if type(base) is not cls:  # another kind's run: it continues if only what it has was given
            foreign = [s.flag for s in specs(cls) if s.name in changes and s.name not in
                       {f.name for f in dataclasses.fields(base)}]
            foreign += ["--model-arg"] if getattr(args, "model_arg", None) or getattr(args, "small_input", False) \
                else []
            if foreign:
                raise CnnlabError(f"'{args.resume}' is a run of kind {base.run_kind}, which has no "
                                  f"{', '.join(foreign)}; continue it with {get_kind(base.run_kind).command} "
                                  f"--resume {args.resume}")
            cls = type(base)
        elif hasattr(args, "model_arg"):
            changes["model_kwargs"] = _model_kwargs(args, base.model_kwargs)
        config = dataclasses.replace(base, **changes)
        flags = {s.name: s.flag for s in specs(cls)} | {"model_kwargs": "--model-arg"}
        changed = [flags[k] for k in config.defining_changes(base)] + \
            (["--run-dir"] if "run_dir" in changes and Path(changes["run_dir"]) != Path(base.run_dir or "") else [])
        if changed:  # named as the command line gave them (the engine checks the same, naming keys)
            raise CnnlabError(f"--resume continues the run as it was configured; it cannot change "
                              f"{', '.join(changed)} (start a new run instead)")
    else:
        base = cls()
        if args.config:
            base = RunConfig.load(args.config)
            if type(base) is not cls:
                raise CnnlabError(f"'{args.config}' configures a run of kind {base.run_kind}; use "
                                  f"{get_kind(base.run_kind).command} --config {args.config}")
            if base.run_dir and _names_a_run(Path(base.run_dir), Path(args.config)):
                base = base.replace(run_dir=None)  # a saved run's config starts a new run, in a new directory
            base = _without_session(base)  # what concerns the command that wrote the file (--quiet) is not ours
        if hasattr(args, "model_arg"):
            changes["model_kwargs"] = _model_kwargs(args, base.model_kwargs)
        config = dataclasses.replace(base, **changes)
    resolved = config.resolved()  # what the run will use (a dataset's defaults), checked
    try:
        return resolved.validate(_name(cls))
    except CnnlabError as e:
        if getattr(args, "config", None) and "model" not in changes and str(e).startswith("unknown model"):
            raise CnnlabError(f"config file '{args.config}': model: {e}") from None  # the file's, not a flag's
        name = _name(cls)
        filled = [f"{name(f.name)} {getattr(resolved, f.name)}" for f in dataclasses.fields(config)
                  if getattr(config, f.name) is None and getattr(resolved, f.name) is not None
                  and re.search(rf"(?<![\w-]){re.escape(name(f.name))}\b", str(e))]
        if not filled:
            raise
        raise CnnlabError(f"{e} ({', '.join(filled)}: the default for {config.data}; give it to choose another)"
                          ) from None


def _without_session(config):
    """``config`` with the options that concern a command, not a run (``--quiet``), at their defaults."""
    return dataclasses.replace(config, **{s.name: getattr(type(config)(), s.name) for s in specs(type(config))
                                          if s.meta.get("session")})


def _names_a_run(run_dir: Path, config: Path) -> bool:
    """Whether a config file's ``run_dir`` is a run's own: the folder the file is in (as it was written), or a run
    that exists (the file copied elsewhere, or read from another working directory, where the relative path it
    was written with names another place). Such a config starts a new run, in a new directory."""
    here = config.resolve().parent
    return run_dir.resolve() == here or (here / "meta.json").is_file() or (run_dir / "meta.json").is_file() or \
        (run_dir / "config.yaml").is_file()


def train_command(cls: type):
    """The handler of a training command for the config class ``cls``: train (or continue) the run, then show
    its kind's test metrics."""
    def handler(args: argparse.Namespace) -> int:
        from ..inspect import format_table
        from ..train import distributed, fit, get_kind

        config = run_config(args, cls)  # checked here, before any process is started
        ranks = distributed.from_env()
        if args.nproc < 1:
            raise CnnlabError(f"--nproc must be at least 1, got {args.nproc}")
        if args.nproc > 1 and not ranks.distributed:  # start the job's processes, each running this command
            from ..train.setup import resolve_device

            distributed.check_launch(args.nproc, resolve_device(config.device), config.threads)
            return distributed.launch(args.nproc, args.argv)
        if ranks.distributed and args.nproc not in (1, ranks.world):
            raise CnnlabError(f"--nproc {args.nproc} inside a job of {ranks.world} processes (torchrun's "
                              f"--nproc_per_node x --nnodes): give one or the other")
        if type(config) is not cls and ranks.main:  # another kind's run, resumed: said, as a mistyped directory
            kind = get_kind(config.run_kind)     # would otherwise train on another run without a word
            warnings.warn(f"'{args.resume}' is a run of kind {kind.name} ({kind.command} trains it); it continues "
                          f"as one", stacklevel=1)
        try:
            result = fit(config, resume=Path(args.resume).expanduser() if args.resume else None)
        except BrokenPipeError as e:  # the output closed: a run that stopped, said as such (not a listing)
            e.run_stopped = True
            raise
        if not ranks.main:  # rank 0 reports for the job
            return 0
        rows = get_kind(config.run_kind).result_rows(result.test)
        rows += [("test images", result.test["count"]), ("epochs", len(result.history)),
                 ("run directory", str(result.run_dir))]
        print(format_table(["result", "value"], rows))
        return 0

    return handler
