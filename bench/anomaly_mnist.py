"""One-class MNIST: for each digit d, fit on the digit-d images among the first 8,000
MNIST test images, score the last 2,000 (anomaly = any other digit). Mean AUROC over the
10 digits for vaekit's detectors beside PCA reconstruction error and IsolationForest on
the same pixels.

vaekit is given the digits in the two shapes users hand them over: (N, 28, 28) images, and
a flat (N, 784) table in [0, 1] (how fetch_openml and most CSV exports give them). A user
cannot know which to pass, so both must do well.

    python bench/anomaly_mnist.py [--detectors vaekit-vae,vaekit-ae] [--shapes images,table]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from _shared import MNIST


def main() -> None:
    import vaekit
    from vaekit.data import load_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detectors", default="vaekit-vae,vaekit-ae")
    p.add_argument("--shapes", default="images,table")
    p.add_argument("--baselines", default="pca,iforest")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    if not MNIST.exists():
        raise SystemExit(f"benchmark data not found at {MNIST}; set VAEKIT_SHARED")
    ds = load_dataset(str(MNIST))
    images, labels = ds.x[:, 0].numpy(), ds.y.numpy()
    flat = images.reshape(len(images), -1).astype(np.float32) / 255
    test_x, test_y = flat[8000:], labels[8000:]
    shapes = {"images": lambda x: x.reshape(-1, 28, 28), "table": lambda x: x}

    def pca_fit(x):
        pca = PCA(n_components=0.9, random_state=0).fit(x)
        return lambda z: ((pca.inverse_transform(pca.transform(z)) - z) ** 2).sum(1)

    def iforest_fit(x):
        forest = IsolationForest(random_state=0).fit(x)
        return lambda z: -forest.score_samples(z)

    def vaekit_fit(model, shape):
        def fit(x):
            det = vaekit.AnomalyDetector(model=model, random_state=0).fit(shapes[shape](x))
            return lambda z: det.decision_function(shapes[shape](z))
        return fit

    methods = {f"{name} ({shape})": vaekit_fit(name.split("-")[1], shape)
               for name in a.detectors.split(",") if name for shape in a.shapes.split(",")}
    methods.update({name: {"pca": pca_fit, "iforest": iforest_fit}[name] for name in a.baselines.split(",") if name})
    table = {name: [] for name in methods}
    seconds = {name: 0.0 for name in methods}
    for digit in range(10):
        train = flat[:8000][labels[:8000] == digit]
        for name, fit in methods.items():
            t0 = time.perf_counter()
            score = fit(train)
            seconds[name] += time.perf_counter() - t0
            table[name].append(roc_auc_score(test_y != digit, score(test_x)))
    print("one-class MNIST: fit on digit d (first 8,000), AUROC on the last 2,000 (anomaly = other digits)")
    print(f"{'method':22}" + "".join(f"{d:>7}" for d in range(10)) + f"{'mean':>8}{'worst':>7}{'fit s':>8}")
    for name, row in table.items():
        print(f"{name:22}" + "".join(f"{v:7.3f}" for v in row) + f"{np.mean(row):8.3f}{min(row):7.3f}"
              f"{seconds[name]:8.1f}")


if __name__ == "__main__":
    main()
