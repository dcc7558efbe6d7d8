"""What the benchmarks share: where ../shared is, and the MNIST split of its protocols."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VAEKIT_SHARED", ROOT.parent / "shared"))
MNIST = SHARED / "data" / "mnist"
REFERENCE = SHARED / "reference" / "seed_vae_reference.py"


def mnist_split(folder: Path) -> tuple[Path, Path]:
    """The benchmark convention: the first 8,000 MNIST test images train, the last 2,000 test.

    Written as .npy files (uint8, (N, 28, 28)) so both are ordinary vaekit data specs.
    """
    from vaekit.data import load_dataset

    if not MNIST.exists():
        sys.exit(f"benchmark data not found at {MNIST}; set VAEKIT_SHARED to the shared folder")
    x = load_dataset(str(MNIST)).x[:, 0].numpy()
    folder.mkdir(parents=True, exist_ok=True)
    train, test = folder / "mnist-train-8k.npy", folder / "mnist-test-2k.npy"
    np.save(train, x[:8000])
    np.save(test, x[8000:])
    return train, test


def run_reference(epochs: int, tile: int = 1) -> dict:
    """The classic per-item DataLoader loop, in its own process; its one JSON line."""
    out = subprocess.run([sys.executable, str(REFERENCE), "--data", str(MNIST), "--epochs", str(epochs),
                          "--tile", str(tile)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
