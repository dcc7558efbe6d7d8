"""Training as a user relies on it: the loss falls, seeds reproduce, resume continues exactly,
early stopping stops, a reload gives identical outputs, run folders are never overwritten."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vaekit
from helpers import TINY
from vaekit import VaekitError


def train(blobs_npz, out, **options):
    return vaekit.train(str(blobs_npz), out=out, **{**TINY, **options})


def test_vae_learns_and_writes_a_complete_run_folder(tmp_path, blobs_npz):
    run = train(blobs_npz, tmp_path / "run", epochs=8)
    metrics = run.metrics()
    assert [m["epoch"] for m in metrics] == list(range(1, 9))
    assert metrics[-1]["train_loss"] < 0.8 * metrics[0]["train_loss"]
    assert metrics[-1]["val_loss"] < metrics[0]["val_loss"]
    for m in metrics:
        assert m.keys() >= {"epoch", "train_loss", "val_loss", "recon", "kl", "seconds", "samples_per_s"}
        assert m["recon"] + m["kl"] == pytest.approx(m["train_loss"], rel=1e-4)
    files = {p.name for p in run.path.iterdir()}
    assert files >= {"config.json", "metrics.jsonl", "model.safetensors", "training_state.pt",
                     "reconstructions.png", "samples.png"}
    config = json.loads((run.path / "config.json").read_text())
    assert config["model"]["input_shape"] == [1, 8, 8] and config["model"]["likelihood"] == "bernoulli"


def test_same_seed_same_run_other_seed_other_run(tmp_path, blobs_npz):
    a = train(blobs_npz, tmp_path / "a", seed=1)
    b = train(blobs_npz, tmp_path / "b", seed=1)
    c = train(blobs_npz, tmp_path / "c", seed=2)
    losses = [[m["train_loss"] for m in r.metrics()] for r in (a, b, c)]
    assert losses[0] == losses[1] and losses[0] != losses[2]


def test_resume_continues_exactly_where_it_stopped(tmp_path, blobs_npz):
    whole = train(blobs_npz, tmp_path / "whole", epochs=4, patience=None)
    train(blobs_npz, tmp_path / "part", epochs=2, patience=None)
    resumed = vaekit.train(resume=tmp_path / "part", epochs=4, progress=False, report=False)
    assert [m["epoch"] for m in resumed.metrics()] == [1, 2, 3, 4]
    assert [m["val_loss"] for m in resumed.metrics()] == [m["val_loss"] for m in whole.metrics()]
    for p, q in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(p, q)


def test_resume_refuses_a_finished_run_and_changed_options(tmp_path, blobs_npz):
    train(blobs_npz, tmp_path / "run", epochs=2)
    with pytest.raises(VaekitError, match="epochs greater than 2"):
        vaekit.train(resume=tmp_path / "run", epochs=2)
    with pytest.raises(VaekitError, match="only epochs"):
        vaekit.train(resume=tmp_path / "run", epochs=3, latent_dim=8)


def test_early_stopping_stops_when_validation_stalls(tmp_path, blobs_npz):
    # A learning rate this small barely moves the loss, so it cannot keep improving.
    run = train(blobs_npz, tmp_path / "run", epochs=40, lr=1e-7, patience=2)
    assert len(run.metrics()) < 40
    state = torch.load(run.path / "training_state.pt", weights_only=True)
    assert state["stopped_early"]


def test_reload_gives_identical_outputs(tmp_path, blobs_npz, blobs):
    run = train(blobs_npz, tmp_path / "run")
    again = vaekit.load(tmp_path / "run")
    x = blobs[0][:10]
    np.testing.assert_array_equal(run.encode(x), again.encode(x))
    np.testing.assert_array_equal(run.reconstruct(x), again.reconstruct(x))
    np.testing.assert_array_equal(run.sample(5, seed=3), again.sample(5, seed=3))
    assert run.reconstruct(x).shape == (10, 8, 8)  # the user's own layout
    assert run.encode(x).shape == (10, 4)
    assert again.decode(run.encode(x)).shape == (10, 8, 8)
    assert run.evaluate(seed=1) == again.evaluate(seed=1)


def test_autoencoder_trains_and_reports_reconstruction_metrics(tmp_path, blobs_npz):
    run = train(blobs_npz, tmp_path / "ae", model="ae", epochs=15, lr=1e-2)
    assert isinstance(run.model, vaekit.AE)
    assert run.metrics()[-1]["train_loss"] < run.metrics()[0]["train_loss"]
    m = run.evaluate()
    assert m["neg_elbo"] is None and m["psnr"] > 10
    assert run.sample(4).shape == (4, 8, 8)  # from the mixture fitted to its codes
    with pytest.raises(VaekitError, match="no N\\(0, I\\) prior"):
        run.sample(4, prior="normal")


def test_tabular_data_gets_a_gaussian_likelihood(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    run = vaekit.train(x, out=tmp_path / "tab", **TINY)
    assert run.config.model.likelihood == "gaussian-learned"
    assert run.reconstruct(x[:3]).shape == (3, 5)
    with pytest.raises(VaekitError, match="likelihood='gaussian'"):
        vaekit.train(x, out=tmp_path / "tab2", likelihood="bernoulli", **TINY)
    assert not (tmp_path / "tab2").exists()  # nothing written for a refused run


def test_existing_run_folder_is_never_overwritten(tmp_path, blobs_npz):
    run = train(blobs_npz, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    with pytest.raises(VaekitError, match="already exists"):
        train(blobs_npz, tmp_path / "run")
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before


def test_corrupt_or_missing_weights_are_clear_errors(tmp_path, blobs_npz):
    run = train(blobs_npz, tmp_path / "run")
    weights = run.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(VaekitError, match="corrupt"):
        vaekit.load(run.path)
    weights.unlink()
    with pytest.raises(VaekitError, match="missing"):
        vaekit.load(run.path)


def test_wrong_input_shape_is_a_clear_error(tmp_path, blobs_npz):
    run = train(blobs_npz, tmp_path / "run")
    with pytest.raises(VaekitError, match="trained on 8x8 grayscale images"):
        run.reconstruct(np.zeros((2, 9, 9)))


def test_evaluate_metrics_are_consistent(tmp_path, blobs_npz):
    run = train(blobs_npz, tmp_path / "run", epochs=6)
    m = run.evaluate(iw_samples=50)
    assert m["neg_elbo"] == pytest.approx(m["recon"] + m["kl"], rel=1e-5)
    assert m["bits_per_dim"] == pytest.approx(m["neg_elbo"] / (64 * np.log(2)))
    assert m["psnr"] == pytest.approx(-10 * np.log10(m["mse"]))
    assert 0 < m["active_units"] <= 4
    assert m["iw_nll"] <= m["neg_elbo"] + 0.5  # a tighter bound, up to sampling noise


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_both_precisions_train_and_are_recorded(tmp_path, blobs_npz, precision):
    run = train(blobs_npz, tmp_path / precision, epochs=5, precision=precision)
    rows = run.metrics()
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert {r["precision"] for r in rows} == {precision} and rows[0]["device"] == "cpu"
    assert all(p.dtype == torch.float32 for p in run.model.parameters())  # weights stay fp32 either way


def test_unknown_options_are_refused_before_anything_is_written(tmp_path, blobs_npz):
    with pytest.raises(VaekitError, match="precision"):
        train(blobs_npz, tmp_path / "a", precision="fp8")
    with pytest.raises(VaekitError, match="unknown option"):
        train(blobs_npz, tmp_path / "b", latent_size=3)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_compile_trains_and_falls_back_where_it_cannot(tmp_path, blobs_npz, monkeypatch, capsys):
    compiled = train(blobs_npz, tmp_path / "c", compile=True)
    eager = train(blobs_npz, tmp_path / "e")
    # the same training, up to the rounding of fused kernels
    assert compiled.metrics()[-1]["train_loss"] == pytest.approx(eager.metrics()[-1]["train_loss"], rel=1e-2)

    def broken(module, *args, **kwargs):
        def fails(*a, **k):
            raise RuntimeError("no C++ compiler")
        return fails

    monkeypatch.setattr(torch, "compile", broken)
    fallback = train(blobs_npz, tmp_path / "f", compile=True)
    assert "training without it" in capsys.readouterr().err
    assert [m["train_loss"] for m in fallback.metrics()] == [m["train_loss"] for m in eager.metrics()]


def test_tables_are_standardised_and_outputs_come_back_in_their_units(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))) * [1, 10, 100, 0.1] + [0, 50, -200, 3]
    run = vaekit.train(x, out=tmp_path / "std", **{**TINY, "epochs": 30, "lr": 3e-3})
    from vaekit.data import from_arrays

    train_part, _ = from_arrays(x, name="x").split(0.1, seed=0)  # the statistics come from the training split
    assert np.allclose(run.config.data.mean, train_part.x.mean(0).numpy(), rtol=1e-5, atol=1e-4)
    recon = run.reconstruct(x)
    assert np.allclose(recon.mean(0), x.mean(0), atol=0.3 * x.std(0).max())  # the data's units, not z-scores
    assert (np.abs(recon - x).mean(0) < x.std(0)).all()  # and better than guessing the mean
    again = vaekit.load(run.path)
    np.testing.assert_array_equal(again.reconstruct(x), recon)

    raw = vaekit.train(x, out=tmp_path / "raw", standardize=False, **TINY)
    assert raw.config.data.mean is None
    unit = vaekit.train(rng.random((100, 3)), out=tmp_path / "unit", **TINY)  # already in [0, 1]
    assert unit.config.data.mean is None and unit.config.model.likelihood == "bernoulli"


def test_prepared_data_is_not_standardised_twice(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * [1, 10, 100] + 40
    run = vaekit.train(x, out=tmp_path / "r", **TINY)
    prepared = run.dataset(x)  # in the model's units
    np.testing.assert_array_equal(run.encode(prepared), run.encode(x))
    np.testing.assert_array_equal(run.reconstruct(prepared), run.reconstruct(x))


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(tmp_path, blobs_npz):
    whole = train(blobs_npz, tmp_path / "whole", epochs=2, patience=None)
    train(blobs_npz, tmp_path / "cut", epochs=2, patience=None)
    for name in ("training_state.pt", "model.safetensors", "metrics.jsonl", "samples.png", "reconstructions.png"):
        (tmp_path / "cut" / name).unlink()  # as if it died in its first epoch: config.json alone
    resumed = vaekit.train(resume=tmp_path / "cut", progress=False, report=False)
    assert [m["val_loss"] for m in resumed.metrics()] == [m["val_loss"] for m in whole.metrics()]


def test_a_refused_resume_leaves_the_config_as_it_was(tmp_path, blobs_npz):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    run = vaekit.train(str(blobs_npz), out=tmp_path / "r", **TINY)
    before = (run.path / "config.json").read_bytes()
    with pytest.raises(VaekitError, match="no CUDA GPU is available"):
        vaekit.train(resume=run.path, epochs=5, device="cuda", progress=False, report=False)
    assert (run.path / "config.json").read_bytes() == before
