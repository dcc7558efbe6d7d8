"""Priors fitted to the codes after training (vaekit.priors), and the sample-quality measures
(vaekit.sample_quality) that say whether they help."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vaekit
from helpers import TINY, make_blobs
from vaekit.cli import main
from vaekit.errors import VaekitError
from vaekit.priors import FlowPrior, GaussianMixturePrior, gmm_components, mixture_size
from vaekit.sample_quality import frechet_distance, precision_recall, sample_quality


def three_clusters(n=1500, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (n, 3) around three centres, and which centre each is around."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-6.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 2.0]])
    which = torch.randint(0, 3, (n,), generator=g)
    return centres[which] + 0.5 * torch.randn(n, 3, generator=g), which


def test_mixture_finds_the_codes_clusters_and_samples_where_they_lie():
    codes, _ = three_clusters()
    prior = GaussianMixturePrior(3, 64).fit(codes)
    assert (prior.log_weight > -np.inf).sum() == 64 and mixture_size(30, 3, 64) == 1  # fewer codes, fewer parts
    assert gmm_components(20) == 64 and gmm_components(512) == 16  # wide codes: a bounded file
    drawn = prior.sample(3000, generator=torch.Generator().manual_seed(1))
    # Every draw lies near one of the clusters (N(0, I) would put most between them) ...
    nearest = torch.cdist(drawn, torch.tensor([[-6.0, 0, 0], [6.0, 0, 0], [0, 6.0, 2.0]])).min(1).values
    assert (nearest < 2.5).float().mean() > 0.99
    # ... in the clusters' shares and spread.
    assert torch.allclose(drawn.mean(0), codes.mean(0), atol=0.3)
    assert torch.allclose(drawn.std(0), codes.std(0), rtol=0.1)
    # Lower temperature: the same components, each narrower, so draws lie nearer the centres.
    cold = prior.sample(3000, generator=torch.Generator().manual_seed(1), temperature=0.1)
    cold_nearest = torch.cdist(cold, torch.tensor([[-6.0, 0, 0], [6.0, 0, 0], [0, 6.0, 2.0]])).min(1).values
    assert cold_nearest.max() < 2.5 and cold_nearest.mean() < 0.9 * nearest.mean()
    # The component picked from a uniform draw (what the ONNX sampler does) follows the weights.
    picks = prior.pick(torch.rand(20000, generator=torch.Generator().manual_seed(2)))
    share = torch.bincount(picks, minlength=64).double() / 20000
    assert torch.allclose(share, prior.log_weight.exp().double(), atol=0.02)


def test_flow_learns_a_curved_density_a_gaussian_cannot():
    g = torch.Generator().manual_seed(0)
    angle = torch.rand(3000, generator=g) * 2 * torch.pi
    ring = torch.stack([angle.cos(), angle.sin()], 1) * 4 + 0.2 * torch.randn(3000, 2, generator=g)
    flow = FlowPrior(2).fit(ring[:2500], steps=1500)
    held = ring[2500:]
    gaussian = torch.distributions.MultivariateNormal(ring[:2500].mean(0), torch.cov(ring[:2500].T))
    assert flow.log_prob(held).mean() > gaussian.log_prob(held).mean() + 0.5
    radius = flow.sample(2000, generator=torch.Generator().manual_seed(3)).norm(dim=1)
    assert abs(radius.median().item() - 4) < 0.5 and (radius < 2).float().mean() < 0.05  # the hole stays empty


def test_conditional_gaussians_are_the_class_codes_moments():
    codes, y = three_clusters()
    prior = GaussianMixturePrior(3, 4).fit(codes, y)
    for c in range(3):
        mine = codes[y == c].double()
        tril = prior.scale_tril[c].double()
        assert torch.allclose(prior.loc[c].double(), mine.mean(0), atol=1e-5)
        assert torch.allclose(tril @ tril.T, torch.cov(mine.T, correction=0), atol=1e-4)
    assert torch.equal(prior.loc[3], torch.zeros(3))  # a class absent from the data keeps N(0, I)
    drawn = prior.sample(50, component=torch.full((50,), 1))
    assert torch.cdist(drawn, prior.loc[1:2]).max() < 3


def test_new_runs_sample_from_a_mixture_fitted_to_their_codes(tmp_path, blobs_npz, blobs):
    run = vaekit.train(str(blobs_npz), out=tmp_path / "r", **{**TINY, "epochs": 15, "lr": 3e-3})
    assert run.config.model.prior == "gmm"
    assert json.loads((run.path / "config.json").read_text())["model"]["prior"] == "gmm"
    # Draws decoded from the mixture come nearer the training images than draws from N(0, I).
    x = blobs[0].reshape(len(blobs[0]), -1) / 255

    def distance(samples):
        return np.sqrt(((samples.reshape(len(samples), 1, -1) - x[None]) ** 2).sum(-1)).min(1).mean()

    assert distance(run.sample(200, prior="gmm")) < distance(run.sample(200, prior="normal"))
    np.testing.assert_array_equal(run.sample(8, seed=3), run.sample(8, seed=3, prior="gmm"))
    # The weights file holds the fitted prior: a fresh load samples the same.
    np.testing.assert_array_equal(vaekit.load(run.path).sample(8, seed=3), run.sample(8, seed=3))
    with pytest.raises(VaekitError, match="no fitted flow prior; choose one of normal, gmm, or train with "
                                          "prior='flow'"):
        run.sample(4, prior="flow")
    with pytest.raises(VaekitError, match="unknown prior 'gauss'"):
        run.sample(4, prior="gauss")


def test_an_autoencoder_samples_through_its_fitted_prior(tmp_path, blobs_npz, capsys):
    run = vaekit.train(str(blobs_npz), out=tmp_path / "ae", **{**TINY, "model": "ae"})
    assert run.sample(5).shape == (5, 8, 8)
    with pytest.raises(VaekitError, match="no N\\(0, I\\) prior; sample with prior='gmm'"):
        run.sample(5, prior="normal")
    assert main(["sample", str(run.path), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    with pytest.raises(VaekitError, match="prior='normal' cannot apply to model='ae'"):
        vaekit.train(str(blobs_npz), out=tmp_path / "ae2", **{**TINY, "model": "ae", "prior": "normal"})


def test_flow_prior_on_request_and_on_the_command_line(tmp_path, blobs_npz, capsys):
    out = tmp_path / "f"
    assert main(["train", "--data", str(blobs_npz), "--out", str(out), "--hidden-dims", "32", "--latent-dim", "4",
                 "--epochs", "3", "--quiet", "--no-report", "--prior", "flow"]) == 0
    run = vaekit.load(out)
    assert run.config.model.prior == "flow" and set(run.model.sampling_priors) == {"normal", "gmm", "flow"}
    capsys.readouterr()
    for prior in ("normal", "gmm", "flow"):
        path = tmp_path / f"{prior}.npy"
        assert main(["sample", str(out), "--n", "6", "--prior", prior, "--out", str(path)]) == 0
        assert np.load(path).shape == (6, 8, 8) and np.isfinite(np.load(path)).all()
    assert not np.array_equal(np.load(tmp_path / "flow.npy"), np.load(tmp_path / "gmm.npy"))
    assert main(["sample", str(out), "--n", "6", "--prior", "mixture", "--out", str(tmp_path / "x.npy")]) == 2
    assert "invalid choice: 'mixture'" in capsys.readouterr().err


def test_runs_made_before_priors_sample_as_they_did(tmp_path, blobs_npz):
    from safetensors.torch import load_file, save_file

    run = vaekit.train(str(blobs_npz), out=tmp_path / "r", **TINY)
    config = json.loads((run.path / "config.json").read_text())
    del config["model"]["prior"]
    (run.path / "config.json").write_text(json.dumps(config))
    weights = run.path / "model.safetensors"
    save_file({k: v for k, v in load_file(weights).items() if not k.startswith("priors.")}, weights,
              metadata={"format": "pt"})
    old = vaekit.load(run.path)
    assert old.model.default_prior == "normal"
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        expected = old.model.decode_mean(torch.randn(4, 4, generator=g))
    np.testing.assert_allclose(old.sample(4, seed=0), expected[:, 0].numpy(), atol=1e-6)
    with pytest.raises(VaekitError, match="no fitted gmm prior; choose one of normal"):
        old.sample(4, prior="gmm")


def test_conditional_runs_saved_with_class_gaussians_by_the_old_names_still_load(tmp_path, blobs_npz):
    from safetensors.torch import load_file, save_file

    run = vaekit.train(str(blobs_npz), out=tmp_path / "cv", **{**TINY, "model": "cvae"})
    config = json.loads((run.path / "config.json").read_text())
    del config["model"]["prior"]
    (run.path / "config.json").write_text(json.dumps(config))
    weights = run.path / "model.safetensors"
    tensors = load_file(weights)
    gmm = {k: tensors.pop(f"priors.gmm.{k}") for k in ("loc", "scale_tril", "log_weight")}
    save_file({**tensors, "class_loc": gmm["loc"], "class_scale_tril": gmm["scale_tril"]}, weights,
              metadata={"format": "pt"})
    old = vaekit.load(run.path)
    assert old.model.default_prior == "gmm"
    assert torch.equal(old.model.priors["gmm"].loc, gmm["loc"])
    assert old.sample(6, label=2).shape == (6, 8, 8)
    # Older still: no class Gaussians at all, which sample from N(0, I) as they were trained to.
    save_file(tensors, weights, metadata={"format": "pt"})
    older = vaekit.load(run.path)
    assert not older.model.priors["gmm"].loc.any()
    assert older.sample(6, label=2).shape == (6, 8, 8)


def test_fid_and_precision_recall_tell_real_from_bad_samples():
    rng = np.random.default_rng(0)
    digits_like = (rng.random((600, 28, 28)) < 0.15).astype(np.float32)
    digits_like[:, 8:20, 12:16] = 1  # a shared stroke
    real, other_real = digits_like[:300], digits_like[300:]
    same = sample_quality(real, other_real)
    blank = sample_quality(real, np.zeros((300, 28, 28), np.float32) + rng.random((300, 28, 28)) * 0.01)
    assert same["fid"] < blank["fid"] / 5
    assert same["precision"] > 0.5 and same["recall"] > 0.5
    assert blank["precision"] < 0.05 and blank["recall"] < 0.05
    a = rng.normal(size=(500, 8))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(a, a + 3) == pytest.approx(8 * 9, rel=1e-6)  # the means' squared distance
    # Precision counts samples inside the real set's manifold; recall counts real points covered.
    precision, recall = precision_recall(a, a[:100] * 0.1)  # all near the centre: real-looking, no variety
    assert precision > 0.9 and recall < 0.2
    with pytest.raises(VaekitError, match="images"):
        sample_quality(np.zeros((10, 5)), np.zeros((10, 5)))


def test_evaluate_measures_samples_against_held_out_images(tmp_path, blobs_npz, capsys):
    out = tmp_path / "r"
    assert main(["train", "--data", str(blobs_npz), "--out", str(out), "--hidden-dims", "32", "--latent-dim", "4",
                 "--epochs", "3", "--quiet", "--no-report", "--val-fraction", "0.5"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--samples", "100", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["prior"] == "gmm" and m["n_samples"] == 100 and m["n_real"] == 100
    assert m["fid"] > m["fid_floor"] >= 0 and 0 <= m["recall"] <= 1 and 0 <= m["precision_floor"] <= 1
    assert main(["evaluate", str(out), "--samples", "100", "--prior", "normal"]) == 0
    assert "sample quality of 100 samples against as many held-out images: FID" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--prior", "normal"]) == 2
    assert "--prior chooses what --samples draws from" in capsys.readouterr().err


def test_sample_quality_is_for_images(tmp_path):
    x = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    run = vaekit.train(x, out=tmp_path / "t", **TINY)
    with pytest.raises(VaekitError, match="measured on images; this run models a table"):
        run.sample_quality(50, data=x)


def test_what_goes_wrong_gets_one_clear_line(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    x, y = make_blobs(n=500)
    np.savez(tmp_path / "blobs.npz", X=x, y=y)
    run = vaekit.train(str(tmp_path / "blobs.npz"), out=tmp_path / "r", **{**TINY, "val_fraction": 0.5})
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(VaekitError, match="temperature must be a positive number"):
            run.sample(4, temperature=bad)
    assert main(["sample", str(run.path), "--temperature", "inf", "--out", str(tmp_path / "s.npy")]) == 2
    assert "--temperature must be a positive number, got inf" in capsys.readouterr().err
    with pytest.raises(VaekitError, match="at least 10 samples, got 3"):
        run.sample_quality(3)
    assert run.sample_quality(5000)["n_samples"] == 250  # no more samples than real images to compare
    # A diverged model's samples are no numbers: one line, and its report still comes, without them.
    weights = run.path / "model.safetensors"
    tensors = load_file(weights)
    last = [k for k in tensors if k.startswith("decoder.") and k.endswith("bias")][-1]
    tensors[last] = torch.full_like(tensors[last], float("nan"))
    save_file(tensors, weights, metadata={"format": "pt"})
    broken = vaekit.load(run.path)
    with pytest.raises(VaekitError, match="diverged"):
        broken.sample_quality(100)
    assert main(["report", str(run.path)]) == 0
    assert "no sample quality: the generated images hold NaN" in (run.path / "report.html").read_text()


def test_a_run_stopped_before_its_priors_were_fitted_says_how_to_finish(tmp_path, blobs_npz):
    from safetensors.torch import load_file, save_file

    run = vaekit.train(str(blobs_npz), out=tmp_path / "ae", **{**TINY, "model": "ae"})
    weights = run.path / "model.safetensors"
    save_file({k: v for k, v in load_file(weights).items() if not k.startswith("priors.")}, weights,
              metadata={"format": "pt"})  # as the weights saved during training are
    with pytest.raises(VaekitError, match="stopped before its priors were fitted; finish it with resume"):
        vaekit.load(run.path).sample(4)
    finished = vaekit.train(resume=run.path, epochs=4, progress=False, report=False)
    assert finished.sample(4).shape == (4, 8, 8)


def test_a_mixture_keeps_only_what_it_fitted_and_a_flow_on_few_codes_stays_tame(tmp_path, blobs_npz):
    run = vaekit.train(str(blobs_npz), out=tmp_path / "r", **TINY)
    gmm = run.model.priors["gmm"]
    k = mixture_size(216, 4, 64)  # 240 images, a tenth held out
    assert gmm.loc.shape == (k, 4) and gmm.scale_tril.shape == (k, 4, 4) and k < 64
    assert vaekit.load(run.path).model.priors["gmm"].loc.shape == (k, 4)  # loads at its own size
    assert int(gmm.pick(torch.tensor([0.0, 0.999999, 1.0])).max()) == k - 1  # a draw of 1.0 picks the last
    codes = torch.tensor([[0.1, -0.3, 0.6], [0.2, 0.0, -0.5]])  # a two-row table's codes
    drawn = FlowPrior(3).fit(codes).sample(500, generator=torch.Generator().manual_seed(0))
    assert drawn.abs().max() < 10


def test_resume_finishes_a_run_stopped_after_its_last_epoch(tmp_path, blobs_npz):
    """Stopped while its priors were fitted (the weights saved without them, no pictures yet):
    --resume fits the priors and draws the pictures without training further."""
    from safetensors.torch import load_file, save_file

    run = vaekit.train(str(blobs_npz), out=tmp_path / "ae", **{**TINY, "model": "ae"})
    weights = run.path / "model.safetensors"
    save_file({k: v for k, v in load_file(weights).items() if not k.startswith("priors.")}, weights)
    for name in ("reconstructions.png", "samples.png"):
        (run.path / name).unlink()
    lines = (run.path / "metrics.jsonl").read_text()
    with pytest.raises(VaekitError, match="stopped before its priors were fitted"):
        vaekit.load(run.path).sample(3)
    finished = vaekit.train(resume=run.path, progress=False, report=False)
    assert finished.sample(3).shape == (3, 8, 8) and (run.path / "samples.png").exists()
    assert (run.path / "metrics.jsonl").read_text() == lines  # no epoch more
    with pytest.raises(VaekitError, match="already trained 3 epochs"):
        vaekit.train(resume=run.path, progress=False, report=False)

