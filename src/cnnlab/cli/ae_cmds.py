"""``cnnlab ae``: autoencoders."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
import typing
from dataclasses import fields
from pathlib import Path

from ..errors import CnnlabError
from .train_cmds import _add_config_options, config_from_args

HELP = {
    "kind": "dense | conv | recurrent | denoising | sparse | vae",
    "body": "for denoising, sparse and vae: dense | conv | recurrent (default conv)",
    "latent_dim": "size of the code (the bottleneck)",
    "noise": "corrupt training inputs: gaussian:L | salt-pepper:L | mask:L | shift:L (denoising: gaussian:0.3)",
    "topk": "sparse: keep only the k largest code activations (sparse default: latent_dim / 4)",
    "sparsity_l1": "sparse: L1 penalty on the (ReLU) code", "sparsity_kl": "sparse: KL penalty on sigmoid codes",
    "sparsity_target": "sparse: the activation rate the KL penalty aims at",
    "beta": "vae: weight of the KL term", "kl_warmup": "vae: epochs over which the KL weight rises to beta",
    "likelihood": "bernoulli (cross-entropy) | gaussian (squared error)",
    "rnn_hidden": "recurrent: state size", "cell": "recurrent: gru | lstm",
}


def _add_ae_options(p: argparse.ArgumentParser) -> None:
    from ..train.config import AEConfig

    defaults = AEConfig()
    hints = typing.get_type_hints(AEConfig)
    for f in fields(AEConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        base = next((t for t in typing.get_args(hints[f.name]) if t is not type(None)), hints[f.name]) \
            if typing.get_args(hints[f.name]) else hints[f.name]
        p.add_argument(flag, type=base if base in (int, float) else str, default=None,
                       help=HELP[f.name] + (f" (default: {default})" if default is not None else ""),
                       metavar={int: "N", float: "X"}.get(base, "NAME"))


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    ae = sub.add_parser("ae", help="autoencoders: train (dense, conv, recurrent, denoising, sparse, vae)",
                        formatter_class=fmt, description="Autoencoders, trained with the same engine as classifiers.",
                        epilog="examples:\n  cnnlab ae train --kind conv --data digits --latent-dim 16\n"
                               "  cnnlab ae train --help")
    ae.set_defaults(func=_no_command)
    ae_sub = ae.add_subparsers(title="commands", metavar="COMMAND", parser_class=type(ae))
    p = ae_sub.add_parser(
        "train", formatter_class=fmt, help="train an autoencoder and write its run directory",
        description="Train an autoencoder; writes config.yaml, metrics.csv, results.json (MSE, PSNR, SSIM; the ELBO\n"
                    "for a VAE), checkpoints, reconstruction grids and report.html. Takes the options of\n"
                    "'cnnlab train' (epochs, batch size, learning rate, seed, --run-dir, --resume, ...).",
        epilog=textwrap.dedent("""\
            examples:
              cnnlab ae train --kind conv --data digits --latent-dim 16
              cnnlab ae train --kind denoising --data photos --noise gaussian:0.3
              cnnlab ae train --kind sparse --body dense --data digits --latent-dim 64 --topk 8
              cnnlab ae train --kind vae --data digits --latent-dim 8 --kl-warmup 5
              cnnlab ae train --kind recurrent --cell lstm --data digits
              cnnlab ae train --resume runs/conv_ae-digits-20261125-101500 --epochs 60"""),
    )
    p.add_argument("--config", default=None, help="a config.yaml to start from (options given here override it)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an autoencoder run")
    _add_config_options(p)
    _add_ae_options(p)
    p.set_defaults(func=cmd_ae_train)


def _no_command(args: argparse.Namespace) -> int:
    raise CnnlabError("choose a command: cnnlab ae train (see 'cnnlab ae --help')")


def cmd_ae_train(args: argparse.Namespace) -> int:
    from ..inspect import format_table
    from ..train import TrainConfig, fit
    from ..train.config import AEConfig

    given = {f.name: getattr(args, f.name) for f in fields(AEConfig) if getattr(args, f.name) is not None}
    if args.resume:
        if args.config:
            raise CnnlabError("--resume takes its configuration from the run; drop --config")
        base = TrainConfig.load(Path(args.resume) / "config.yaml")
        if base.autoencoder is None:
            raise CnnlabError(f"'{args.resume}' is not an autoencoder run; continue it with cnnlab train --resume")
        changed = [k for k in given if given[k] != getattr(base.autoencoder, k)]
        changed += [k for k in ("data", "seed", "image_size", "run_dir")
                    if getattr(config_from_args(args, base), k) != getattr(base, k)]
        if changed:
            raise CnnlabError(f"--resume continues the run as it was configured; it cannot change "
                              f"{', '.join(changed)} (start a new run instead)")
        config = config_from_args(args, base)
    else:
        base = TrainConfig.load(args.config).replace(run_dir=None) if args.config else TrainConfig()
        config = config_from_args(args, base)
        a = dataclasses.replace(base.autoencoder or AEConfig(), **given)
        # autoencoders: no label smoothing to speak of, pixels are the targets; name runs by the kind
        config = config.replace(autoencoder=a, model=f"{a.kind}_ae")
        if args.augment is None and not args.config:
            config = config.replace(augment=False)  # the target is the input: shifting it only makes it harder
    result = fit(config, resume=args.resume)
    t = result.test
    rows = [["test mse", f"{t['mse']:.5f}"], ["test psnr", f"{t['psnr']:.2f} dB"], ["test ssim", f"{t['ssim']:.4f}"]]
    if "elbo" in t:
        rows += [["test elbo", f"{t['elbo']:.2f} nats/image"], ["test kl", f"{t['kl']:.2f} nats/image"]]
    rows += [["active code units", f"{100 * t['active']:.1f}%"], ["test images", t["count"]],
             ["epochs", len(result.history)], ["run directory", str(result.run_dir)]]
    print(format_table(["result", "value"], rows))
    return 0
