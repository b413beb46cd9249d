"""Autoencoders: the models' contract, the reconstruction task, training through the engine, the CLI."""

import json

import pytest
import torch

from cnnlab.ae import AEConfig, create_autoencoder, kl_divergence
from cnnlab.ae.recipe import build_autoencoder, model_args
from cnnlab.ae.task import Noise, ReconstructionTask, psnr
from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.run import Run, fit
from tests.conftest import run

VARIANTS = [dict(), dict(variational=True), dict(topk=3), dict(code_act="sigmoid"), dict(code_act="relu")]


@pytest.mark.parametrize("kind", ["dense", "conv", "recurrent"])
@pytest.mark.parametrize("variant", VARIANTS, ids=["plain", "vae", "topk", "sigmoid", "relu"])
def test_every_autoencoder_reconstructs_shapes_and_learns(kind, variant):
    torch.manual_seed(0)
    ae = create_autoencoder(kind, (1, 8, 8), 8, **variant)
    x = torch.rand(16, 1, 8, 8)
    out = ae(x)
    assert out.logits.shape == x.shape and out.code.shape == (16, 8)
    assert ae.encode(x).shape == (16, 8) and ae.decode(ae.encode(x)).shape == x.shape
    task = ReconstructionTask(sparsity_kl=0.1 if variant.get("code_act") == "sigmoid" else 0.0,
                              l1=0.01 if variant.get("code_act") == "relu" else 0.0)
    loss = task.loss(out, x)
    assert torch.isfinite(loss)
    if "kl" in out.terms:
        assert (out.terms["kl"] >= 0).all()
    if variant.get("topk"):
        assert ((out.code != 0).sum(1) <= 3).all()
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    ae.train()
    first = None
    for _ in range(30):
        loss = task.loss(ae(x), x)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(task.loss(ae(x), x).detach()) < first
    again = create_autoencoder(kind, (1, 8, 8), 8, **variant)  # checkpoint round trip: same outputs
    again.load_state_dict(ae.state_dict())
    assert torch.equal(again.eval()(x).logits, ae.eval()(x).logits)


def test_recurrent_autoencoder_takes_any_sequence():
    ae = create_autoencoder("recurrent", (20, 5), 4, cell="lstm")
    assert ae(torch.rand(3, 20, 5)).logits.shape == (3, 20, 5)


def test_kl_divergence_is_zero_only_at_the_prior():
    assert torch.allclose(kl_divergence(torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2))
    assert (kl_divergence(torch.randn(5, 4), torch.randn(5, 4)) > 0).all()


def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path):
    from cnnlab.train.checkpoint import load_weights, save_weights

    args = model_args(AEConfig(kind="vae", latent_dim=6), (1, 16, 16))
    ae = build_autoencoder(args).eval()
    save_weights(tmp_path / "w.safetensors", ae, {"kind": "autoencoder", "autoencoder": args, "model": "vae_ae"})
    again = build_autoencoder(load_weights(tmp_path / "w.safetensors")[1]["autoencoder"])
    again.load_state_dict(load_weights(tmp_path / "w.safetensors")[0])
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(ae.eval()(x).logits, again.eval()(x).logits)


