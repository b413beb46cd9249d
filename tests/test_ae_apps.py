"""The tools that apply a trained autoencoder (cnnlab ae encode, denoise, generate, interpolate, features) at
their edges: tiny splits, codes larger than the image, one-number codes, checkpoint files outside their run,
opposite codes on the spherical path."""

import json
import math
import shutil

import numpy as np
import pytest
import torch

from cnnlab.ae import AEConfig, create_autoencoder
from cnnlab.ae.apps import features_compare, interpolate, slerp
from cnnlab.run import Run, fit
from tests.conftest import one_line_error, run


@pytest.fixture(scope="module")
def one_number_vae(tmp_path_factory):
    """A VAE with a 1-value code (1 epoch on digits: about a second)."""
    return fit(AEConfig(data="digits", epochs=1, quiet=True, kind="vae", latent_dim=1,
                        run_dir=str(tmp_path_factory.mktemp("ae") / "vae1")), log=lambda *a: None).run_dir


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
    """Seven 8x8 images of two classes: 5 training images, 1 validation and 1 test image."""
    path = tmp_path_factory.mktemp("data") / "tiny7.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((7, 8, 8)).astype(np.float32), y=np.arange(7) % 2)
    return path


def test_features_compare_pca_with_as_many_components_as_the_pixels_and_images_allow(runs, tiny_npz, capsys):
    """PCA has at most min(images, pixels) components: an overcomplete code (128 values for 64 pixels) and a
    5-image training split were a ValueError traceback from PCA(latent_dim)."""
    from cnnlab.data import load_dataset

    overcomplete = create_autoencoder("dense", (1, 8, 8), 128, topk=8)
    rows = features_compare(overcomplete, load_dataset("digits"), (5,), seeds=(0,))
    assert [r["features"] for r in rows] == ["raw pixels", "PCA (64)", "encoder (128)"]
    code, out, err = run(capsys, "ae", "features", runs / "ae", "--data", f"npz:{tiny_npz}", "--labels", "1",
                         "--out", runs / "features-tiny")
    assert code == 0, err
    rows = json.loads((runs / "features-tiny" / "features.json").read_text())["rows"]
    assert [r["features"] for r in rows] == ["raw pixels", "PCA (5)", "encoder (16)"] and "PCA (5)" in out


def test_encode_of_a_one_image_split_writes_its_codes_and_warns_that_it_has_no_map(runs, tiny_npz, capsys):
    """The 2-D map (PCA(2)) needs two points: it failed with a traceback after the codes had been written."""
    out = runs / "encode-tiny"
    code, printed, err = run(capsys, "ae", "encode", runs / "ae", "--data", f"npz:{tiny_npz}", "--out", out)
    assert code == 0 and err == "cnnlab: warning: the test split of 'tiny7' has 1 image: no code map (a map " \
                                "needs at least 2)\n", err
    assert np.load(out / "codes-tiny7.npy").shape == (1, 16) and np.load(out / "labels-tiny7.npy").shape == (1,)
    assert len((out / "codes-tiny7.csv").read_text().splitlines()) == 2 and not (out / "code_map-tiny7.png").exists()
    assert printed.startswith("1 code of 16 values (tiny7, test) -> ") and "map" not in printed


def test_encode_names_the_files_of_a_split_other_than_test_after_it(runs, capsys):
    """`ae encode RUN --split train` overwrote the test split's codes, labels, table and map."""
    out = runs / "encode-splits"
    assert run(capsys, "ae", "encode", runs / "ae", "--out", out)[0] == 0
    code, printed, _ = run(capsys, "ae", "encode", runs / "ae", "--split", "train", "--out", out)
    assert code == 0 and f"{out / 'codes-train.npy'}, {out / 'codes-train.csv'}; map: " \
                          f"{out / 'code_map-train.png'}" in printed
    test, train = Run.open(runs / "ae").data().test, Run.open(runs / "ae").data().train
    assert np.load(out / "codes.npy").shape == (len(test.images), 16)  # the test split's, kept
    assert np.load(out / "codes-train.npy").shape == (len(train.images), 16)
    assert np.array_equal(np.load(out / "labels-train.npy"), train.labels.numpy())
    assert len((out / "codes-train.csv").read_text().splitlines()) == len(train.images) + 1
    assert (out / "code_map.png").is_file() and (out / "code_map-train.png").is_file()


def test_encode_names_the_files_of_other_data_after_its_spec(runs, capsys):
    """`ae encode RUN --data OTHER` overwrote the run's own test split's codes, labels, table and map."""
    out = runs / "encode-data"
    assert run(capsys, "ae", "encode", runs / "ae", "--out", out)[0] == 0
    own = np.load(out / "codes.npy")
    code, printed, _ = run(capsys, "ae", "encode", runs / "ae", "--data", "digits@classes=0-4", "--split", "val",
                           "--out", out)
    assert code == 0 and f"{out / 'codes-digits_classes_0-4-val.npy'}" in printed
    assert np.array_equal(np.load(out / "codes.npy"), own)  # the run's own test split's, kept
    assert set(np.load(out / "labels-digits_classes_0-4-val.npy").tolist()) <= {0, 1, 2, 3, 4}
    code, printed, _ = run(capsys, "ae", "encode", runs / "ae", "--data", "digits", "--out", out)
    assert code == 0 and f"{out / 'codes.npy'}," in printed  # the run's own data, named as such: plain names


