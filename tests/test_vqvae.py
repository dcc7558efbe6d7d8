"""The VQ-VAE (``--model vqvae``): finite scalar quantisation, its autoregressive prior, and the
applications every model has (reconstruct, sample, evaluate, detect, export)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vaekit
from helpers import make_blobs, vaekit_cli
from vaekit.errors import VaekitError
from vaekit.models.vqvae import FSQ
from vaekit.priors import AutoregressivePrior

VQ = dict(model="vqvae", hidden_dims=(16,), epochs=15, batch_size=32, lr=3e-3, progress=False, report=False)


def test_fsq_rounds_each_channel_to_its_levels_and_numbers_every_symbol():
    fsq = FSQ((8, 5, 3))
    z = torch.randn(4000, 3) * 3
    codes = fsq(z)
    for i, levels in enumerate((8, 5, 3)):
        assert len(codes[:, i].unique()) == levels and codes[:, i].abs().max() <= 1
    symbols = fsq.indices(codes)
    assert symbols.min() >= 0 and symbols.max() < 120 and len(symbols.unique()) > 100
    torch.testing.assert_close(fsq.codes(symbols), codes)           # a symbol is its code
    assert torch.equal(fsq.indices(fsq.codes(torch.arange(120))), torch.arange(120))
    z.requires_grad_(True)
    fsq(z).sum().backward()                                        # rounding passes the gradient through
    assert (z.grad != 0).float().mean() > 0.5


def test_autoregressive_prior_learns_dependence_between_positions():
    """Grids whose positions all hold one symbol (one of three, in turn): the prior must learn
    that the first position decides the rest, and its step-by-step sampling must agree with the
    whole-sequence pass it was trained with."""
    fsq = FSQ((5, 5))
    choice = torch.tensor([3, 11, 20]).repeat(200)
    codes = fsq.codes(choice[:, None].expand(-1, 6)).flatten(1)     # 600 grids of 6 positions
    prior = AutoregressivePrior(6, (5, 5), width=32, layers=2).fit(codes, seed=0)
    drawn = fsq.indices(prior.sample(300, torch.Generator().manual_seed(0)).view(300, 6, 2))
    constant = (drawn == drawn[:, :1]).all(1)
    assert constant.float().mean() > 0.9
    shares = torch.bincount(drawn[:, 0], minlength=25)[[3, 11, 20]] / 300
    assert shares.sum() > 0.95 and shares.min() > 0.15
    with torch.no_grad():
        seen = prior.log_prob(codes[:3])
        mixed = prior.log_prob(fsq.codes(torch.tensor([[3, 11, 3, 11, 3, 11]])).flatten(1))
    assert seen.min() > -2 and mixed.item() < -10                  # about log(1/3) for a seen grid
    # The cached steps give the whole pass's probabilities: a grid drawn at a low temperature is its likeliest.
    cold = fsq.indices(prior.sample(50, torch.Generator().manual_seed(1), temperature=0.05).view(50, 6, 2))
    assert (cold == cold[:, :1]).all()
    frozen = fsq.indices(prior.sample(50, torch.Generator().manual_seed(1), temperature=1e-40).view(50, 6, 2))
    assert (frozen == frozen[:, :1]).all() and set(frozen[:, 0].tolist()) <= {3, 11, 20}  # the likeliest, not NaN


def test_vqvae_trains_reconstructs_and_samples_shapes_like_its_data(tmp_path, blobs_npz, blobs):
    run = vaekit.train(str(blobs_npz), out=tmp_path / "vq", **VQ)
    model = run.model
    assert run.config.model.arch == "conv" and run.config.model.prior == "autoregressive"
    assert model.latent_dim == run.config.model.latent_dim == 4 * 4 * 3  # a 4 x 4 grid of 3 channels
    assert model.sampling_priors == ("autoregressive",)
    x = blobs[0].astype(np.float32) / 255
    recon = run.reconstruct(blobs[0])
    assert ((recon - x) ** 2).mean() < 0.3 * ((x - x.mean(0)) ** 2).mean()
    # Samples look like the data: each is near some training image, unlike noise of the same brightness.
    samples = run.sample(60, seed=0)
    assert samples.shape == (60, 8, 8) and np.array_equal(samples, run.sample(60, seed=0))

    def nearest(images):
        return ((images[:, None] - x[None]) ** 2).sum((2, 3)).min(1)

    noise = np.random.default_rng(0).permuted(samples.reshape(60, -1), axis=1).reshape(60, 8, 8)
    assert np.median(nearest(samples)) < 0.3 * np.median(nearest(noise))
    m = run.evaluate()
    assert m["codebook_size"] == 125 and 0 < m["codebook_used"] <= 1 and m["codebook_perplexity"] > 1
    assert m["neg_elbo"] is None and m["recon"] > 0
    with pytest.raises(VaekitError, match="a VQ-VAE has no N\\(0, I\\) prior; sample with prior='autoregressive'"):
        run.sample(4, prior="normal")
    reloaded = vaekit.load(run.path)
    assert np.array_equal(reloaded.sample(8, seed=3), run.sample(8, seed=3))
    # Codes off the grid (a slider, an interpolation, another prior) decode as the nearest grid point.
    z = np.random.default_rng(0).normal(size=(5, model.latent_dim)).astype(np.float32)
    snapped = model.snapped(torch.from_numpy(z)).numpy()
    assert set(np.unique(snapped)) <= {-1.0, -0.5, 0.0, 0.5, 1.0}
    np.testing.assert_array_equal(run.decode(z), run.decode(snapped))


def test_vqvae_is_served_like_every_run(tmp_path, blobs_npz, blobs):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from vaekit.serve import create_app

    run = vaekit.train(str(blobs_npz), out=tmp_path / "vq", **{**VQ, "epochs": 2})
    client = TestClient(create_app(run.path))
    info = client.get("/info").json()
    assert info["priors"] == ["autoregressive"] and info["prior"] == "autoregressive" and info["latent_dim"] == 48
    samples = client.get("/sample", params={"n": 5, "seed": 2, "temperature": 0.7}).json()["samples"]
    np.testing.assert_allclose(samples, run.sample(5, seed=2, temperature=0.7), atol=1e-5)
    x = blobs[0][:4].astype(np.float32) / 255
    codes = client.post("/encode", json={"inputs": x.tolist()}).json()["codes"]
    np.testing.assert_allclose(codes, run.encode(x), atol=1e-6)
    assert "no N(0, I) prior" in client.get("/sample", params={"prior": "normal"}).json()["error"]


@pytest.mark.parametrize("argv, message", [
    (["--model", "vqvae", "--latent-dim", "8"], "--latent-dim cannot apply to --model vqvae"),
    (["--model", "vqvae", "--arch", "mlp"], "--model vqvae is convolutional"),
    (["--model", "vqvae", "--prior", "normal"], "--prior normal cannot apply to --model vqvae"),
    (["--model", "vqvae", "--beta", "2"], "--beta 2 cannot apply to --model vqvae"),
    (["--prior", "autoregressive"], "--prior autoregressive is a prior over a VQ-VAE's grid"),
])
def test_options_that_cannot_apply_to_a_vqvae_get_one_line(tmp_path, blobs_npz, argv, message):
    r = vaekit_cli("train", "--data", blobs_npz, "--out", tmp_path / "x", "--epochs", "2", "--quiet",
                   "--no-report", *argv)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "x").exists()


def test_a_table_cannot_train_a_vqvae(tmp_path):
    with pytest.raises(VaekitError, match="quantises a grid of image features.*for tables use"):
        vaekit.train(np.random.default_rng(0).normal(size=(100, 5)), out=tmp_path / "t", **VQ)
    assert not (tmp_path / "t").exists()


def test_vqvae_detector_flags_shapes_it_never_saw(tmp_path):
    x, y = make_blobs(300, seed=1)
    normal, odd = x[y < 2], x[y == 2]
    det = vaekit.AnomalyDetector(model="vqvae", epochs=15, random_state=0).fit(normal[:150])
    test = np.concatenate([normal[150:], odd])
    labels = np.r_[np.zeros(len(normal) - 150), np.ones(len(odd))]
    assert det.anomaly_score_ == "recon" and det.score(test, labels) > 0.95
    det.save(tmp_path / "det")
    np.testing.assert_allclose(vaekit.AnomalyDetector.load(tmp_path / "det").decision_function(test),
                               det.decision_function(test), rtol=1e-5)
    with pytest.raises(VaekitError, match="model='vqvae' takes images"):
        vaekit.AnomalyDetector(model="vqvae").fit(np.random.default_rng(0).normal(size=(50, 4)))
    with pytest.raises(VaekitError, match="needs a VAE"):
        vaekit.AnomalyDetector(model="vqvae", anomaly_score="elbo").fit(normal)


@pytest.mark.slow
def test_vqvae_exports_a_sampler_that_draws_what_pytorch_draws(tmp_path, blobs_npz):
    ort = pytest.importorskip("onnxruntime")
    from vaekit.export import export_onnx

    run = vaekit.train(str(blobs_npz), out=tmp_path / "vq", **{**VQ, "epochs": 2, "hidden_dims": (8, 16)})
    assert run.model.positions == 4  # a 2 x 2 grid: the sampler holds one copy of the prior per position
    files = {p.name: p for p in export_onnx(run.path)}
    assert set(files) == {"encoder.onnx", "decoder.onnx", "sampler-autoregressive.onnx"}
    x = np.random.default_rng(0).random((7, 1, 8, 8), dtype=np.float32)
    ses = {name: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for name, p in files.items()}
    z = ses["encoder.onnx"].run(None, {"x": x})[0]
    with torch.no_grad():
        np.testing.assert_allclose(z, run.model.codes(torch.from_numpy(x)).numpy(), atol=1e-5)
    uniform = np.random.default_rng(1).random((9, run.model.positions), dtype=np.float32)
    got = ses["sampler-autoregressive.onnx"].run(None, {"uniform": uniform})[0]
    with torch.no_grad():
        want = run.model.decode_mean(run.model.priors["autoregressive"].transform(torch.from_numpy(uniform)))
    assert got.shape == (9, 1, 8, 8) and np.abs(got - want.numpy()).max() < 1e-4
