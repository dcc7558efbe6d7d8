"""Anomaly detection: `detect fit` trains a detector on (mostly) normal data, `detect score`
scores new data (one score and 0/1 label per row, in input order)."""
from __future__ import annotations

import argparse
import sys

from ._common import add_data, check_output, positive_int, print_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = sub.add_parser("fit", help="train a detector and write its folder",
                         description="Train an anomaly detector on (mostly) normal data.")
    add_data(fit, required=True)
    fit.add_argument("--out", required=True, metavar="DIR", help="detector folder to create")
    fit.add_argument("--model", choices=("vae", "ae"), default="vae", help="default: vae")
    fit.add_argument("--contamination", type=float, default=0.1,
                     help="share of anomalies expected in the training data; sets the threshold (0.1)")
    fit.add_argument("--score", choices=("auto", "recon", "elbo", "iw"), default="auto",
                     help="anomaly score: auto (elbo for a VAE on tables, recon otherwise), recon, elbo, iw")
    fit.add_argument("--epochs", type=positive_int, help="default: 100 for tables, 50 for images")
    fit.add_argument("--seed", type=int, default=0, help="random state (default: 0)")
    fit.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu")
    fit.add_argument("--quiet", action="store_true", help="no progress output")

    score = sub.add_parser("score", help="score data with a fitted detector",
                           description="Score data with a fitted detector; with 0/1 labels (1 = anomaly), "
                                       "also AUROC, AUPRC and F1, and the detector's report.html gains "
                                       "ROC/PR curves.")
    score.add_argument("run", metavar="RUN", help="a folder written by vaekit detect fit")
    add_data(score, required=True)
    score.add_argument("--out", required=True, metavar="FILE.csv", help="scores and 0/1 labels, one row each")
    score.add_argument("--json", action="store_true", help="print the metrics as one JSON object")


def run(args: argparse.Namespace) -> int:
    return _fit(args) if args.action == "fit" else _score(args)


def _fit(args) -> int:
    from pathlib import Path

    from ..anomaly import AnomalyDetector
    from ..data import load_dataset
    from ..errors import VaekitError
    from ..runfolder import RunFolder

    out = Path(args.out)
    RunFolder.create(out, resumable=False).path.rmdir()  # refuse an existing folder before training
    data = load_dataset(args.data)
    det = AnomalyDetector(model=args.model, contamination=args.contamination, score=args.score,
                          epochs=args.epochs or "auto", random_state=args.seed, device=args.device,
                          verbose=not args.quiet)
    try:
        det.fit(data)
    except ValueError as e:
        raise VaekitError(str(e)) from None
    det.save(out)
    from ..report import write_detector_report

    write_detector_report(det, out)
    print(f"fitted a {args.model} detector on {len(data)} rows of {args.data}; threshold {det.threshold_:.4g} "
          f"flags {det.labels_.mean():.1%} of them", file=sys.stderr)
    print(out)
    return 0


def _score(args) -> int:
    import numpy as np

    from ..anomaly import AnomalyDetector
    from ..atomic import atomic_write
    from ..data import load_dataset

    out = check_output(args.out, allowed=(".csv",))
    det = AnomalyDetector.load(args.run)
    data = load_dataset(args.data)
    scores = det.decision_function(data)
    labels = (scores > det.threshold_).astype(int)
    atomic_write(out, lambda tmp: np.savetxt(tmp, np.column_stack([scores, labels]), delimiter=",",
                                             header="score,label", comments="", fmt=["%.8g", "%d"]))
    metrics = {"n": len(scores), "flagged": int(labels.sum()), "threshold": det.threshold_}
    if data.y is not None and set(data.y.unique().tolist()) <= {0, 1}:  # 1 = anomaly; class labels don't count
        from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

        y = data.y.numpy().astype(int)
        if 0 < y.sum() < len(y):
            metrics.update(auroc=float(roc_auc_score(y, scores)), auprc=float(average_precision_score(y, scores)),
                           f1=float(f1_score(y, labels)))
    if "auroc" in metrics:  # labelled data: the detector's report gains ROC/PR and the worst inputs
        from pathlib import Path

        from ..report import write_detector_report

        page = write_detector_report(det, Path(args.run), data, name=args.data)
        print(f"report: {page}", file=sys.stderr)
    if args.json:
        print_json(metrics)
    else:
        print(out)
        for key, value in metrics.items():
            print(f"{key:>10}  {value:.4f}" if isinstance(value, float) else f"{key:>10}  {value}", file=sys.stderr)
    return 0
