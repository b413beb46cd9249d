"""A trained model as an ONNX file, checked before it is handed over.

``export_run(run)`` writes each part of a run's model (a classifier's network; an autoencoder's encoder,
decoder and whole; a segmentation network) that its kind names (:meth:`Kind.export_parts`). Every file is

- written by ``torch.onnx.export``, atomically: first with the TorchScript-based exporter, which takes
  seconds (an adaptive average pool whose output does not divide its input, which it cannot express, is
  exported as the two averaging matrix products it is at the exported size), and where that one still cannot
  express an operation with the ``torch.export``-based one, which takes several times longer;
- checked with ``onnx.checker``;
- run with onnxruntime on a random batch, whose outputs must equal PyTorch's (``allclose``), or the file is
  not kept;
- labelled with what a user needs to apply it: the kind of run, the part, the classes and the run's
  preprocessing (resize/pad and normalisation, as JSON in the model's ``metadata_props``), with a SHA-256 of the
  weights it was exported from and one of the weights the file itself holds (its initializers).

The model takes images already preprocessed as the run prepared them; ``cnnlab predict RUN --onnx FILE``
does that preprocessing and runs the file, so that the file a user ships can be checked against the run, and
its weights against those it was exported with.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import numbers
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_write, removed_if_unused
from ..errors import CnnlabError

OPSET = 17
OPSETS = range(7, 24)  # the opsets export takes: those torch.onnx.export writes (7 to 23)
RUNNING = "running an ONNX file (--onnx)"


def _require(what: str = "ONNX export", needs: tuple[str, ...] = ("onnx", "onnxruntime"), why: str = ""):
    """The modules ``needs`` names, imported; for ``what``, one line naming those of them that are missing, if
    any (``why``: what they are needed for, where ``what`` does not say)."""
    import importlib

    modules, missing = [], []
    for name in needs:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise CnnlabError(f"{what} needs {' and '.join(missing)}{why}: pip install 'cnnlab[onnx]'")
    return modules


def _first_line(e: BaseException, limit: int = 300) -> str:
    """The first line of an error's message, without the exporter's plea for pull requests."""
    text = str(e).strip().split(" Please feel free to request support")[0]
    return text.splitlines()[0][:limit] if text else type(e).__name__


def _checked_opset(opset) -> int:
    """``opset`` as an int (a NumPy integer too), if export takes it; else one line."""
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or opset not in OPSETS:
        raise CnnlabError(f"opset must be between {OPSETS[0]} and {OPSETS[-1]}, got {opset!r}")
    return int(opset)


def _session(ort, path: str):
    """onnxruntime's session of ``path`` on the CPU, its own log quiet: it logs a failing node at error level
    (a coloured line) before raising, and cnnlab says in one line what failed."""
    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnx_session(path: str | Path):
    """An onnxruntime session of ``path`` on the CPU; a file that is not ONNX is a one-line error."""
    (ort,) = _require(RUNNING, ("onnxruntime",))
    if not Path(path).exists():
        raise CnnlabError(f"ONNX file '{path}' does not exist")
    if Path(path).is_dir():
        raise CnnlabError(f"'{path}' is a directory, not an ONNX file (cnnlab export writes RUN/export/*.onnx)")
    try:
        return _session(ort, str(path))
    except Exception as e:  # onnxruntime raises its own exception types, with long messages
        raise CnnlabError(f"'{path}' is not an ONNX model onnxruntime can run: {_first_line(e, 200)}") from None


def onnx_metadata(path: str | Path, session=None) -> dict | None:
    """The ``cnnlab`` metadata an exported file carries (None for a file from elsewhere, which carries none);
    ``session``, the file's session when the caller has one, spares loading the model again."""
    props = (session or onnx_session(path)).get_modelmeta().custom_metadata_map
    if "cnnlab" not in props:
        return None
    try:
        meta = json.loads(props["cnnlab"])
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise CnnlabError(f"'{path}' carries cnnlab metadata that is not a JSON object; export the run again "
                          f"(cnnlab export RUN)")
    return meta