@pytest.mark.parametrize("noise", ["gaussian:0.3", "salt-pepper:0.2", "mask:0.3", "shift:0.2"])
def test_noises_corrupt_within_the_pixel_range(noise):
    x = torch.rand(8, 1, 16, 16)
    y = Noise.parse(noise)(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 and not torch.equal(x, y)


@pytest.mark.parametrize("bad, message", [
    ("blur:0.3", "not one of"), ("gaussian:x", "not a number"), ("mask:1.5", "the level must be in"),
])
def test_bad_noise_specs_are_one_line_errors(bad, message):
    with pytest.raises(CnnlabError, match=message):
        Noise.parse(bad)


def test_a_one_number_code_trains_and_is_mapped_along_one_axis(tmp_path, capsys):
    from cnnlab.ae.apps import project_2d

    codes = torch.randn(50, 1).numpy()
    xy = project_2d(codes)
    assert xy.shape == (50, 2) and (xy[:, 0] == codes[:, 0]).all()  # the code itself on x
    r = fit(AEConfig(kind="dense", latent_dim=1, epochs=1, run_dir=str(tmp_path / "ae"), quiet=True),
            log=lambda *a: None)
    assert (r.run_dir / "results.json").is_file() and (r.run_dir / "plots" / "code_map.png").is_file()
    code, out, err = run(capsys, "ae", "encode", r.run_dir)
    assert code == 0 and "codes of 1 value " in out, err


def test_bad_models_are_one_line_errors():
    with pytest.raises(CnnlabError, match="cannot be halved"):
        create_autoencoder("conv", (1, 7, 7), 8)
    with pytest.raises(CnnlabError, match="latent_dim must be at least 1"):
        create_autoencoder("dense", (1, 8, 8), 0)
    with pytest.raises(CnnlabError, match="topk .--topk. must be between 1 and the code size"):
        create_autoencoder("dense", (1, 8, 8), 4, topk=9)
    with pytest.raises(CnnlabError, match="built for inputs of 1x8x8"):
        create_autoencoder("dense", (1, 8, 8), 4)(torch.rand(2, 1, 16, 16))
    # the command line's --kind vae is a body with a variational code here: the message says how to build one
    with pytest.raises(CnnlabError, match=r"kind is the body .*variational=True"):
        create_autoencoder("vae", (1, 8, 8))
    with pytest.raises(CnnlabError, match="unknown autoencoder kind 'banana'"):
        create_autoencoder("banana", (1, 8, 8))


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    """A convolutional autoencoder trained on digits (latent 16, 30 epochs: a few seconds)."""
    return fit(AEConfig(data="digits", epochs=30, quiet=True, run_dir=str(tmp_path_factory.mktemp("ae") / "conv"),
                        kind="conv", latent_dim=16), log=lambda *a: None)


def test_conv_autoencoder_beats_pca_with_as_many_components(conv_run):
    from sklearn.decomposition import PCA

    from cnnlab.data import load_dataset

    r = conv_run
    data = load_dataset("digits")
    train, test = data.train.images.flatten(1).numpy(), data.test.images.flatten(1).numpy()
    pca = PCA(16).fit(train)
    pca_mse = float(((pca.inverse_transform(pca.transform(test)).clip(0, 1) - test) ** 2).mean())
    assert r.test["mse"] < pca_mse, (r.test["mse"], pca_mse)
    results = json.loads((r.run_dir / "results.json").read_text())
    assert {"mse", "psnr", "ssim"} <= set(results["test"]) and (r.run_dir / "plots" / "reconstructions.png").is_file()
    run = Run.open(r.run_dir, holds="autoencoder")
    assert run.meta["kind"] == "autoencoder" and run.model.latent_dim == 16
    assert run.evaluate()["mse"] == pytest.approx(r.test["mse"], rel=1e-5)  # the run's own split, read back


def test_an_autoencoder_trained_in_bf16_reports_the_test_metrics_that_evaluate_gives(tmp_path, monkeypatch):
    """Its test split is measured in fp32 (as the pictures are made and `cnnlab ae evaluate` measures), not in the
    precision it trained in: on a GPU, where auto is bf16, results.json's mse had been bf16's."""
    from cnnlab.train import precision

    monkeypatch.setattr(precision, "native_bf16", lambda: True)  # bf16 allowed on any CPU (slow where emulated)
    r = fit(AEConfig(data="digits", epochs=1, quiet=True, run_dir=str(tmp_path / "ae"), kind="conv",
                     precision="bf16"), log=lambda *a: None)
    assert json.loads((r.run_dir / "meta.json").read_text())["precision"] == "bf16"
    tested = json.loads((r.run_dir / "results.json").read_text())["test"]
    again = Run.open(r.run_dir, holds="autoencoder").evaluate()
    assert (again["mse"], again["loss"], again["ssim"]) == (tested["mse"], tested["loss"], tested["ssim"])


def test_an_autoencoder_run_measures_its_test_split_once(tmp_path, monkeypatch):
    """Validation once per epoch and the test split once, in fp32 with SSIM: not once in the run's precision
    and again in fp32."""
    calls = []
    evaluate = ReconstructionTask.evaluate

    def counted(self, model, loader, device, precision="fp32", channels_last=False, ssim=False, samples=0):
        calls.append(ssim)
        return evaluate(self, model, loader, device, precision, channels_last, ssim, samples)

    monkeypatch.setattr(ReconstructionTask, "evaluate", counted)
    r = fit(AEConfig(data="digits", epochs=2, quiet=True, run_dir=str(tmp_path / "ae"), kind="conv"),
            log=lambda *a: None)
    assert calls == [False, False, True] and "ssim" in r.test


def test_denoising_raises_psnr_over_the_noisy_input(tmp_path):
    r = fit(AEConfig(data="digits", epochs=15, quiet=True, run_dir=str(tmp_path / "d"), kind="denoising",
                     noise="gaussian:0.3"), log=lambda *a: None)
    from cnnlab.data import load_dataset

    clean = load_dataset("digits").test.images
    noisy = Noise.parse("gaussian:0.3")(clean, torch.Generator().manual_seed(12345))
    assert r.test["psnr"] > psnr(noisy, clean) + 3  # the same corruption as the task's evaluation


def test_a_vaes_active_units_are_those_whose_posterior_mean_varies_over_the_split():
    """A collapsed unit's mean sits at a constant near, not at, zero: counted as |u| > 1e-3 it looked active
    (Burda et al. 2016's measure: Var_x(E[u | x]) > 0.01)."""
    torch.manual_seed(0)
    vae = create_autoencoder("dense", (1, 8, 8), 4, variational=True, hidden=(32,))
    with torch.no_grad():
        vae.to_code.weight[:2].zero_()  # the first two means ignore the input: collapsed units
        vae.to_code.bias[:2] = 0.05
        vae.to_code.weight[2:4] *= 20  # the other two follow it
    x = torch.rand(64, 1, 8, 8)
    loader = [(x[:32], None), (x[32:], None)]
    mu = vae.eval().encode(x)
    expected = float((mu.var(0, unbiased=False) > 0.01).float().mean())  # computed apart, over the whole split
    assert expected == 0.5 and (mu[:, :2].abs() > 1e-3).all()  # a per-image threshold would say 100%
    assert ReconstructionTask().evaluate(vae, loader, torch.device("cpu"))["active"] == expected
    plain = create_autoencoder("dense", (1, 8, 8), 4, topk=1, hidden=(32,))
    assert ReconstructionTask().evaluate(plain, loader, torch.device("cpu"))["active"] == 0.25  # one of 4 kept


def test_vae_reports_the_elbo_and_samples(tmp_path):
    r = fit(AEConfig(data="digits", epochs=3, quiet=True, run_dir=str(tmp_path / "v"), kind="vae", latent_dim=4,
                     kl_warmup=2), log=lambda *a: None)
    assert r.test["kl"] >= 0 and r.test["elbo"] < 0 and (r.run_dir / "plots" / "samples.png").is_file()
    assert r.model.sample(5).shape == (5, 1, 8, 8)


def _vae_with_wide_posteriors() -> torch.nn.Module:
    torch.manual_seed(0)
    vae = create_autoencoder("dense", (1, 8, 8), 4, variational=True, hidden=(32,)).eval()
    with torch.no_grad():
        vae.to_code.bias[4:] = 0.0  # log sigma^2 near 0: posteriors as wide as the prior, far from their mean
        vae.to_code.weight[4:] *= 0.1
    return vae


def test_a_vaes_elbo_is_the_expectation_over_its_posterior_not_its_means_reconstruction():
    """ELBO = E_q(z|x)[log p(x | z)] - KL(q(z|x) || N(0, I)) (Kingma & Welling 2014, Eq. 3), computed apart
    with torch.distributions from 2,000 draws per image; decoding the posterior mean alone is off by more
    than the estimate's spread (Jensen's gap)."""
    from torch.distributions import Bernoulli, Normal, kl_divergence

    vae = _vae_with_wide_posteriors()
    x = (torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    with torch.no_grad():
        out = vae(x)
        q = Normal(out.mu, torch.exp(0.5 * out.logvar))
        kl = kl_divergence(q, Normal(0.0, 1.0)).sum(1)
        z = q.sample((2000,))                                               # 2000 x 64 x 4
        loglik = Bernoulli(logits=vae.decode(z.flatten(0, 1))).log_prob(x.repeat(2000, 1, 1, 1))
        loglik = loglik.flatten(1).sum(1).view(2000, 64)
    reference = float((loglik.mean(0) - kl).mean())
    spread = float(loglik.std(0).mean()) / (10 * 64) ** 0.5                 # the 10-draw estimate's error
    measured = ReconstructionTask().evaluate(vae, [(x, None)], torch.device("cpu"), samples=10)
    assert measured["elbo"] == pytest.approx(reference, abs=4 * spread)
    at_mean = float(Bernoulli(logits=out.logits).log_prob(x).flatten(1).sum(1).mean() - kl.mean())
    assert at_mean - reference > 8 * spread  # what was reported before: the mean's reconstruction
    assert "elbo" not in ReconstructionTask().evaluate(vae, [(x, None)], torch.device("cpu"))  # no draws, no ELBO


def test_a_gaussian_likelihoods_nll_is_in_nats():
    """The squared error is the negative log-likelihood of a Gaussian of variance 1/2 up to log(pi)/2 per
    pixel: the reported nll is that Gaussian's, computed apart with torch.distributions."""
    from torch.distributions import Normal

    torch.manual_seed(0)
    ae = create_autoencoder("dense", (1, 8, 8), 4, hidden=(32,)).eval()
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        nll = -Normal(torch.sigmoid(ae(x).logits), 0.5 ** 0.5).log_prob(x).flatten(1).sum(1).mean()
    got = ReconstructionTask(likelihood="gaussian").evaluate(ae, [(x, None)], torch.device("cpu"))["nll"]
    assert got == pytest.approx(float(nll), rel=1e-5)


def test_validation_weighs_the_kl_term_fully_during_the_warm_up():
    """Early stopping and the best checkpoint compare validation losses: with the warm-up's weight in them they
    rose each epoch as the weight rose, whatever the model did."""
    vae = _vae_with_wide_posteriors()
    x = torch.rand(32, 1, 8, 8)
    warming = ReconstructionTask(kl_scale=0.1)
    full = ReconstructionTask().evaluate(vae, [(x, None)], torch.device("cpu"))["loss"]
    assert warming.evaluation().evaluate(vae, [(x, None)], torch.device("cpu"))["loss"] == full
    assert warming.evaluate(vae, [(x, None)], torch.device("cpu"))["loss"] < full and warming.kl_scale == 0.1


def test_sparse_code_has_the_measured_active_fraction(tmp_path):
    r = fit(AEConfig(data="digits", epochs=2, quiet=True, run_dir=str(tmp_path / "s"), kind="sparse", body="dense",
                     latent_dim=16, topk=4), log=lambda *a: None)
    assert 0 < r.test["active"] <= 4 / 16
    assert json.loads((r.run_dir / "results.json").read_text())["autoencoder"]["active_code_fraction"] <= 0.25




def test_cli_trains_resumes_and_refuses_bad_input(tmp_path, capsys):
    code, out, _ = run(capsys, "ae", "train", "--kind", "recurrent", "--data", "digits", "--epochs", "1",
                       "--latent-dim", "8", "--run-dir", tmp_path / "r", "--quiet")
    assert code == 0 and "test psnr" in out and "test ssim" in out
    code, out, _ = run(capsys, "ae", "train", "--resume", tmp_path / "r", "--epochs", "2", "--quiet")
    assert code == 0 and len((tmp_path / "r" / "metrics.csv").read_text().splitlines()) == 3
    code, _, err = run(capsys, "ae", "train", "--resume", tmp_path / "r", "--epochs", "3", "--latent-dim", "4")
    assert code == 2 and "cannot change --latent-dim" in err
    for argv, message in ((["--kind", "pca"], "--kind: must be one of"),
                          (["--latent-dim", "0"], "--latent-dim: must be an integer from 1"),
                          (["--kind", "conv", "--image-size", "7"], "cannot be halved"),
                          (["--kind", "denoising", "--noise", "blur:1"], "not one of")):
        code, _, err = run(capsys, "ae", "train", "--epochs", "1", "--run-dir", tmp_path / "bad", *argv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    code, _, err = run(capsys, "ae")
    assert code == 2 and "cnnlab ae train" in err


def test_a_classifier_run_is_not_an_autoencoder(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--run-dir", str(tmp_path / "c"), "--quiet"]) == 0
    code, _, err = run(capsys, "ae", "train", "--resume", tmp_path / "c", "--epochs", "2", "--latent-dim", "4")
    assert code == 2 and f"has no --latent-dim; continue it with cnnlab train --resume {tmp_path / 'c'}" in err
    with pytest.raises(CnnlabError, match="holds a classifier, not an autoencoder; use cnnlab evaluate, predict or "
                                          "transfer --from on it"):
        Run.open(tmp_path / "c", holds="autoencoder")


def test_another_commands_resume_of_a_run_says_what_kind_of_run_it_continues(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--run-dir", str(tmp_path / "c"), "--quiet"]) == 0
    code, out, err = run(capsys, "ae", "train", "--resume", tmp_path / "c", "--epochs", "2", "--quiet")
    assert code == 0 and "test accuracy" in out  # continued as the classifier it is
    said = f"'{tmp_path / 'c'}' is a run of kind classifier (cnnlab train trains it); it continues as one"
    assert err == f"cnnlab: warning: {said}\n"
    code, _, err = run(capsys, "train", "--resume", tmp_path / "c", "--epochs", "3", "--quiet")
    assert code == 0 and "warning" not in err  # its own command: nothing to say


def test_encode_writes_codes_with_labels_and_a_map(conv_run, capsys):
    import numpy as np

    code, out, _ = run(capsys, "ae", "encode", conv_run.run_dir)
    enc = conv_run.run_dir / "encode"
    codes, labels = np.load(enc / "codes.npy"), np.load(enc / "labels.npy")
    assert code == 0 and codes.shape == (270, 16) and sorted(set(labels.tolist())) == list(range(10))
    lines = (enc / "codes.csv").read_text().splitlines()
    assert lines[0].startswith("z0,z1") and lines[0].endswith("label,class") and len(lines) == 271
    assert (enc / "code_map.png").stat().st_size > 10_000


def test_denoise_checks_a_denoising_run_on_its_own_noise_unless_told(tmp_path, capsys):
    r = fit(AEConfig(data="digits", epochs=1, quiet=True, run_dir=str(tmp_path / "d"), kind="denoising",
                     noise="salt-pepper:0.2"), log=lambda *a: None)
    for argv, want in (([], "salt-pepper"), (["--noise", "gaussian:0.1"], "gaussian")):
        code, out, err = run(capsys, "ae", "denoise", r.run_dir, *argv)
        assert code == 0, err
        assert json.loads((r.run_dir / "denoise" / "denoise.json").read_text())["noise"].startswith(want)


def test_denoising_beats_the_noisy_input_and_the_classical_filter(tmp_path, capsys):
    r = fit(AEConfig(data="digits", epochs=15, quiet=True, run_dir=str(tmp_path / "d"), kind="denoising"),
            log=lambda *a: None)
    code, out, _ = run(capsys, "ae", "denoise", r.run_dir, "--noise", "gaussian:0.3")
    assert code == 0 and "autoencoder" in out and "best on validation" in out
    result = json.loads((r.run_dir / "denoise" / "denoise.json").read_text())
    assert result["autoencoder"]["psnr"] > result["noisy"]["psnr"] + 3
    assert result["autoencoder"]["psnr"] > result["filter"]["psnr"]
    assert result["autoencoder"]["ssim"] > result["filter"]["ssim"]
    assert (r.run_dir / "denoise" / "denoise.png").is_file()


def test_a_16_number_code_keeps_the_class_information_of_64_pixels(conv_run, capsys):
    """Measured over autoencoder seeds 0-4 (Intel Xeon, 2 cores; 3 label draws each, as the command does): the
    encoder's accuracy minus the raw pixels' is -0.6 to +2.2 points at 5 and 10 labels per class, and 82-91% in
    all. Whether the code beats the pixels depends on the seed (and on the CPU: an AVX2 machine saw -1.0 at 10
    labels), so the test asserts only what holds with a margin: never more than 3 points behind, far above chance.
    """
    code, out, _ = run(capsys, "ae", "features", conv_run.run_dir, "--labels", "5,10")
    rows = json.loads((conv_run.run_dir / "features" / "features.json").read_text())["rows"]
    acc = {(r["labels_per_class"], r["features"]): r["accuracy_mean"] for r in rows}
    assert code == 0 and {f for _, f in acc} == {"raw pixels", "PCA (16)", "encoder (16)"}
    for n in (5, 10):
        assert acc[(n, "encoder (16)")] > acc[(n, "raw pixels")] - 0.03
        assert acc[(n, "encoder (16)")] > 0.75  # ten classes: chance is 10%


def test_interpolate_and_attribute_arithmetic(conv_run, capsys):
    code, out, _ = run(capsys, "ae", "interpolate", conv_run.run_dir, "3", "17", "--steps", "5",
                       "--arithmetic", "1", "7")
    assert code == 0 and (conv_run.run_dir / "interpolate" / "interpolation.png").is_file()
    assert "and A + mean(7) - mean(1) ->" in out  # the printed line names the arithmetic row too
    code, _, err = run(capsys, "ae", "interpolate", conv_run.run_dir, "3", "17", "--arithmetic", "4", "4")
    assert code == 2 and "names one class twice" in err and "--arithmetic 4 0" in err
    code, _, err = run(capsys, "ae", "interpolate", conv_run.run_dir, "3", "9999")
    assert code == 2 and "index 9999 is outside the test split" in err
    code, _, err = run(capsys, "ae", "interpolate", conv_run.run_dir, "3", "4", "--arithmetic", "1", "x")
    assert code == 2 and "class 'x'" in err


def test_evaluate_shows_the_autoencoder_is_no_general_compressor(conv_run, capsys):
    code, out, _ = run(capsys, "ae", "evaluate", conv_run.run_dir, "--data", "textures:size=8")
    result = json.loads((conv_run.run_dir / "evaluate" / "evaluate.json").read_text())
    own = result["digits (its training distribution)"]
    other = next(v for k, v in result.items() if k.startswith("textures"))
    assert code == 0 and other["mse"] > 3 * own["mse"]
    code, _, err = run(capsys, "ae", "evaluate", conv_run.run_dir, "--data", "photos")
    assert code == 2 and "1-channel images" in err and len(err.strip().splitlines()) == 1


def test_generate_needs_a_vae_and_labels_samples_with_a_classifier(conv_run, tmp_path, capsys):
    code, _, err = run(capsys, "ae", "generate", conv_run.run_dir)
    assert code == 2 and "only a variational autoencoder samples from a prior; this one is conv (train one with " \
        "cnnlab ae train --kind vae)" in err, err
    vae = fit(AEConfig(data="digits", epochs=2, quiet=True, run_dir=str(tmp_path / "v"), kind="vae", latent_dim=4),
              log=lambda *a: None)
    assert main(["train", "--epochs", "1", "--run-dir", str(tmp_path / "clf"), "--quiet"]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "ae", "generate", vae.run_dir, "-n", "20", "--classifier", tmp_path / "clf")
    assert code == 0 and "mean confidence" in out and (vae.run_dir / "generate" / "samples.png").is_file()
    code, _, err = run(capsys, "ae", "generate", vae.run_dir, "--classifier", conv_run.run_dir)
    assert code == 2 and "--classifier takes a classifier's run (cnnlab train)" in err and "holds an autoencoder" in err


def test_spread_is_the_class_entropy_in_units_of_the_class_count():
    import numpy as np

    from cnnlab.ae.apps import spread

    # by hand: H(3/4, 1/4) in bits = 3/4 log2(4/3) + 1/4 log2(4)
    assert spread(np.array([3, 1])) == pytest.approx(0.75 * np.log2(4 / 3) + 0.5)
    assert spread(np.array([5, 5, 5])) == pytest.approx(1.0)
    assert f"{spread(np.array([0, 64])):.2f}" == "0.00"  # all in one class: 0, printed without a minus sign
    assert spread(np.array([9])) == 0.0 and spread(np.array([0, 0])) == 0.0


def test_ae_tools_refuse_classifier_runs_and_bad_images(conv_run, tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--run-dir", str(tmp_path / "clf"), "--quiet"]) == 0
    capsys.readouterr()
    for argv in (["encode", tmp_path / "clf"], ["denoise", tmp_path / "clf"], ["features", tmp_path / "clf"]):
        code, _, err = run(capsys, "ae", *argv)
        assert code == 2 and "not an autoencoder" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "ae", "denoise", conv_run.run_dir, tmp_path / "missing.png")
    assert code == 2 and "does not exist" in err
    (tmp_path / "fake.png").write_text("not an image")
    code, _, err = run(capsys, "ae", "denoise", conv_run.run_dir, tmp_path / "fake.png")
    assert code == 2 and "cannot read image" in err


def test_epoch_callbacks_evaluate_with_the_runs_own_metrics(tmp_path):
    seen = []
    fit(AEConfig(data="digits", epochs=1, quiet=True, run_dir=str(tmp_path / "cb"), kind="conv", latent_dim=4),
        log=lambda *a: None,
        on_epoch_end=lambda end: seen.append(end.evaluate("val")))
    assert len(seen) == 1 and seen[0]["psnr"] > 0 and "accuracy" not in seen[0]


@pytest.mark.parametrize("shape, nrow", [((5, 1, 6, 4), 3), ((4, 3, 5, 5), 4), ((2, 1, 3, 3), 8)])
def test_image_grids_are_what_torchvisions_make_grid_draws(shape, nrow):
    from torchvision.utils import make_grid

    from cnnlab.ae.viz import _grid

    images = torch.rand(shape) * 1.4 - 0.2  # outside [0, 1] too: both clamp
    expected = make_grid(images.clamp(0, 1), nrow=nrow, padding=1, pad_value=1.0)
    assert torch.equal(_grid(images, nrow), expected)
