"""Shared fixtures: tiny, seeded data made on the spot (no network, no ../shared)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Downloads and cached copies go to a temporary folder, never the user's cache."""
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))


def make_blobs(n: int = 240, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale (n, size, size) uint8 images of three shapes (bar, column, square) with noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.zeros((n, size, size), np.float32)
    h = size // 2
    for i, label in enumerate(y):
        if label == 0:
            x[i, h - 1:h + 1, :] = 1
        elif label == 1:
            x[i, :, h - 1:h + 1] = 1
        else:
            x[i, 2:size - 2, 2:size - 2] = 1
    x = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    return (x * 255).astype(np.uint8), y


@pytest.fixture
def blobs():
    return make_blobs()


@pytest.fixture
def blobs_npz(tmp_path, blobs):
    path = tmp_path / "blobs.npz"
    np.savez(path, X=blobs[0], y=blobs[1])
    return path


# Small and quick: a few epochs of a narrow net on 240 8x8 images; the report (tested on
# its own in test_report.py) is left out to keep the suite fast.
TINY = dict(hidden_dims=(32,), latent_dim=4, epochs=3, batch_size=32, progress=False, report=False)
