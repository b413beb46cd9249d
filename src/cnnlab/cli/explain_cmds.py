"""``cnnlab explain``: see inside a trained network (PNG files); ``cnnlab report``: rebuild a report page."""

from __future__ import annotations

import argparse
import textwrap
import warnings

from ..errors import CnnlabError
from .options import add_options, options_from
from .train_cmds import RunOptions, no_command

RUN_HELP = "a run directory (classifier, transfer, segmentation or autoencoder) or one of its checkpoint files"
SCORED_RUN_HELP = ("a run directory with class scores (classifier, transfer or segmentation) or one of its "
                   "checkpoint files")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..explain.views import CamOptions, MaximizeOptions

    fmt = argparse.RawDescriptionHelpFormatter
    ex = sub.add_parser("explain", help="see inside a trained network: filters, feature maps, CAMs, maximisation",
                        formatter_class=fmt,
                        description="Pictures of what a trained network learned and where it looks, written as PNG\n"
                                    "files into RUN/explain (or --out). Layer names are those of 'cnnlab summary'.",
                        epilog="examples:\n  cnnlab explain filters RUN\n  cnnlab explain cam RUN digit.png\n"
                               "  cnnlab explain VIEW --help")
    ex.set_defaults(func=no_command("explain", "cnnlab explain filters, features, cam, guided or maximize"))
    views = ex.add_subparsers(title="views", metavar="VIEW", parser_class=type(ex))

    def view(name: str, help: str, examples: list[str], run_help: str = RUN_HELP) -> argparse.ArgumentParser:
        p = views.add_parser(name, formatter_class=fmt, help=help, description=help[0].upper() + help[1:] + ".",
                             epilog="examples:\n" + "\n".join(f"  {e}" for e in examples))
        p.add_argument("run", help=run_help)
        add_options(p, RunOptions, skip=("format",))
        p.add_argument("--out", default=None, metavar="DIR", help="where to write the PNG files (default: RUN/explain)")
        return p

    p = view("filters", "the kernels of a convolution as image tiles (colour for RGB inputs)",
             ["cnnlab explain filters RUN", "cnnlab explain filters RUN --layer layer1.0.conv1"])
    p.add_argument("--layer", default=None, metavar="NAME", type=_layer_names,
                   help="a convolution, or a block holding one as .conv (default: the first convolution)")
    p.set_defaults(func=cmd_filters)

    p = view("features", "the feature maps layers produce for an input image",
             ["cnnlab explain features RUN digit.png", "cnnlab explain features RUN a.png b.png --layer layer1,layer3"])
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--layer", action="append", default=None, metavar="NAME", type=_layer_names,
                   help="a layer, or several joined by commas; repeatable (default: the output of each stage)")
    p.set_defaults(func=cmd_features)

    p = view("cam", "class activation maps over input images (Grad-CAM, Grad-CAM++, LayerCAM)",
             ["cnnlab explain cam RUN a.png b.png", "cnnlab explain cam RUN a.png --method layercam --class 7",
              "cnnlab explain cam RUN a.png --method all", "cnnlab explain cam RUN a.png --layer layer3"],
             SCORED_RUN_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    add_options(p, CamOptions)
    _target_options(p)
    p.set_defaults(func=cmd_cam)

    p = view("guided", "guided backpropagation and guided Grad-CAM of input images",
             ["cnnlab explain guided RUN a.png", "cnnlab explain guided RUN a.png --class 3"], SCORED_RUN_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    _target_options(p)
    p.set_defaults(func=cmd_guided)

    p = view("maximize", "inputs synthesised by gradient ascent to excite channels of a layer, or a class",
             ["cnnlab explain maximize RUN --layer features.c1.conv --channels 0-5",
              "cnnlab explain maximize RUN --layer layer2 --channel 17", "cnnlab explain maximize RUN --class 7"])
    p.add_argument("--layer", default=None, metavar="NAME", type=_layer_names,
                   help="the layer whose channels to excite")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--channel", default=None, metavar="K", help="one channel of --layer")
    which.add_argument("--channels", default=None, metavar="LIST", help="channels of --layer, e.g. 0-15 or 0,4,9-11")
    which.add_argument("--class", dest="klass", default=None, metavar="C", help="a class (name or number)")
    add_options(p, MaximizeOptions)
    p.set_defaults(func=cmd_maximize)

    p = sub.add_parser("report", formatter_class=fmt, help="rebuild the report.html of a run or experiment directory",
                       description="Rebuild report.html from what a run (or experiment) directory holds: its results,\n"
                                   "plots and, for a run, the pictures of its network.",
                       epilog=textwrap.dedent("""\
                           examples:
                             cnnlab report runs/lenet5-digits-20261125-101500
                             cnnlab report runs/experiment-transfer-20261125-101500"""))
    p.add_argument("dir", help="a run directory or an experiment directory")
    p.set_defaults(func=cmd_report)


def _target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--class", dest="klass", default=None, metavar="C",
                   help="the class to explain, by name or number (default: each image's predicted class)")
    p.add_argument("--layer", default=None, metavar="NAME", type=_layer_names,
                   help="the layer whose maps are weighed (default: the last stage larger than 1x1)")


def _layer_names(text: str) -> str:
    """A --layer value: module names (several joined by commas, where a view takes several), none empty: an
    empty one (``--layer ""``, a stray comma) fell back to the default layer, or was read as no layer at all."""
    if not all(n.strip() for n in text.split(",")):
        raise argparse.ArgumentTypeError(f"{text!r} holds an empty layer name; give module names such as layer4 "
                                         f"or features.c1.conv (model.named_modules() lists them)")
    return text


def _open(args: argparse.Namespace):
    """The run's network as the views see it, and the folder they write into."""
    from ..run import Run

    run = Run.open(args.run, args.checkpoint)
    return run.kind.explain_subject(run), run.output_dir("explain", args.out)


def _write(pictures, out) -> None:
    """Each picture as ``out/NAME.png``, each file written whole; a folder in the place of one of them is said
    before any is written (the pictures before it were left behind)."""
    from ..viz.images import save_png

    paths = [out / f"{p.name.replace('/', '_')}.png" for p in pictures]
    blocked = next((path for path in paths if path.is_dir()), None)
    if blocked is not None:
        raise CnnlabError(f"'{blocked}' is a folder where a picture goes; move it, or write elsewhere with --out")
    for p, path in zip(pictures, paths, strict=True):
        save_png(p.array, path)
        print(f"{path}  {p.caption}")


def _unique_stems(images: list[str]) -> list[str]:
    """Each image file's stem, made unique with its position where two share one (a/x.png and b/x.png)."""
    from pathlib import Path

    seen: set[str] = set()
    stems = []
    for i, image in enumerate(images):
        stem = Path(image).stem
        stems.append(stem if stem not in seen else f"{stem}-{i}")
        seen.add(stems[-1])
    return stems


def _stems(pictures, images: list[str]) -> None:
    """Name each image's picture after its file: cam-digit.png, not cam-0.png."""
    for p, stem in zip(pictures, _unique_stems(images), strict=True):
        p.name = f"{p.name.rsplit('-', 1)[0]}-{stem}"


def cmd_filters(args: argparse.Namespace) -> int:
    from ..explain.views import filters_view

    subject, out = _open(args)
    _write([filters_view(subject, args.layer)], out)
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from ..explain.views import features_view

    subject, out = _open(args)
    layers = [n.strip() for item in args.layer for n in item.split(",") if n.strip()] if args.layer else None
    xs = [subject.read([image]) for image in args.images]  # every image read before any picture is written
    pictures = []
    for x, stem in zip(xs, _unique_stems(args.images), strict=True):
        for p in features_view(subject, x, layers):
            p.name = f"{p.name}-{stem}"
            pictures.append(p)
    _write(pictures, out)  # every picture drawn before any is written
    return 0


def _class_view(args: argparse.Namespace, view: str):
    """The run's network (which must have class scores), the folder to write into, the class asked for (None:
    each image's predicted one) and the images as the model takes them."""
    subject, out = _open(args)
    subject.need_classes(view)
    target = subject.class_index(args.klass) if args.klass is not None else None
    return subject, out, target, subject.read(args.images)


def cmd_cam(args: argparse.Namespace) -> int:
    from ..explain.views import CamOptions, cam_view

    subject, out, target, x = _class_view(args, "cam")
    pictures, _ = cam_view(subject, x, options_from(args, CamOptions).method, target, args.layer)
    _stems(pictures, args.images)
    _write(pictures, out)
    return 0


def cmd_guided(args: argparse.Namespace) -> int:
    from ..explain.views import guided_view

    subject, out, target, x = _class_view(args, "guided")
    pictures = guided_view(subject, x, target, args.layer)
    _stems(pictures, args.images)
    _write(pictures, out)
    return 0


def cmd_maximize(args: argparse.Namespace) -> int:
    from ..explain import parse_channels, unit_count
    from ..explain.views import MaximizeOptions, maximize_view

    subject, out = _open(args)
    opts = options_from(args, MaximizeOptions)
    # the arguments first: the line that announces the (long) synthesis follows only a valid request
    if args.klass is not None:
        if args.layer is not None:
            raise CnnlabError("--class maximizes a class score; drop --layer (or give --channel/--channels)")
        targets = {"classes": [subject.class_index(args.klass)]}
    else:
        if args.layer is None or (args.channel is None and args.channels is None):
            raise CnnlabError("maximize needs --layer NAME with --channel K or --channels LIST, or --class C")
        flag, text = ("--channel", args.channel) if args.channel is not None else ("--channels", args.channels)
        channels = parse_channels(text, unit_count(subject.model, subject.pixel_shape, args.layer,
                                                   subject.preprocess), flag)
        if flag == "--channel" and len(channels) != 1:
            raise CnnlabError(f"--channel takes one channel, got {text!r}; use --channels for several")
        targets = {"layer": args.layer, "channels": channels, "objective": opts.objective}
    if args.klass is not None and args.objective is not None:
        warnings.warn("--objective concerns channels of a layer; with --class it is ignored", stacklevel=1)
    n = len(targets.get("classes") or targets["channels"])
    print(f"synthesising {n} input{'s' if n > 1 else ''} by {opts.steps} steps of gradient ascent ...", flush=True)
    picture, result = maximize_view(subject, **targets, steps=opts.steps, seed=opts.seed)
    _write([picture], out)
    names = [f"class {subject.class_name(t)}" if args.klass is not None else f"channel {t}" for t in result.targets]
    print("objective reached: " + ", ".join(f"{t}: {v:.3g}" for t, v in zip(names, result.objective.tolist(),
                                                                           strict=True)))
    if result.dead:
        dead = [n for n, t in zip(names, result.targets, strict=True) if t in result.dead]
        warnings.warn(f"{', '.join(dead)} stayed at 0 at every step: no gradient reached the image (a unit after a "
                      f"ReLU that never fired), so {'its picture shows' if len(dead) == 1 else 'their pictures show'}"
                      f" only the smoothing of the random start; maximize the convolution before the activation "
                      f"instead", stacklevel=2)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..run import write_any_report

    print(write_any_report(args.dir))
    return 0