@pytest.mark.parametrize("omega", [math.pi / 2, 3.0, math.pi - 1e-4, math.pi - 1e-7])
def test_slerp_turns_the_direction_at_constant_speed_and_changes_the_length_linearly(omega):
    """Computed apart in polar coordinates of the plane of the two codes (8-D, a random orthonormal pair):
    at t, the angle t * omega from a and the length (1 - t)|a| + t|b|. The usual formula (sin((1-t)w) a +
    sin(tw) b) / sin(w) grew as (|a| - |b|) / (pi - w): -2.3e6 halfway from 0.5 to -0.3. Codes 1e-7 from
    opposite (float32 cannot tell them from opposite) take the linear path."""
    e1, e2 = np.linalg.qr(np.random.default_rng(0).normal(size=(8, 2)))[0].T
    la, lb = 0.5, 0.3
    a, b = la * e1, lb * (math.cos(omega) * e1 + math.sin(omega) * e2)
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        if omega < math.pi - 1e-6:
            length = (1 - t) * la + t * lb
            want = length * (math.cos(t * omega) * e1 + math.sin(t * omega) * e2)
        else:
            want = (1 - t) * a + t * b
        got = slerp(torch.from_numpy(a), torch.from_numpy(b), t).numpy()
        assert np.allclose(got, want, rtol=0, atol=1e-9), (t, got, want)
    # codes of equal length: the usual formula, where it is well conditioned
    b_same = la * (math.cos(omega) * e1 + math.sin(omega) * e2)
    usual = (math.sin(0.25 * omega) * a + math.sin(0.75 * omega) * b_same) / math.sin(omega)
    if omega < 3.1:
        assert np.allclose(slerp(torch.from_numpy(a), torch.from_numpy(b_same), 0.75).numpy(), usual, atol=1e-9)
    # float32 codes (a model's) stay float32
    assert slerp(torch.from_numpy(a).float(), torch.from_numpy(b).float(), 0.5).dtype == torch.float32


def test_a_one_value_codes_spherical_path_is_the_linear_one_with_a_warning(one_number_vae, capsys):
    """A 1-value code has no sphere to follow: codes of opposite signs gave codes near 1e6 on the spherical row,
    decoded into saturated blobs, without a word."""
    for t in (0.25, 0.5, 0.75):
        assert slerp(torch.tensor([0.5]), torch.tensor([-0.3]), t).item() == pytest.approx((1 - t) * 0.5 - t * 0.3)
    r = Run.open(one_number_vae, holds="autoencoder")
    images = r.data().test.images[:50]
    codes = r.model.encode(images).flatten()
    a, b = int(codes.argmax()), int(codes.argmin())
    assert codes[a] > 0 > codes[b]  # opposite signs: the case that exploded
    rows = interpolate(r.model, images[a], images[b], 5)
    assert torch.allclose(rows["spherical"], rows["linear"])
    code, out, err = run(capsys, "ae", "interpolate", one_number_vae, a, b, "--steps", "5")
    assert code == 0 and err == "cnnlab: warning: a 1-value code has no sphere to follow: the spherical row shows " \
                                "the linear path\n", err


def test_denoise_checks_a_checkpoint_file_on_the_noise_its_run_trained_on(tmp_path, capsys):
    """Any run trained with --noise (here a conv run, not a denoising one) is checked on that noise without
    --noise, given as its directory or as a checkpoint file outside it (which has no config.yaml: that run
    was checked on gaussian:0.3)."""
    r = fit(AEConfig(data="digits", epochs=1, quiet=True, run_dir=str(tmp_path / "mask"), kind="conv",
                     noise="mask:0.3"), log=lambda *a: None)
    (tmp_path / "loose").mkdir()
    shutil.copy(r.run_dir / "checkpoints" / "last.safetensors", tmp_path / "loose" / "mask.safetensors")
    for given, written in ((r.run_dir, r.run_dir / "denoise"), (tmp_path / "loose" / "mask.safetensors",
                                                                tmp_path / "loose" / "denoise")):
        code, out, err = run(capsys, "ae", "denoise", given)
        assert code == 0 and out.startswith("digits, test split, mask:0.3: "), (given, out, err)
        assert json.loads((written / "denoise.json").read_text())["noise"] == "mask:0.3"


def test_counts_of_one_are_in_the_singular(runs, one_number_vae, capsys):
    """"1 samples", "1 image(s) denoised", "1 codes of 1 values" were printed."""
    code, out, _ = run(capsys, "ae", "denoise", runs / "ae", runs / "digit0.png", "--out", runs / "denoise-one")
    assert code == 0 and out == f"1 image denoised -> {runs / 'denoise-one' / 'denoised.png'}\n"
    code, out, _ = run(capsys, "ae", "generate", one_number_vae, "-n", "1")
    assert code == 0 and out == f"1 sample -> {one_number_vae / 'generate' / 'samples.png'}\n"
    code, out, _ = run(capsys, "ae", "encode", one_number_vae)
    assert code == 0 and out.startswith("270 codes of 1 value (digits, test) -> ")


def test_interpolate_errors_say_what_a_b_and_the_classes_may_be(runs, capsys):
    err = one_line_error(capsys, "ae", "interpolate", runs / "ae", "0", "abc")
    assert err == "cnnlab: error: image 'abc' does not exist (A and B are image files or indices of the test " \
                  "split's 270 images, 0 to 269)"
    err = one_line_error(capsys, "ae", "interpolate", runs / "ae", "0", "1", "--arithmetic", "1", "x")
    assert err == "cnnlab: error: class 'x' is not one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
