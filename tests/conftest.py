"""Shared fixtures: tiny, seeded data made on the spot (no network, no ../shared). What the
tests share besides fixtures is in helpers.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import make_blobs

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Downloads and cached copies go to a temporary folder, never the user's cache."""
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def blobs():
    return make_blobs()


@pytest.fixture
def blobs_npz(tmp_path, blobs):
    path = tmp_path / "blobs.npz"
    np.savez(path, X=blobs[0], y=blobs[1])
    return path
