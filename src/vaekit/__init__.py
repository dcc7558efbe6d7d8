"""vaekit: autoencoders and variational autoencoders that are practical to train and use.

Importing ``vaekit`` is cheap: torch loads on first use of a name that needs it, so the
command line prints ``--help`` without it.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "train": "vaekit.orchestrate", "load": "vaekit.run", "Run": "vaekit.run",
    "AE": "vaekit.models", "VAE": "vaekit.models",
    "load_dataset": "vaekit.data", "Dataset": "vaekit.data", "AnomalyDetector": "vaekit.anomaly",
    "RunConfig": "vaekit.config", "ModelConfig": "vaekit.config", "DataConfig": "vaekit.config",
    "TrainConfig": "vaekit.config",
}
from .errors import VaekitError, VaekitWarning  # noqa: E402  (light: no torch)

__all__ = [*_LAZY, "VaekitError", "VaekitWarning", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
