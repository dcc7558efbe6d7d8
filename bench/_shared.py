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


def hostile_tables():
    """The test suite's generator of hostile tables (tests/hostile.py), so that the benchmark and
    the tests use the same cases."""
    sys.path.insert(0, str(ROOT / "tests"))
    import hostile

    return hostile


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


def measure(cmd: list[str], interval: float = 0.25, **kwargs) -> dict:
    """Run ``cmd``; its wall time and the peak memory of its whole process tree (DataLoader
    workers, torchrun's ranks): the sum of each process's proportional set size (PSS, which
    shares pages fairly between processes), and the main process's own peak RSS."""
    import time

    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    root = psutil.Process(proc.pid)
    peak_tree = peak_main = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            total = 0
            for p in tree:
                try:
                    total += p.memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            peak_tree = max(peak_tree, total)
            peak_main = max(peak_main, root.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(interval)
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{err[-2000:]}")
    return {"seconds": time.perf_counter() - t0, "peak_tree": peak_tree, "peak_main": peak_main, "stdout": out,
            "stderr": err}
