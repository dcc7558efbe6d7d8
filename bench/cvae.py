"""Does a conditional VAE draw the class it is asked for? Samples read by digit classifiers.

Protocol (issue 11): ``vaekit.train(..., model="cvae")`` on the MNIST split (the first 8,000
test images, with their labels), then ``Run.sample(200, label=L)`` for every digit L, at
temperature 1 (the default) and 0.5. Two classifiers trained on the same 8,000 real images
read the samples: scikit-learn's logistic regression (the plain reader the issue used) and
a small MLP. Each one's accuracy on the 2,000 real test digits is printed as its ceiling.

Side by side, from the same trained model: codes drawn from N(0, I), as vaekit did before
it kept each class's codes, and from the class's own Gaussian (the ``gmm`` prior, vaekit.priors).

    python bench/cvae.py [--epochs 10] [--seeds 0]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _shared import MNIST

N_PER_LABEL = 200


def split(folder: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from vaekit.data import load_dataset

    ds = load_dataset(str(MNIST))
    x, y = ds.x[:, 0].numpy(), ds.y.numpy()
    train = folder / "mnist-train-8k.npz"
    np.savez(train, X=x[:8000], y=y[:8000])
    return train, x[:8000], y[:8000], x[8000:], y[8000:]


def classifiers(x: np.ndarray, y: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    flat = x.reshape(len(x), -1) / 255.0
    return {"logistic": LogisticRegression(max_iter=300).fit(flat, y),
            "mlp": MLPClassifier((256,), max_iter=100, early_stopping=True, random_state=0).fit(flat, y)}


def read(clfs: dict, samples: dict) -> dict:
    """Share of each label's samples each classifier reads as that label."""
    return {name: np.array([(clf.predict(s.reshape(len(s), -1)) == label).mean() for label, s in samples.items()])
            for name, clf in clfs.items()}


def draw(run, temperature: float, standard: bool) -> dict:
    """200 samples of each label: from N(0, I) (``standard``, as before class codes were kept)
    or from the class's own Gaussian (the run's ``gmm`` prior, its default)."""
    prior = "normal" if standard else "gmm"
    return {label: run.sample(N_PER_LABEL, seed=label, temperature=temperature, label=label, prior=prior)  # in [0, 1]
            for label in range(10)}


def main() -> None:
    import vaekit
    from vaekit.data import from_arrays

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", default="0")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train_file, xtr, ytr, xte, yte = split(Path(tmp))
        clfs = classifiers(xtr, ytr)
        flat = xte.reshape(len(xte), -1) / 255.0
        ceiling = {name: np.array([(clf.predict(flat[yte == d]) == d).mean() for d in range(10)])
                   for name, clf in clfs.items()}
        print(f"cvae, MNIST 8,000 train images, {a.epochs} epochs, {N_PER_LABEL} samples per label; "
              "share read as the asked label (mean over labels, worst label)")
        print(f"{'classifier on real test digits':<44}" + "".join(
            f"{name:>10} {c.mean():.3f} ({c.min():.2f})" for name, c in ceiling.items()))
        for seed in map(int, a.seeds.split(",")):
            t0 = time.perf_counter()
            run = vaekit.train(str(train_file), out=Path(tmp) / f"cvae-{seed}", model="cvae", epochs=a.epochs,
                               seed=seed, report=False, progress=False)
            print(f"seed {seed}: trained in {time.perf_counter() - t0:.1f} s")
            # the ceiling a sample can reach: the model's own reconstructions of real test digits
            recon = run.reconstruct(from_arrays(xte, yte, name="test")).reshape(len(xte), -1)
            rec = {name: np.array([(clf.predict(recon[yte == d]) == d).mean() for d in range(10)])
                   for name, clf in clfs.items()}
            print(f"  {'reconstructed test digits':<36}" + " " * 10 + "".join(
                f"{name:>10} {r.mean():.3f} ({r.min():.2f})" for name, r in rec.items()))
            for standard in (True, False):
                for temperature in (1.0, 0.5):
                    what = "N(0, I) codes (before)" if standard else "class codes (now)"
                    scores = read(clfs, draw(run, temperature, standard))
                    print(f"  {what:<26} T={temperature:<4}" + " " * 10 + "".join(
                        f"{name:>10} {s.mean():.3f} ({s.min():.2f})" for name, s in scores.items()))


if __name__ == "__main__":
    main()
