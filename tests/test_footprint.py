"""Memory worked out before it is allocated (vaekit.footprint): a model too large for this
machine is refused in one line that says what to make smaller, before a run folder is made,
and what trains also validates, encodes and samples in chunks its memory holds."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from helpers import TINY
from vaekit.cli import main
from vaekit.config import ModelConfig
from vaekit.footprint import CHUNK_MEMORY, EVAL_ROWS, estimate

# Each needs far more than any machine has: one line, exit 2, no folder.
TOO_LARGE = [
    (["--hidden-dims", "100000000"], "use smaller --hidden-dims"),
    (["--model", "iwae", "--k", "100000000"], "use a smaller --batch-size or --k"),
    (["--arch", "conv", "--hidden-dims", "100000,100000"], "use smaller --hidden-dims"),
]


@pytest.mark.parametrize("argv, advice", TOO_LARGE, ids=[" ".join(a) for a, _ in TOO_LARGE])
def test_a_model_too_large_for_memory_is_one_line_before_any_folder(tmp_path, blobs_npz, capsys, argv, advice):
    out = tmp_path / "run"
    assert main(["train", "--data", str(blobs_npz), "--out", str(out), "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "training this model would need about" in err[0] and "free" in err[0] and advice in err[0], err
    assert not out.exists()


def test_a_batch_larger_than_the_data_is_the_data(tmp_path, blobs_npz):
    """A batch size past the rows (full-batch training) takes every row: estimated as that, so trained."""
    assert main(["train", "--data", str(blobs_npz), "--out", str(tmp_path / "run"), "--quiet", "--no-report",
                 "--epochs", "1", "--batch-size", "100000000"]) == 0


def test_images_resized_past_memory_name_image_size(tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--image-size", "3000x3000", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "or smaller images (--image-size)" in err[0], err
    assert not out.exists()


def test_a_vqvae_prior_over_a_huge_grid_is_refused_naming_the_prior(tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "0.png")
    assert main(["train", "--data", str(folder), "--image-size", "2000x2000", "--model", "vqvae",
                 "--batch-size", "1", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "its autoregressive prior" in err and "each layer halves the grid" in err, err


def test_the_api_raises_a_value_error_and_the_detector_too(tmp_path, blobs):
    x = blobs[0].reshape(len(blobs[0]), -1)
    with pytest.raises(ValueError, match="hidden_dims"):
        vaekit.train(x, out=tmp_path / "run", **{**TINY, "hidden_dims": (10 ** 9,)})
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="training this model would need about"):
        vaekit.AnomalyDetector(hidden_dims=(10 ** 9,)).fit(x)


def _resolved(**options) -> ModelConfig:
    return replace(ModelConfig(**options), input_shape=(1, 28, 28), likelihood="bernoulli")


def test_the_estimate_grows_with_what_takes_memory_and_allocates_nothing():
    base = estimate(_resolved(), 128)
    assert 0 < base.total < 256 << 20  # a default MNIST VAE: tens of megabytes
    assert estimate(_resolved(), 1024).batch > 4 * base.batch
    assert estimate(_resolved(hidden_dims=(4096, 4096)), 128).weights > 20 * base.weights
    # an IWAE holds k draws of every row: its batch grows with k, its weights do not
    iwae = estimate(_resolved(model="iwae", k=500), 128)
    assert iwae.batch > 100 * base.batch and iwae.weights == base.weights
    with torch.inference_mode():  # as Run asks, from within evaluation
        assert estimate(_resolved(), 128) == base
    # nothing was allocated to find out: a model of a trillion weights is estimated at once
    assert estimate(_resolved(hidden_dims=(10 ** 9,)), 128).weights > 10 ** 12


def test_rows_evaluated_at_a_time_fit_in_a_training_batch_memory():
    heavy = estimate(_resolved(model="iwae", k=2000), 128)
    rows = heavy.rows(EVAL_ROWS)
    assert 1 <= rows < EVAL_ROWS  # an IWAE with many draws validates in smaller chunks
    assert rows * heavy.per_row <= max(heavy.batch, CHUNK_MEMORY)
    assert estimate(_resolved(), 128).rows(EVAL_ROWS) == EVAL_ROWS  # a small model: the usual chunk


def test_a_model_with_many_draws_trains_validates_and_encodes_in_bounded_chunks(tmp_path, blobs):
    x = blobs[0]
    run = vaekit.train(x, out=tmp_path / "run", model="iwae", k=2000, **{**TINY, "epochs": 1})
    assert run.rows(EVAL_ROWS) < EVAL_ROWS
    codes = run.encode(x)
    assert codes.shape == (len(x), 4) and np.isfinite(codes).all()
    assert np.isfinite(run.evaluate(x)["neg_elbo"])
    assert torch.isfinite(torch.as_tensor(run.sample(3))).all()
