"""Training speed of the default VAE and the conv VAE: vaekit against the reference loops, side by side.

Same data (the first 8,000 MNIST test images), same model, batch size and epochs; the
two alternate for several rounds in this one process tree so machine noise hits both.
Also prints vaekit's FLOP rate against this machine's own measured float32 matmul rate.
The conv VAE is measured against the plain PyTorch loop a user would write for it
(:func:`reference_conv_samples_per_s`), alternating in the same way.

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


def reference_conv_samples_per_s(train_file: Path, epochs: int, batch_size: int = 128) -> float:
    """The plain PyTorch way to train a conv VAE, as a user writes it from the tutorials: the
    same networks as vaekit's conv VAE (two stride-2 3x3 convolutions of 32 and 64 channels,
    a 20-d code, two 4x4 transposed convolutions back, Bernoulli output), a DataLoader over a
    TensorDataset, Adam at 1e-3, the summed BCE plus KL. Training samples per second."""
    import numpy as np
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class ConvVAE(nn.Module):
        def __init__(self, latent: int = 20):
            super().__init__()
            self.enc = nn.Sequential(nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                                     nn.Flatten())
            self.head = nn.Linear(64 * 7 * 7, 2 * latent)
            self.dec = nn.Sequential(nn.Linear(latent, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                                     nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))

        def forward(self, x):
            mu, logvar = self.head(self.enc(x)).chunk(2, 1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return self.dec(z), mu, logvar

    torch.manual_seed(1)
    x = torch.from_numpy(np.load(train_file)).float().unsqueeze(1) / 255
    loader = DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=True)
    model = ConvVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for (batch,) in loader:
            logits, mu, logvar = model(batch)
            recon = nn.functional.binary_cross_entropy_with_logits(logits, batch, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (recon + kl) / len(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return len(x) * epochs / (time.perf_counter() - t0)


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
    p.add_argument("--conv-epochs", type=int, default=2)
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
        conv_ref, conv = [], {}
        for r in range(a.rounds):  # alternating, as above
            conv_ref.append(reference_conv_samples_per_s(train_file, a.conv_epochs))
            for prec in a.precisions.split(","):
                rate, used[prec] = vaekit_samples_per_s(train_file, a.conv_epochs, 128, prec, work,
                                                         f"conv-{r}-{prec}", arch="conv")
                conv.setdefault(prec, []).append(rate)
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
    conv_ref_med = statistics.median(conv_ref)
    print(f"conv VAE, {a.conv_epochs} epochs (median of rounds):")
    print(f"{'reference conv loop (batch 128, fp32)':38}{conv_ref_med:>12,.0f}{1.0:>13.2f}x")
    for prec, values in conv.items():
        med = statistics.median(values)
        label = f"vaekit conv VAE (batch 128, {prec}{' -> ' + used[prec] if prec == 'auto' else ''})"
        print(f"{label:38}{med:>12,.0f}{med / conv_ref_med:>13.2f}x")
    print("Where a step of the default VAE (batch 128) goes, by the PyTorch profiler (self CPU time):")
    for prec, share in shares.items():
        print(f"  {prec:5} " + ", ".join(f"{name} {value:.0%}" for name, value in share.items()))


if __name__ == "__main__":
    main()