def run_exported(run, path: str | Path, x: torch.Tensor, kinds: tuple[str, ...], takes: str) -> torch.Tensor:
    """The outputs of the exported file ``path`` for images ``x`` prepared as ``run`` prepares them, for a
    command that takes a file exported from a run of one of ``kinds`` (``takes`` says so: "predict takes a
    classifier's model.onnx"). A file of another kind of run, of other classes, for another input or another
    preprocessing, with empty cnnlab metadata, or that does not take one batch of float32 images, is a one-line
    error, as is a failure inside onnxruntime. A warning, and the file still runs: weights changed since the
    export; weights other than the run's (another run, or the other checkpoint), or none recorded; no cnnlab
    metadata. A file exported without ``--dynamic-batch`` takes its own batch size: the images go through it
    one at a time."""
    from .kinds import get_kind, list_kinds

    session = onnx_session(path)
    meta = onnx_metadata(path, session)
    if meta == {}:
        raise CnnlabError(f"'{path}' carries empty cnnlab metadata ({{}}): nothing says what it was exported from; "
                          f"export the run again (cnnlab export RUN)")
    if meta is not None and meta.get("kind") not in kinds:
        kind = meta.get("kind")
        # a kind's article names its model ('a segmentation network'); a run of it reads without 'network'
        what = f"{get_kind(kind).article.removesuffix(' network')} run" if kind in list_kinds() else \
            f"a run of kind {kind!r}"
        part = f" (its {meta['part']})" if meta.get("part") else ""
        raise CnnlabError(f"'{path}' was exported from {what}{part}, not from {get_kind(kinds[0]).article}; "
                          f"{takes}")
    if meta is not None and meta.get("classes") != run.meta["classes"]:
        raise CnnlabError(f"'{path}' was exported from a run of the classes {meta.get('classes')}, not of this "
                          f"run's {run.meta['classes']}")
    if meta is not None and meta.get("preprocess") != run.meta["preprocess"]:
        raise CnnlabError(f"'{path}' was exported from a run that prepares images otherwise ({meta.get('run')}); "
                          f"export this run (cnnlab export {run.path}), or use the run the file came from")
    inputs, output = session.get_inputs(), session.get_outputs()[0]
    if len(inputs) != 1:
        raise CnnlabError(f"'{path}' takes {len(inputs)} inputs ({', '.join(i.name for i in inputs) or 'none'}), "
                          f"not one batch of images")
    if inputs[0].type != "tensor(float)":
        raise CnnlabError(f"'{path}' takes inputs of {inputs[0].type}, not float32 images (tensor(float)) as "
                          f"the run prepares them")
    if output.type != "tensor(float)":
        raise CnnlabError(f"'{path}' gives outputs of {output.type}, not float32 scores (tensor(float))")
    shape = inputs[0].shape
    if list(shape[1:]) != list(x.shape[1:]):
        raise CnnlabError(f"'{path}' takes inputs of {shape}, but the run prepares images as {list(x.shape[1:])}")
    # what still runs, with a warning (a file exported before cnnlab recorded its initializers' SHA-256 has none)
    if meta is None:
        warnings.warn(f"'{path}' carries no cnnlab metadata (it was not written by cnnlab export): it is run on "
                      f"this run's preprocessing, which nothing checks it was made for", stacklevel=3)
    elif "initializers" in meta and meta["initializers"] != file_weights_digest(path):
        warnings.warn(f"the weights in '{path}' were changed since it was exported (they are not those whose "
                      f"SHA-256 it recorded then): the predictions are the file's own, not the run's", stacklevel=3)
    elif not isinstance(meta.get("weights"), str):
        warnings.warn(f"'{path}' records no SHA-256 of the weights it was exported from: nothing checks that they "
                      f"are those of {run.file}", stacklevel=3)
    elif meta["weights"] != weights_digest(run.model):
        warnings.warn(f"'{path}' holds other weights than {run.file} (it was exported from {meta.get('run')}): "
                      f"the predictions are the file's own", stacklevel=3)

    def batch(b: torch.Tensor) -> torch.Tensor:
        try:
            out = session.run(None, {inputs[0].name: b.contiguous().numpy()})[0]
        except Exception as e:  # onnxruntime's own exception types: a node the file cannot run on this batch
            raise CnnlabError(f"'{path}' fails in onnxruntime on a batch of {list(b.shape)}: {_first_line(e)}"
                              ) from None
        return torch.from_numpy(out)

    if isinstance(shape[0], int):  # exported without --dynamic-batch
        return torch.cat([batch(x[i:i + 1].expand(shape[0], *x.shape[1:]))[:1] for i in range(len(x))])
    return batch(x)


