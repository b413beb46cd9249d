"""``cnnlab export``: every architecture of the zoo as an ONNX file that onnxruntime runs with PyTorch's
outputs; a run's parts (classifier, autoencoder, segmentation network) exported and used by ``predict --onnx``."""

import json
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.models import create_model, list_models
from cnnlab.train.onnx import export_module, onnx_metadata, onnx_session
from tests.conftest import build_filled, one_line_error, run

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")


@pytest.mark.parametrize("name", list_models())
def test_every_architecture_exports_with_pytorchs_outputs(name, tmp_path, capfd):
    model = build_filled(name, num_classes=10, **({} if name == "lenet5" else {"small_input": True}))
    # exported at batch 3 with a dynamic batch axis; export_module itself runs the file with onnxruntime and
    # compares with PyTorch (it raises, and keeps no file, when they differ)
    error = export_module(model, tuple(model.default_input_size), tmp_path / "m.onnx", dynamic_batch=True, batch=3)
    assert error < 1e-4 and (tmp_path / "m.onnx").is_file()
    # the exporters' own chatter is dropped (a failed first export prints its whole graph to the process's stdout;
    # AlexNet's and ZFNet's small-input pooling, once sent to the second exporter, now goes through the first)
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("size, out", [((3, 3), (6, 6)), ((4, 5), (6, 6)), ((7, 9), (3, 4)), ((13, 2), (6, 1))])
def test_adaptive_pooling_is_exported_as_the_averaging_matrices_it_is(size, out, tmp_path):
    """Sizes where the pool's output does not divide its input: written by the TorchScript-based exporter as two
    matrix products, which equal PyTorch's pooling, and the file holds no operation of the other exporter."""
    import onnx

    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.AdaptiveAvgPool2d(out), torch.nn.Flatten())
    assert export_module(model, (2, *size), tmp_path / "m.onnx", dynamic_batch=True) < 1e-6
    ops = {node.op_type for node in onnx.load(tmp_path / "m.onnx").graph.node}
    assert "MatMul" in ops and not any(op.startswith("AdaptiveAvgPool") or op == "Resize" for op in ops), ops
    assert isinstance(model[1], torch.nn.AdaptiveAvgPool2d)  # put back


@pytest.mark.parametrize("name", ["lenet5", "lenet5 channels-last", "googlenet", "googlenet channels-last",
                                  "mobilenet_v2 channels-last", "resnet20 channels-last", "densenet121 channels-last",
                                  "inception_v3 channels-last"])
