"""Training speed of the default VAE: vaekit against the reference loop, side by side.

Same data (the first 8,000 MNIST test images), same model, batch size and epochs; the
two alternate for several rounds in this one process tree so machine noise hits both.
Also prints vaekit's FLOP rate against this machine's own measured float32 matmul rate.

    python bench/train_speed.py [--epochs 5] [--rounds 5]
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
                         tag: str, arch: str = "mlp") -> tuple[float, str]:
    """Training samples per second (the epochs' own time, as the reference measures), and precision."""
    run = vaekit.train(str(train_file), out=workdir / tag, epochs=epochs, batch_size=batch_size, arch=arch,
                       precision=precision, val_fraction=0.0, progress=False, seed=1, report=False)
    rows = run.metrics()
    return 8000 * len(rows) / sum(r["seconds"] for r in rows), rows[-1]["precision"]


def step_profile(precision: str, steps: int = 60) -> dict[str, float]:
    """Shares of a training step's time: matrix multiplies, the optimizer, everything else."""
    from torch.profiler import ProfilerActivity, profile

    from vaekit.config import TrainConfig
    from vaekit.data import from_arrays
    from vaekit.training import Trainer

    data = from_arrays((torch.rand(128 * steps, 28, 28) * 255).to(torch.uint8).numpy(), name="random")
    trainer = Trainer(vaekit.VAE(), TrainConfig(epochs=1, precision=precision, progress=False), torch.device("cpu"))
    trainer.fit(data, None)  # warm up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.train_epoch(data.resident(torch.device("cpu")), None)
    groups = {"matmul": 0.0, "optimizer": 0.0, "other": 0.0}
    for event in prof.key_averages():
        name, t = event.key, event.self_cpu_time_total
        if name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul",
                    "mkldnn::_linear_pointwise"):
            groups["matmul"] += t
        elif "adam" in name.lower() or "Optimizer" in name:
            groups["optimizer"] += t
        else:
            groups["other"] += t
    total = sum(groups.values())
    return {k: v / total for k, v in groups.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
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
        conv = {prec: vaekit_samples_per_s(train_file, 1, 128, prec, work, f"conv-{prec}", arch="conv")
                for prec in a.precisions.split(",")}
        shares = {prec: step_profile(prec) for prec in a.precisions.split(",")}

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
    for prec, (rate, used_prec) in conv.items():
        label = f"vaekit conv VAE (batch 128, {prec}{' -> ' + used_prec if prec == 'auto' else ''})"
        print(f"{label:42}{rate:>8,.0f}{rate / ref_med:>13.2f}x   (1 epoch)")
    print("Where a step of the default VAE (batch 128) goes, by the PyTorch profiler (self CPU time):")
    for prec, share in shares.items():
        print(f"  {prec:5} " + ", ".join(f"{name} {value:.0%}" for name, value in share.items()))


if __name__ == "__main__":
    main()
