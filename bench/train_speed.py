"""Training speed of the default VAE: vaekit against the reference loop, side by side.

Same data (the first 8,000 MNIST test images), same model, batch size and epochs; the
two alternate for several rounds in this one process tree so machine noise hits both.
Also prints vaekit's FLOP rate against this machine's own measured float32 matmul rate.

    python bench/train_speed.py [--epochs 3] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import vaekit
from _shared import mnist_split, run_reference

# Multiply-adds of the 784-400-20 VAE's layers (in x out): encoder 784x400 + 400x40, decoder 20x400 + 400x784.
LAYERS = [(784, 400), (400, 40), (20, 400), (400, 784)]
# Per training sample: forward, weight gradients, and input gradients for every layer but the
# first (the data needs no gradient), 2 FLOPs per multiply-add.
FLOPS_PER_SAMPLE = 2 * (2 * sum(i * o for i, o in LAYERS) + sum(i * o for i, o in LAYERS[1:]))


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e9


def vaekit_samples_per_s(train_file: Path, epochs: int, batch_size: int, precision: str, workdir: Path,
                         tag: str) -> tuple[float, str]:
    """Training samples per second (the epochs' own time, as the reference measures), and precision."""
    run = vaekit.train(str(train_file), out=workdir / tag, epochs=epochs, batch_size=batch_size,
                       precision=precision, val_fraction=0.0, progress=False, seed=1)
    rows = run.metrics()
    return 8000 * len(rows) / sum(r["seconds"] for r in rows), rows[-1]["precision"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-sizes", default="128,512")
    p.add_argument("--precisions", default="fp32,auto", help="auto = what vaekit train uses by default")
    a = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train_file, _ = mnist_split(work)
        ref, ours, used = [], {}, {}
        settings = [(int(b), p) for b in a.batch_sizes.split(",") for p in a.precisions.split(",")]
        for r in range(a.rounds):
            ref.append(run_reference(a.epochs)["samples_per_s"])
            for b, prec in settings:
                rate, used[b, prec] = vaekit_samples_per_s(train_file, a.epochs, b, prec, work, f"r{r}-{b}-{prec}")
                ours.setdefault((b, prec), []).append(rate)
        peak = matmul_gflops()

    ref_med = statistics.median(ref)
    print(f"threads: {torch.get_num_threads()}, torch {torch.__version__}, {a.rounds} rounds x {a.epochs} "
          f"epochs on 8,000 MNIST images (median of rounds)")
    print(f"measured float32 matmul rate (2048x2048): {peak:.1f} GFLOP/s")
    print(f"{'':38}{'samples/s':>12}{'vs reference':>14}{'GFLOP/s':>10}{'of fp32 matmul':>16}")
    print(f"{'reference loop (batch 128, fp32)':38}{ref_med:>12,.0f}{1.0:>13.2f}x")
    for (b, prec), values in ours.items():
        med = statistics.median(values)
        gflops = med * FLOPS_PER_SAMPLE / 1e9
        label = f"vaekit (batch {b}, {prec}{' -> ' + used[b, prec] if prec == 'auto' else ''})"
        print(f"{label:38}{med:>12,.0f}{med / ref_med:>13.2f}x{gflops:>10.1f}{gflops / peak:>15.0%}")


if __name__ == "__main__":
    main()
