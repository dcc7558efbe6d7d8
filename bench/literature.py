"""The classic VAE and IWAE (k = 5) against the literature, and conv against MLP.

Literature comparison: on the MNIST test-set split (train on the first 8,000, test on the
last 2,000), dynamically binarised, both models train for the same time budget; the test
set is one fixed binarisation. Reported: -log p(x) estimated by importance sampling with
K = 5,000 (iw_nll), the negative ELBO, and the train/test gap. Published figures for a
one-stochastic-layer MLP on all 60,000 binarised MNIST training digits: about 86.8 nats
(VAE) and 84.8 (IWAE, k = 50); with 8,000 images expect worse.

Conv against MLP: the default (grey-level, Bernoulli) VAE of each architecture on the same
split and epochs: negative ELBO, PSNR and training samples per second.

    python bench/literature.py [--budget 120] [--k-eval 5000] [--epochs 20]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from _shared import mnist_split


def main() -> None:
    import vaekit

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=120, help="training seconds per model (120)")
    p.add_argument("--k-eval", type=int, default=5000, help="importance samples for iw_nll (5000)")
    p.add_argument("--epochs", type=int, default=20, help="epochs for conv against MLP (20)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_file, test_file = mnist_split(tmp)
        gap_file = tmp / "train-2k.npy"
        np.save(gap_file, np.load(train_file)[:2000])  # a training subset the size of the test set
        print(f"Literature protocol: dynamic binarisation, {a.budget:.0f} s of training each, "
              f"iw_nll with K = {a.k_eval}")
        print(f"{'model':14}{'epochs':>7}{'test iw_nll':>13}{'test -ELBO':>12}{'train iw_nll':>14}{'gap':>7}")
        for model in ("vae", "iwae"):
            run = vaekit.train(str(train_file), model=model, k=5, binarize="dynamic", epochs=100_000,
                               time_budget=a.budget, val_fraction=0.0, progress=False, seed=1,
                               out=tmp / f"lit-{model}")
            test = run.evaluate(str(test_file), iw_samples=a.k_eval)
            train = run.evaluate(str(gap_file), iw_samples=a.k_eval)
            name = "VAE" if model == "vae" else "IWAE (k=5)"
            print(f"{name:14}{len(run.metrics()):7d}{test['iw_nll']:13.2f}{test['neg_elbo']:12.2f}"
                  f"{train['iw_nll']:14.2f}{test['iw_nll'] - train['iw_nll']:7.2f}")
        print("published, full binarised MNIST: VAE 86.76, IWAE (k=50) 84.78 (Burda et al., 2016)")
        print()
        print(f"Conv against MLP: grey levels, Bernoulli likelihood, {a.epochs} epochs, test split")
        print(f"{'arch':6}{'-ELBO':>9}{'PSNR dB':>9}{'samples/s':>11}")
        for arch in ("mlp", "conv"):
            run = vaekit.train(str(train_file), arch=arch, epochs=a.epochs, val_fraction=0.0, progress=False,
                               seed=1, out=tmp / f"arch-{arch}")
            m = run.evaluate(str(test_file))
            rows = run.metrics()
            rate = 8000 * len(rows) / sum(r["seconds"] for r in rows)
            print(f"{arch:6}{m['neg_elbo']:9.2f}{m['psnr']:9.2f}{rate:11,.0f}")


if __name__ == "__main__":
    main()
