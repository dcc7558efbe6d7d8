"""Generation, interpolation and the latent map, from Python and the command line."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import vaekit
from helpers import TINY, TINY_ARGS, copy_run
from vaekit import VaekitError
from vaekit.cli import main


@pytest.fixture
def run(trained_once, tmp_path):
    return vaekit.load(copy_run(trained_once("2d", *TINY_ARGS, "--latent-dim", "2", "--epochs", "6"), tmp_path / "run"))


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_starts_and_ends_at_the_inputs_codes(run, blobs, method):
    x = blobs[0]
    path = run.interpolate(x, 3, 7, steps=6, method=method)
    assert path.shape == (6, 8, 8)
    np.testing.assert_allclose(path[0], run.reconstruct(x[[3]])[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], run.reconstruct(x[[7]])[0], atol=1e-5)
    # Consecutive points move steadily: no jump bigger than the whole way.
    steps = np.abs(np.diff(path, axis=0)).sum(axis=(1, 2))
    assert steps.max() <= np.abs(path[-1] - path[0]).sum() + 1e-4


def test_interpolation_bad_indices_and_steps(run, blobs):
    with pytest.raises(VaekitError, match="j=240 is out of range"):
        run.interpolate(blobs[0], 0, 240)
    with pytest.raises(VaekitError, match="steps must be at least 2"):
        run.interpolate(blobs[0], 0, 1, steps=1)


def test_sample_temperature_shrinks_variety(run):
    hot, cold = run.sample(200, seed=0, temperature=1.0), run.sample(200, seed=0, temperature=0.1)
    assert cold.std(axis=0).mean() < hot.std(axis=0).mean()
    assert np.array_equal(run.sample(4, seed=5), run.sample(4, seed=5))
    assert not np.array_equal(run.sample(4, seed=5), run.sample(4, seed=6))


def test_interpolate_and_latent_commands_write_pictures(run, blobs_npz, tmp_path):
    assert main(["interpolate", str(run.path), "--data", str(blobs_npz), "--from", "0", "--to", "1",
                 "--steps", "7", "--method", "slerp", "--out", str(tmp_path / "i.png")]) == 0
    strip = Image.open(tmp_path / "i.png")
    assert strip.width > 6 * strip.height  # one row of 7 images
    assert main(["latent", str(run.path), "--data", str(blobs_npz), "--out", str(tmp_path / "map.png")]) == 0
    picture = Image.open(tmp_path / "map.png")
    assert picture.width > 1.5 * picture.height  # scatter and manifold side by side for a 2-D code
    assert main(["latent", str(run.path), "--out", str(tmp_path / "map.jpg")]) == 2


def test_latent_map_projects_wide_codes(tmp_path, blobs_npz):
    run = vaekit.train(str(blobs_npz), out=tmp_path / "wide", **TINY)  # latent_dim 4
    for method in ("pca", "tsne"):
        out = tmp_path / f"{method}.png"
        assert main(["latent", str(run.path), "--data", str(blobs_npz), "--method", method,
                     "--out", str(out)]) == 0
        picture = Image.open(out)
        assert picture.width < 1.5 * picture.height  # the scatter alone