def test_a_dynamic_batch_file_takes_other_batch_sizes(name, tmp_path):
    # channels-last: the layout fit() leaves the declared models in on a CPU (LeNet-5's C5 is a matrix product of
    # flattened maps, which a traced reshape could fix to the export's batch size)
    name, _, layout = name.partition(" ")
    model = create_model(name, num_classes=10, **({} if name == "lenet5" else {"small_input": True})).eval()
    if layout:
        model = model.to(memory_format=torch.channels_last)
    shape = tuple(model.default_input_size)
    export_module(model, shape, tmp_path / "m.onnx", dynamic_batch=True, batch=3)
    session = onnx_session(tmp_path / "m.onnx")
    for n in (1, 5):
        x = torch.randn(n, *shape)
        with torch.no_grad():
            want = model(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


def _tamper_with_the_exporter(monkeypatch):
    """An exporter bug: the file computes something else (the model's outputs clipped)."""
    import cnnlab.train.onnx as exporter

    real = exporter._export

    def tampered(module, x, path, opset, dynamic_batch, pool_sizes, label):  # (the pools' names, in the Sequential)
        real(torch.nn.Sequential(module, torch.nn.Hardtanh(-0.01, 0.01)), x, path, opset, dynamic_batch,
             {f"0.{name}": size for name, size in pool_sizes.items()}, label)

    monkeypatch.setattr(exporter, "_export", tampered)


def test_an_export_that_differs_from_pytorch_is_refused_and_leaves_no_file(tmp_path, monkeypatch):
    model = create_model("lenet5")
    _tamper_with_the_exporter(monkeypatch)
    with pytest.raises(cnnlab.CnnlabError, match="gives other outputs than PyTorch .* the file was not written$"):
        export_module(model, (1, 32, 32), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    # at another opset than the default, another may give PyTorch's outputs (attention56's upsampling at 9 or 10)
    with pytest.raises(cnnlab.CnnlabError, match=r"the file was not written; try another --opset \(the default is 17"):
        export_module(model, (1, 32, 32), tmp_path / "m.onnx", opset=13)
    assert list(tmp_path.iterdir()) == []


def test_an_opset_the_second_exporter_does_not_write_is_refused_and_leaves_no_file(tmp_path):
    """Bilinear upsampling, which the TorchScript-based exporter cannot write at opset 7 (attention56's): the
    torch.export-based one writes opset 18 instead of 7, which a runtime that needs opset 7 cannot load."""
    import onnx

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Upsample(scale_factor=2,
                                mode="bilinear"), torch.nn.Flatten())
    with pytest.raises(cnnlab.CnnlabError, match=r"^Sequential cannot be exported to ONNX opset 7: .*upsample_bilinear"
                                                 r".*writes opset 18\); try --opset 18$"):
        export_module(model, (1, 4, 4), tmp_path / "m.onnx", opset=7)
    assert list(tmp_path.iterdir()) == []
    export_module(model, (1, 4, 4), tmp_path / "m.onnx")  # the default opset: the first exporter writes it
    assert [o.version for o in onnx.load(tmp_path / "m.onnx").opset_import if o.domain == ""] == [17]


def test_export_run_checks_the_opset_and_takes_parts_by_name_each_once(runs, capsys, tmp_path):
    from cnnlab.run import Run
    from cnnlab.train.onnx import export_run

    ae = Run.open(runs / "ae")
    for opset in (6, 24, 30, "17", True):  # the Python API checks what the command's --opset does
        with pytest.raises(cnnlab.CnnlabError, match=f"^opset must be between 7 and 23, got {opset!r}$"):
            export_run(ae, tmp_path / "out", opset=opset)
    assert not (tmp_path / "out").exists()
    assert export_run(ae, tmp_path / "one", parts="encoder") == [tmp_path / "one" / "encoder.onnx"]
    assert export_run(ae, tmp_path / "two", parts=["decoder", "encoder", "decoder"]) == \
        [tmp_path / "two" / "decoder.onnx", tmp_path / "two" / "encoder.onnx"]
    code, out, _ = run(capsys, "export", runs / "ae", "--part", "encoder", "--part", "encoder", "--out",
                       tmp_path / "cli")
    assert code == 0 and len(out.splitlines()) == 1


def test_a_failed_export_leaves_no_folder_it_created(runs, tmp_path, monkeypatch):
    """From Python as from the command line (which removes any output folder a failed command created)."""
    from cnnlab.run import Run
    from cnnlab.train.onnx import export_run

    clf = Run.open(runs / "clf")
    _tamper_with_the_exporter(monkeypatch)
    with pytest.raises(cnnlab.CnnlabError, match="gives other outputs than PyTorch"):
        export_run(clf, tmp_path / "new" / "deeper")
    (tmp_path / "mine").mkdir()  # a folder that was there before stays
    with pytest.raises(cnnlab.CnnlabError, match="gives other outputs than PyTorch"):
        export_run(clf, tmp_path / "mine")
    assert [p.name for p in tmp_path.iterdir()] == ["mine"] and list((tmp_path / "mine").iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # not installed
    with pytest.raises(cnnlab.CnnlabError, match="onnxruntime"):
        export_run(clf, tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_an_export_whose_second_part_fails_writes_no_part_and_replaces_no_file(runs, capsys, tmp_path):
    """An autoencoder at opset 7: its encoder exported, then its decoder failed (Unflatten), which left
    encoder.onnx behind, in a new folder or over the user's own file; the error named a private class."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "encoder.onnx").write_text("the user's own file")
    default = runs / "ae" / "export"  # (other tests export there)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in default.iterdir()) if default.exists() else None
    for where in ([], ["--out", out]):
        err = one_line_error(capsys, "export", runs / "ae", "--opset", "7", *where)
        assert err.startswith("cnnlab: error: conv_ae's decoder cannot be exported to ONNX opset 7: "), err
    assert [p.name for p in out.iterdir()] == ["encoder.onnx"] and (out / "encoder.onnx").read_text() == \
        "the user's own file"
    assert (sorted((p.name, p.stat().st_mtime_ns) for p in default.iterdir()) if default.exists() else None) == before


def test_the_metadata_names_the_run_or_checkpoint_by_its_absolute_path(runs, capsys, tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(runs)
    assert run(capsys, "export", "clf", "--out", tmp_path / "from-run")[0] == 0
    assert onnx_metadata(tmp_path / "from-run" / "model.onnx")["run"] == str((runs / "clf").resolve())
    (tmp_path / "solo").mkdir()
    shutil.copy(runs / "clf" / "checkpoints" / "last.safetensors", tmp_path / "solo" / "last.safetensors")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "export", "solo/last.safetensors")[0] == 0
    meta = onnx_metadata(tmp_path / "solo" / "export" / "model.onnx")
    assert meta["run"] == str((tmp_path / "solo" / "last.safetensors").resolve())


def test_a_classifier_exports_and_predict_runs_the_file_as_the_checkpoint(runs, capsys):
    code, out, err = run(capsys, "export", runs / "clf")
    assert code == 0, err
    file = runs / "clf" / "export" / "model.onnx"
    assert str(file) in out and "onnxruntime's outputs equal PyTorch's" in out
    umask = os.umask(0)
    os.umask(umask)
    assert file.stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file: readable where the umask says so
    meta = onnx_metadata(file)
    assert meta["kind"] == "classifier" and meta["classes"] == [str(c) for c in range(10)]
    assert meta["preprocess"]["size"] == [32, 32] and meta["input_shape"] == [1, 32, 32]
    images = [runs / "digit0.png", runs / "digit1.png"]
    _, from_checkpoint, _ = run(capsys, "predict", runs / "clf", *images, "--format", "json")
    _, from_onnx, _ = run(capsys, "predict", runs / "clf", *images, "--format", "json", "--onnx", file)
    assert [r["image"] for r in json.loads(from_onnx)] == [str(p) for p in images]
    assert [t["class"] for r in json.loads(from_onnx) for t in r["top"]] == \
        [t["class"] for r in json.loads(from_checkpoint) for t in r["top"]]
    assert _probabilities(from_onnx) == pytest.approx(_probabilities(from_checkpoint), abs=1e-5)
    # the file takes batches of 2 (no --dynamic-batch); predict feeds it one image at a time, any number
    _, three, _ = run(capsys, "predict", runs / "clf", *images, images[0], "--format", "json", "--onnx", file)
    assert len(json.loads(three)) == 3


def _probabilities(text: str) -> list[float]:
    return [t["probability"] for r in json.loads(text) for t in r["top"]]


def test_an_autoencoder_exports_encoder_decoder_and_both(runs, capsys):
    code, out, err = run(capsys, "export", runs / "ae", "--dynamic-batch", "--out", runs / "ae-onnx")
    assert code == 0, err
    files = {p.stem: p for p in (runs / "ae-onnx").glob("*.onnx")}
    assert sorted(files) == ["autoencoder", "decoder", "encoder"]
    shape = onnx_metadata(files["encoder"])["input_shape"]          # digits: 1 x 8 x 8
    x = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
    code = onnx_session(files["encoder"]).run(None, {"input": x})[0]
    image = onnx_session(files["decoder"]).run(None, {"input": code})[0]
    both = onnx_session(files["autoencoder"]).run(None, {"input": x})[0]
    assert image.shape == x.shape and 0 <= image.min() and image.max() <= 1
    np.testing.assert_allclose(both, image, atol=1e-5)  # the whole is the decoder after the encoder
    code, out, _ = run(capsys, "export", runs / "rnn", "--part", "encoder", "--out", runs / "rnn-onnx")
    assert code == 0 and [p.name for p in (runs / "rnn-onnx").iterdir()] == ["encoder.onnx"]


def test_a_segmentation_network_exports_per_pixel_logits(runs, capsys):
    code, out, err = run(capsys, "export", runs / "seg", "--opset", "18")
    assert code == 0, err
    session = onnx_session(runs / "seg" / "export" / "model.onnx")
    logits = session.run(None, {"input": np.zeros((2, 3, 16, 16), dtype=np.float32)})[0]
    assert logits.shape[0] == 2 and logits.shape[2:] == (16, 16)
    # segment predict runs the file on the run's preprocessing: the same masks as the run's checkpoint
    image = runs / "seg" / "odd.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(image)
    own, shipped = (json.loads(run(capsys, "segment", "predict", runs / "seg", image, "--format", "json", "--out",
                                   runs / "seg" / out, *extra)[1])
                    for out, extra in (("by-run", ()), ("by-onnx", ("--onnx", runs / "seg" / "export" / "model.onnx"))))
    assert [r["shares"] for r in shipped] == [r["shares"] for r in own]
    assert np.array_equal(np.asarray(Image.open(shipped[0]["overlay"])), np.asarray(Image.open(own[0]["overlay"])))
    assert run(capsys, "export", runs / "clf")[0] == 0
    line = one_line_error(capsys, "segment", "predict", runs / "seg", image, "--onnx",
                          runs / "clf" / "export" / "model.onnx")
    assert "exported from a classifier run (its model), not from a segmentation network" in line


def test_bad_export_requests_are_one_line(runs, capsys, tmp_path):
    assert "no part 'decoder'" in one_line_error(capsys, "export", runs / "clf", "--part", "decoder")
    assert "opset must be between 7 and 23, got 3" in one_line_error(capsys, "export", runs / "clf", "--opset", "3")
    run(capsys, "export", runs / "ae", "--part", "encoder")
    encoder = runs / "ae" / "export" / "encoder.onnx"
    assert "not from a classifier" in one_line_error(capsys, "predict", runs / "clf", runs / "digit0.png",
                                                     "--onnx", encoder)
    # the same classes, another training split: other normalisation statistics
    assert run(capsys, "train", "--epochs", "1", "--data", "digits@labels=5", "--run-dir", runs / "other",
               "--quiet")[0] == 0
    assert run(capsys, "export", runs / "other")[0] == 0
    assert "prepares images otherwise" in one_line_error(capsys, "predict", runs / "clf", runs / "digit0.png",
                                                         "--onnx", runs / "other" / "export" / "model.onnx")
    assert "is not an ONNX model" in one_line_error(capsys, "predict", runs / "clf", runs / "digit0.png",
                                                    "--onnx", runs / "digit0.png")


def test_predict_checks_the_onnx_file_against_the_run_in_one_line(runs, capsys, tmp_path):
    """Refused: another kind's file, an output that is not one score per class, metadata that is not JSON, a
    path that is not a file. Warned, but run: other weights than the run's, a file without cnnlab's metadata."""
    import onnx

    from cnnlab.run import Run
    from cnnlab.train.onnx import weights_digest

    assert run(capsys, "export", runs / "clf")[0] == 0
    own = runs / "clf" / "export" / "model.onnx"
    meta, image = onnx_metadata(own), runs / "digit0.png"

    def predict(file):
        return run(capsys, "predict", runs / "clf", image, "--onnx", file)

    other = create_model("lenet5")  # the run's architecture and classes, other weights
    export_module(other, (1, 32, 32), tmp_path / "other.onnx", metadata={**meta, "weights": weights_digest(other)})
    code, out, err = predict(tmp_path / "other.onnx")
    assert code == 0 and err.startswith("cnnlab: warning:") and "holds other weights than" in err, err
    assert "warning" not in predict(own)[2] and meta["weights"] == weights_digest(Run.open(runs / "clf").model)
    export_module(other, (1, 32, 32), tmp_path / "bare.onnx")
    code, _, err = predict(tmp_path / "bare.onnx")
    assert code == 0 and "carries no cnnlab metadata" in err

    export_module(create_model("lenet5", num_classes=5), (1, 32, 32), tmp_path / "five.onnx", metadata=meta)
    assert "not one score per class (10)" in one_line_error(capsys, "predict", runs / "clf", image, "--onnx",
                                                            tmp_path / "five.onnx")
    export_module(torch.nn.Identity(), (1, 32, 32), tmp_path / "same.onnx", metadata=meta)
    assert "not one score per class" in one_line_error(capsys, "predict", runs / "clf", image, "--onnx",
                                                       tmp_path / "same.onnx")
    model = onnx.load(own)
    model.metadata_props[0].value = "{not json"
    onnx.save(model, tmp_path / "garbled.onnx")
    assert "metadata that is not a JSON object" in one_line_error(capsys, "predict", runs / "clf", image,
                                                                  "--onnx", tmp_path / "garbled.onnx")
    assert "does not exist" in one_line_error(capsys, "predict", runs / "clf", image, "--onnx", tmp_path / "no.onnx")
    assert "is a directory" in one_line_error(capsys, "predict", runs / "clf", image, "--onnx", tmp_path)
    run(capsys, "export", runs / "ae", "--part", "encoder")
    line = one_line_error(capsys, "predict", runs / "clf", image, "--onnx", runs / "ae" / "export" / "encoder.onnx")
    assert "exported from an autoencoder run (its encoder), not from a classifier" in line
    run(capsys, "export", runs / "seg")
    line = one_line_error(capsys, "predict", runs / "clf", image, "--onnx", runs / "seg" / "export" / "model.onnx")
    assert "exported from a segmentation run (its model), not from a classifier" in line


def _rewritten(source, path, change=None, meta=None):
    """The ONNX file ``source`` written to ``path`` as another tool would rewrite it: ``change(model)`` applied,
    its cnnlab metadata replaced by ``meta`` (None: kept)."""
    import onnx

    model = onnx.load(source)
    if change is not None:
        change(model)
    if meta is not None:
        model.metadata_props[0].value = json.dumps(meta)
    onnx.save(model, path)
    return path


def _weights_times(factor):
    def change(model):
        from onnx import numpy_helper

        t = max(model.graph.initializer, key=lambda t: len(t.raw_data))  # C5's or F6's weights
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * factor, t.name))
    return change


def test_a_file_whose_weights_were_edited_after_export_is_warned_about(runs, capsys, tmp_path):
    assert run(capsys, "export", runs / "clf")[0] == 0
    own, image = runs / "clf" / "export" / "model.onnx", runs / "digit0.png"
    meta = onnx_metadata(own)
    for edited in (_rewritten(own, tmp_path / "negated.onnx", _weights_times(-3.0)),
                   _rewritten(own, tmp_path / "nudged.onnx", _weights_times(1.0 + 2**-20))):  # bits that rotted
        code, _, err = run(capsys, "predict", runs / "clf", image, "--onnx", edited)
        assert code == 0 and err.startswith("cnnlab: warning:") and len(err.splitlines()) == 1, err
        assert f"the weights in '{edited}' were changed since it was exported" in err
    # loaded and saved again unchanged, or its metadata rewritten: the same weights, no warning
    for same in (_rewritten(own, tmp_path / "resaved.onnx"),
                 _rewritten(own, tmp_path / "relabelled.onnx", meta={**meta, "run": "elsewhere"})):
        assert run(capsys, "predict", runs / "clf", image, "--onnx", same)[2] == ""
    # a file exported before cnnlab recorded its own weights' digest runs as it did
    old = {k: v for k, v in meta.items() if k != "initializers"}
    code, _, err = run(capsys, "predict", runs / "clf", image, "--onnx",
                       _rewritten(own, tmp_path / "old.onnx", _weights_times(-3.0), old))
    assert code == 0 and err == ""
    # segment predict checks a segmentation network's file the same way
    assert run(capsys, "export", runs / "seg")[0] == 0
    edited = _rewritten(runs / "seg" / "export" / "model.onnx", tmp_path / "seg.onnx", _weights_times(-3.0))
    code, _, err = run(capsys, "segment", "predict", runs / "seg", image, "--onnx", edited, "--out", tmp_path / "s")
    assert code == 0 and f"cnnlab: warning: the weights in '{edited}' were changed since it was exported" in err


def test_metadata_without_its_weights_or_empty_is_not_taken_for_the_runs(runs, capsys, tmp_path):
    assert run(capsys, "export", runs / "clf")[0] == 0
    own, image = runs / "clf" / "export" / "model.onnx", runs / "digit0.png"
    meta = onnx_metadata(own)
    for weights in (None, 3):
        edited = {**meta, "weights": weights} if weights is not None else \
            {k: v for k, v in meta.items() if k != "weights"}
        code, _, err = run(capsys, "predict", runs / "clf", image, "--onnx",
                           _rewritten(own, tmp_path / "no-weights.onnx", meta=edited))
        assert code == 0 and err.startswith("cnnlab: warning:") and "records no SHA-256 of the weights" in err
    line = one_line_error(capsys, "predict", runs / "clf", image, "--onnx",
                          _rewritten(own, tmp_path / "empty.onnx", meta={}))
    assert "carries empty cnnlab metadata ({})" in line and "carries no cnnlab metadata" not in line


def test_files_that_do_not_take_one_float32_batch_or_fail_in_onnxruntime_are_one_line(runs, capfd, tmp_path):
    """Files from elsewhere with the run's metadata (so that nothing else is wrong with them): a float16 input, a
    second input, an integer output, and a reshape fixed to batch 2 in a file with a dynamic batch axis, which
    fails inside onnxruntime on one image. onnxruntime's own log line about the failure is not printed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from cnnlab.run import Run
    from cnnlab.train.onnx import file_weights_digest, weights_digest

    meta = {"kind": "classifier", "part": "model", "run": str(runs / "clf"),
            "classes": [str(c) for c in range(10)], "preprocess": Run.open(runs / "clf").meta["preprocess"],
            "input_shape": [1, 32, 32], "weights": weights_digest(Run.open(runs / "clf").model)}

    def tensor(name, shape, dtype=TensorProto.FLOAT):
        return helper.make_tensor_value_info(name, dtype, shape)

    def file(name, inputs, output, nodes, batch=("b", 1024)):
        weights = numpy_helper.from_array(np.ones((1024, 10), np.float16 if "16" in name else np.float32), "w")
        nodes = [helper.make_node("Reshape", ["input", "shape"], ["flat"]), *nodes]
        graph = helper.make_graph(nodes, name, inputs, [output], [weights, numpy_helper.from_array(
            np.array([-1 if batch[0] == "b" else batch[0], 1024], np.int64), "shape")])
        path = tmp_path / f"{name}.onnx"
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.save(model, path)  # then labelled as cnnlab labels a file: with the digest of the weights it holds
        helper.set_model_props(model, {"cnnlab": json.dumps({**meta, "initializers": file_weights_digest(path)})})
        onnx.save(model, path)
        return path

    matmul = helper.make_node("MatMul", ["flat", "w"], ["output"])
    cases = {
        "takes inputs of tensor(float16), not float32 images":
            file("fp16", [tensor("input", ["b", 1, 32, 32], TensorProto.FLOAT16)],
                 tensor("output", ["b", 10], TensorProto.FLOAT16), [matmul]),
        "takes 2 inputs (input, extra), not one batch of images":
            file("two", [tensor("input", ["b", 1, 32, 32]), tensor("extra", ["b", 10])], tensor("output", ["b", 10]),
                 [helper.make_node("MatMul", ["flat", "w"], ["scores"]),
                  helper.make_node("Add", ["scores", "extra"], ["output"])]),
        "gives outputs of tensor(int64), not float32 scores":
            file("argmax", [tensor("input", ["b", 1, 32, 32])], tensor("output", ["b", 1], TensorProto.INT64),
                 [helper.make_node("MatMul", ["flat", "w"], ["scores"]),
                  helper.make_node("ArgMax", ["scores"], ["output"], axis=1)]),
        "fails in onnxruntime on a batch of [1, 1, 32, 32]: ":
            file("batch2", [tensor("input", ["b", 1, 32, 32])], tensor("output", [2, 10]), [matmul], batch=(2, 1024)),
    }
    for says, path in cases.items():
        line = one_line_error(capfd, "predict", runs / "clf", runs / "digit0.png", "--onnx", path)
        assert f"'{path}' {says}" in line


def test_without_onnxruntime_or_onnx_export_and_predict_onnx_each_name_what_they_need(runs, capsys, monkeypatch):
    assert run(capsys, "export", runs / "clf")[0] == 0
    file = runs / "clf" / "export" / "model.onnx"
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "onnxruntime", None)  # as if not installed: import fails
        assert "ONNX export needs onnxruntime: pip install 'cnnlab[onnx]'" in one_line_error(
            capsys, "export", runs / "clf")
        line = one_line_error(capsys, "predict", runs / "clf", runs / "digit0.png", "--onnx", file)
        assert "running an ONNX file (--onnx) needs onnxruntime: pip install 'cnnlab[onnx]'" in line
    # onnxruntime runs the file; onnx reads the weights it holds, to check them
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert "ONNX export needs onnx: pip install 'cnnlab[onnx]'" in one_line_error(capsys, "export", runs / "clf")
    line = one_line_error(capsys, "predict", runs / "clf", runs / "digit0.png", "--onnx", file)
    assert "running an ONNX file (--onnx) needs onnx to check the weights the file holds" in line


def test_a_run_whose_checkpoint_file_is_gone_says_so_not_that_it_trained_nothing(runs, capsys, tmp_path):
    import shutil

    shutil.copytree(runs / "clf", tmp_path / "clf")
    (tmp_path / "clf" / "checkpoints" / "last.safetensors").unlink()
    line = one_line_error(capsys, "evaluate", tmp_path / "clf", "--checkpoint", "last")
    assert "no checkpoint last.safetensors: it trained epochs" in line and "completed no epoch" not in line
