"""What the detector's trimming fence buys and costs: each model fitted with and without it, side by side.

The fence (vaekit.objectives.within_fence, ``vaekit.anomaly.TRIM``) keeps rows whose loss is far
past the batch's upper quartile out of each training step. This fits every set of
bench/anomaly_adbench.py's two collections both ways, on clean training data, with 5% anomalies
mixed in and with five rows multiplied by 10^4 (that script's protocol and splits), and prints
the mean AUROC, the worst set's, the fits that stopped with an error (AUROC 0.5) and the total fit
time of each, the two fits of a set one after the other.

    python bench/anomaly_trim.py [--models vae,ae] [--seeds 1,2,3] [--collections adbench,embeddings]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.metrics import roc_auc_score

from anomaly_adbench import COLLECTIONS, set_order, split

PROTOCOLS = {"clean": {}, "5% anomalies": {"contaminate": 0.05}, "5 rows x 1e4": {"glitches": (5, 1e4)}}


def fit_and_score(model: str, trim, seed: int, xtr, xte, yte) -> tuple[float, float, bool]:
    """AUROC, fit seconds and whether the fit failed, with the fence at ``trim`` (None: off)."""
    import vaekit
    import vaekit.anomaly

    vaekit.anomaly.TRIM = trim
    t0 = time.perf_counter()
    try:
        det = vaekit.AnomalyDetector(model=model, random_state=seed).fit(xtr.astype(np.float32))
    except vaekit.VaekitError:
        return 0.5, time.perf_counter() - t0, True
    seconds = time.perf_counter() - t0
    return roc_auc_score(yte, det.decision_function(xte.astype(np.float32))), seconds, False


def main() -> None:
    import torch

    import vaekit.anomaly

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vae,ae")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--collections", default="adbench,embeddings")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    fence = vaekit.anomaly.TRIM
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"{'model':6}{'collection':12}{'training data':15}{'AUROC fence / none':>20}{'worst':>15}"
          f"{'failed':>10}{'fit s':>15}{'ratio':>7}")
    for model in a.models.split(","):
        for collection in a.collections.split(","):
            files = sorted(COLLECTIONS[collection].glob("*.npz"), key=set_order)
            for name, protocol in PROTOCOLS.items():
                auroc = {fence: {}, None: {}}
                failed = dict.fromkeys(auroc, 0)
                seconds = dict.fromkeys(auroc, 0.0)
                for f in files:
                    data = np.load(f)
                    for seed in seeds:
                        xtr, xte, yte = split(data["X"].astype(np.float64), data["y"].astype(int), seed, **protocol)
                        for trim in (fence, None) if seed % 2 else (None, fence):  # neither always first
                            value, s, fail = fit_and_score(model, trim, seed, xtr, xte, yte)
                            auroc[trim].setdefault(f.stem, []).append(value)
                            failed[trim] += fail
                            seconds[trim] += s
                mean = {t: [np.mean(v) for v in auroc[t].values()] for t in auroc}
                print(f"{model:6}{collection:12}{name:15}{np.mean(mean[fence]):>12.3f} / {np.mean(mean[None]):.3f}"
                      f"{np.min(mean[fence]):>8.3f} / {np.min(mean[None]):.3f}{failed[fence]:>5} / {failed[None]:<3}"
                      f"{seconds[fence]:>8.1f} / {seconds[None]:<5.1f}{seconds[fence] / seconds[None]:>6.2f}",
                      flush=True)
    vaekit.anomaly.TRIM = fence


if __name__ == "__main__":
    main()