def weights_digest(module: nn.Module) -> str:
    """A SHA-256 of ``module``'s state dict (names, dtypes, shapes and values), so that a file exported from a
    run can be told from one exported from other weights. Written here rather than hashing the checkpoint
    file: an export may come from a run's best or last weights, or from a checkpoint copied elsewhere."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_weights_digest(path: str | Path) -> str:
    """A SHA-256 of the weights the ONNX file ``path`` holds: its graph's initializers and constants (names, data
    types, shapes and values). Read from the graph alone, so the metadata the digest is recorded in does not
    change it; a file whose weights were edited after export, or whose bytes rotted, gives another."""
    (onnx,) = _require(RUNNING, ("onnx",), " to check the weights the file holds against those it was exported with")
    import numpy as np
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    tensors = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            tensors.update({f"{node.output[0]}:{a.name}": a.t for a in node.attribute
                            if a.type == onnx.AttributeProto.TENSOR})
    h = hashlib.sha256()
    for name, t in sorted(tensors.items()):
        h.update(f"{name}|{t.data_type}|{tuple(t.dims)}|".encode())
        if t.data_type == onnx.TensorProto.STRING:
            h.update(b"\0".join(t.string_data))
        else:  # the values whichever field holds them (raw bytes or typed lists), little-endian
            values = numpy_helper.to_array(t)
            values = values.astype(values.dtype.newbyteorder("<"), copy=False).reshape(-1)
            h.update(np.ascontiguousarray(values).view(np.uint8))  # the bytes in place: no copy of 500 MB
    return h.hexdigest()


def export_module(module: nn.Module, input_shape: tuple[int, ...], path: str | Path, opset: int = OPSET,
                  dynamic_batch: bool = False, metadata: dict | None = None, batch: int = 2,
                  label: str | None = None) -> float:
    """Export ``module`` (in eval mode, on the CPU) for inputs of ``(batch, *input_shape)`` to ``path``, check
    the file and compare onnxruntime's outputs with PyTorch's on a random batch; returns the largest
    difference relative to the outputs' scale. Without ``dynamic_batch`` the file takes batches of ``batch``.
    ``metadata``, when given, is stored as the file's cnnlab metadata with the SHA-256 of the file's own weights
    added (``initializers``: :func:`file_weights_digest`). The file is written atomically, with the permissions
    of any new file (the umask's). ``label`` names the module in errors (its class's name by default)."""
    opset = _checked_opset(opset)
    onnx, ort = _require()
    module = module.eval().cpu()
    label = label or type(module).__name__
    x = torch.randn(batch, *input_shape)
    error = 0.0

    def write(tmp: str) -> None:
        nonlocal error
        try:
            want, pool_sizes = _reference(module, x)
            _export(module, x, tmp, opset, dynamic_batch, pool_sizes, label)
            if metadata is not None:  # the file's own weights, as written, before the metadata joins them
                meta = {**metadata, "initializers": file_weights_digest(tmp)}
                _append_metadata(tmp, {"cnnlab": json.dumps(meta)})
            onnx.checker.check_model(tmp)  # read by onnx's C++ checker: no Python copy of the model
            got = torch.from_numpy(_session(ort, tmp).run(None, {"input": x.numpy()})[0])
        except CnnlabError:
            raise
        except Exception as e:  # the exporter's, the checker's and onnxruntime's errors: one line naming what failed
            raise CnnlabError(f"{label} cannot be exported to ONNX opset {opset}: {_first_line(e)}") from None
        scale = want.abs().max().item() or 1.0
        error = (got - want).abs().max().item() / scale
        if not error < 1e-4:
            other = f"; try another --opset (the default is {OPSET})" if opset != OPSET else ""
            raise CnnlabError(f"the ONNX export of {label} gives other outputs than PyTorch "
                              f"(largest difference {error:.2g} of the outputs' scale); the file was not written"
                              f"{other}")

    atomic_write(path, write)
    return error


def _append_metadata(path: str, props: dict[str, str]) -> None:
    """Add ``props`` to the ``metadata_props`` of the ONNX file at ``path`` by appending a ModelProto that holds
    only them: concatenated protobuf messages parse as their merge, and a repeated field's entries are appended.
    Loading the model and saving it again took 6-9 s for wide_resnet101_2's 500 MB on the AMD EPYC."""
    onnx, _ = _require()
    extra = onnx.ModelProto()
    for key, value in props.items():
        entry = extra.metadata_props.add()
        entry.key, entry.value = key, value
    with open(path, "ab") as f:
        f.write(extra.SerializeToString())


