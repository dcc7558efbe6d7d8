"""Tabular anomaly detection on the 12 ADBench sets in ../shared/data/adbench.

Semi-supervised protocol (../shared/data/README.md): train on a random half of the normal
rows, test on the other half plus all anomalies; sets over 10,000 rows first subsampled
to 10,000 keeping the anomaly ratio; features standardised with the training part's mean
and standard deviation. AUROC and AUPRC on the test part, averaged over seeds 1-3, and
total fit time, for vaekit and the detectors a user would otherwise reach for, side by side.

    python bench/anomaly_adbench.py [--seeds 1,2,3] [--detectors vaekit-vae,pyod-ae,...]
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from _shared import SHARED

ADBENCH = SHARED / "data" / "adbench"


def split(x: np.ndarray, y: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    if len(x) > 10_000:  # stratified subsample to 10,000 rows
        keep = np.concatenate([rng.choice(np.flatnonzero(y == c), int(round(10_000 * np.mean(y == c))),
                                          replace=False) for c in (0, 1)])
        x, y = x[keep], y[keep]
    normal = rng.permutation(np.flatnonzero(y == 0))
    train = normal[: len(normal) // 2]
    test = np.concatenate([normal[len(normal) // 2:], np.flatnonzero(y == 1)])
    mean, std = x[train].mean(0), x[train].std(0)
    std[std == 0] = 1.0
    return (x[train] - mean) / std, (x[test] - mean) / std, y[test]


def detectors(seed: int) -> dict:
    """name -> a function that fits on X and returns a scoring function."""
    import vaekit

    def vaekit_model(model):
        def fit(x):
            det = vaekit.AnomalyDetector(model=model, random_state=seed).fit(x)
            return det.decision_function
        return fit

    def pyod(cls_path, **kw):
        def fit(x):
            module, name = cls_path.rsplit(".", 1)
            cls = getattr(__import__(module, fromlist=[name]), name)
            det = cls(**kw).fit(x)
            return det.decision_function
        return fit

    def iforest(x):
        from sklearn.ensemble import IsolationForest

        det = IsolationForest(random_state=seed).fit(x)
        return lambda z: -det.score_samples(z)

    return {
        "vaekit-vae": vaekit_model("vae"),
        "vaekit-ae": vaekit_model("ae"),
        "pyod-ae": pyod("pyod.models.auto_encoder.AutoEncoder", preprocessing=False, random_state=seed, verbose=0),
        "pyod-vae": pyod("pyod.models.vae.VAE", preprocessing=False, random_state=seed, verbose=0),
        "iforest": iforest,
        "knn": pyod("pyod.models.knn.KNN"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--detectors", default="vaekit-vae,vaekit-ae,pyod-ae,pyod-vae,iforest,knn")
    p.add_argument("--per-set", action="store_true", help="also print each set's AUROC")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    names = a.detectors.split(",")
    files = sorted(ADBENCH.glob("*.npz"), key=lambda f: int(f.name.split("_")[0]))
    results = {n: {"auroc": {}, "auprc": {}, "fit_s": 0.0} for n in names}
    warm = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    for n, fit in detectors(0).items():  # first calls load libraries and kernels: keep that out of the timing
        if n in names:
            fit(warm)(warm)
    for f in files:
        data = np.load(f)
        for seed in map(int, a.seeds.split(",")):
            xtr, xte, yte = split(data["X"].astype(np.float64), data["y"].astype(int), seed)
            fits = detectors(seed)
            for n in names:
                t0 = time.perf_counter()
                score = fits[n](xtr.astype(np.float32))
                results[n]["fit_s"] += time.perf_counter() - t0
                s = np.asarray(score(xte.astype(np.float32)), dtype=np.float64)
                results[n]["auroc"].setdefault(f.stem, []).append(roc_auc_score(yte, s))
                results[n]["auprc"].setdefault(f.stem, []).append(average_precision_score(yte, s))
    print(f"ADBench semi-supervised protocol, {len(files)} sets x seeds {a.seeds}")
    if a.per_set:
        print(f"{'set':16}" + "".join(f"{n:>12}" for n in names))
        for f in files:
            print(f"{f.stem:16}" + "".join(f"{np.mean(results[n]['auroc'][f.stem]):12.3f}" for n in names))
    print(f"{'detector':14}{'mean AUROC':>12}{'mean AUPRC':>12}{'fit time s':>12}")
    for n in names:
        r = results[n]
        auroc = np.mean([np.mean(v) for v in r["auroc"].values()])
        auprc = np.mean([np.mean(v) for v in r["auprc"].values()])
        print(f"{n:14}{auroc:12.3f}{auprc:12.3f}{r['fit_s']:12.1f}")


if __name__ == "__main__":
    main()
