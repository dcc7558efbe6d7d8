"""Shared fixtures: tiny, seeded data made on the spot (no network, no ../shared). What the
tests share besides fixtures is in helpers.py."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from helpers import make_blobs

# Under pytest-xdist (make test) each worker is one of the machine's cores: one thread each,
# or the workers' thread pools fight over the cores and every test gets several times slower.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


def pytest_collection_modifyitems(items):
    """A test that drives the browser is slow (see pytest's markers in pyproject.toml)."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def session_blobs_npz(tmp_path_factory):
    """The blobs as an .npz that lives for the whole session: the data of the runs trained once."""
    path = tmp_path_factory.mktemp("session-data") / "blobs.npz"
    x, y = make_blobs()
    np.savez(path, X=x, y=y)
    return path


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory, session_blobs_npz):
    """Trains each kind of tiny run once per session (``trained_once(name, *argv)``, argv as
    for ``vaekit train`` after --data and --out); tests get copies (helpers.copy_run)."""
    from vaekit.cli import main

    folders = {}

    def train(name: str, *argv: str):
        if name not in folders:
            out = tmp_path_factory.mktemp("trained-once") / name
            assert main(["train", "--data", str(session_blobs_npz), "--out", str(out), *argv]) == 0
            folders[name] = out, argv
        out, trained_with = folders[name]
        assert trained_with == argv, f"run {name!r} was trained with {trained_with}, not {argv}"
        return out

    return train