@contextlib.contextmanager
def _exporter_output_dropped():
    """The exporters' own output, dropped: the legacy exporter prints its whole graph to the process's stdout
    (from C++) when it fails, and the dynamo exporter logs version-conversion tracebacks that it recovers
    from. cnnlab says in one line what failed, if anything does."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "torch.onnx", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            for fd in saved:
                os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                for fd, copy in saved.items():
                    os.dup2(copy, fd)
    finally:
        for copy in saved.values():
            os.close(copy)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


class _AdaptiveAvgPoolAsMatmul(nn.Module):
    """``AdaptiveAvgPool2d`` at one input size as two constant averaging matrices (each row: one output cell's
    window, as PyTorch places it), a form the TorchScript-based exporter writes where the pool's output size does
    not divide its input's (AlexNet's and ZFNet's 6x6 head pool after a small input's 3x3 or 4x4 map), so that
    those models do not need the several-times slower ``torch.export``-based exporter."""

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("rows", self.windows(in_size[0], out_size[0]))
        self.register_buffer("cols", self.windows(in_size[1], out_size[1]).t().contiguous())

    @staticmethod
    def windows(n_in: int, n_out: int) -> torch.Tensor:
        m = torch.zeros(n_out, n_in)
        for i in range(n_out):
            lo, hi = (i * n_in) // n_out, -(-(i + 1) * n_in // n_out)
            m[i, lo:hi] = 1.0 / (hi - lo)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows @ x @ self.cols  # (oh, H) @ (N, C, H, W) @ (W, ow) -> (N, C, oh, ow)


def _reference(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, tuple[int, int]]]:
    """PyTorch's output for ``x``, which the file's must equal, and the input size (height, width) of each
    adaptive average pool in the same forward pass, for :func:`_pools_as_matmuls`."""
    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str):
        def hook(m, args) -> None:  # returns nothing: a value would replace the pool's input
            sizes.setdefault(name, tuple(args[0].shape[-2:]))
        return hook

    hooks = [m.register_forward_pre_hook(record(name)) for name, m in module.named_modules()
             if isinstance(m, nn.AdaptiveAvgPool2d)]
    try:
        with torch.no_grad():
            out = module(x).float()
    finally:
        for h in hooks:
            h.remove()
    return out, sizes


@contextlib.contextmanager
def _pools_as_matmuls(module: nn.Module, sizes: dict[str, tuple[int, int]]):
    """``module`` with each adaptive average pool whose output does not divide its input (``sizes``: input sizes
    by the pools' names, from :func:`_reference`) replaced by :class:`_AdaptiveAvgPoolAsMatmul` for the
    duration, then put back."""
    pools = {name: m for name, m in module.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)}
    swapped = []
    for name, size in sizes.items():
        out = pools[name].output_size
        out = tuple(o or i for o, i in zip((out, out) if isinstance(out, int) else out, size, strict=True))
        if size[0] % out[0] or size[1] % out[1]:
            parent, _, child = name.rpartition(".")
            owner = module.get_submodule(parent)
            setattr(owner, child, _AdaptiveAvgPoolAsMatmul(size, out))
            swapped.append((owner, child, pools[name]))
    try:
        yield
    finally:
        for owner, child, pool in swapped:
            setattr(owner, child, pool)


def _export(module: nn.Module, x: torch.Tensor, path: str, opset: int, dynamic_batch: bool,
            pool_sizes: dict[str, tuple[int, int]], label: str) -> None:
    names = {"input_names": ["input"], "output_names": ["output"], "opset_version": opset}
    with warnings.catch_warnings(), torch.no_grad(), _exporter_output_dropped():
        warnings.simplefilter("ignore")  # the exporters' notes on tracing, not the user's concern
        try:
            axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
            with _pools_as_matmuls(module, pool_sizes):
                torch.onnx.export(module, (x,), path, dynamo=False, dynamic_axes=axes, **names)
            return
        except Exception as e:
            first = e
        try:
            shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
            program = torch.onnx.export(module, (x,), dynamo=True, dynamic_shapes=shapes, verbose=False, **names)
            program.save(path)
        except Exception:
            raise first from None
    # the torch.export-based exporter writes the opset it can (18) where it cannot convert to the one asked for,
    # without a word: a file for an older runtime would be one that runtime cannot load
    onnx, _ = _require()
    written = next((o.version for o in onnx.load(path, load_external_data=False).opset_import
                    if o.domain in ("", "ai.onnx")), None)
    if written != opset:
        raise CnnlabError(f"{label} cannot be exported to ONNX opset {opset}: {_first_line(first)} "
                          f"(and the torch.export-based exporter writes opset {written}); try --opset {written}")


def export_run(run, out: str | Path | None = None, opset: int = OPSET, dynamic_batch: bool = False,
               parts: str | list[str] | None = None) -> list[Path]:
    """Export the parts of a run's model (all of them, or ``parts``: a name or a list) to ``out`` (default
    ``RUN/export``) as ``<part>.onnx``; returns the files written. All or none: the parts are written into a
    folder of their own and moved into place once every one has passed its checks, so a part that fails
    leaves no other part's file, nor replaces one already there; a folder this call creates is removed again
    (as a failed command's, from Python too)."""
    opset = _checked_opset(opset)
    _require()
    available = run.kind.export_parts(run)
    wanted = list(dict.fromkeys([parts] if isinstance(parts, str) else parts or available))  # each part once
    unknown = [p for p in wanted if p not in available]
    if unknown:
        raise CnnlabError(f"{run.kind.article} run has no part '{unknown[0]}' to export; its parts: "
                          f"{', '.join(available)}")
    digest = weights_digest(run.model)
    # where the files come from: the run directory, or the checkpoint file outside one, from any working directory
    source = str((run.path if run.path is not None else run.file).resolve())
    with removed_if_unused():  # the folder, if this call creates it, goes again should no file be written there
        folder = run.output_dir("export", out)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
        try:
            for name in wanted:
                module, shape = available[name]
                meta = {"kind": run.kind.name, "part": name, "run": source, "classes": run.meta.get("classes"),
                        "preprocess": run.meta.get("preprocess"), "input_shape": list(shape), "weights": digest}
                label = f"{run.name}'s {name}" if name != "model" else run.name
                export_module(module, shape, staging / f"{name}.onnx", opset, dynamic_batch, meta, label=label)
            for name in wanted:  # every part passed: into place (renames within one folder)
                os.replace(staging / f"{name}.onnx", folder / f"{name}.onnx")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [folder / f"{name}.onnx" for name in wanted]
