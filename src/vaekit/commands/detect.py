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
    fit.add_argument("--model", choices=("vae", "ae", "vqvae"), default="vae",
                     help="default: vae; vqvae (images only) is convolutional, with a code of discrete symbols")
    fit.add_argument("--contamination", type=float, default=0.1,
                     help="share of anomalies expected in the training data; sets the threshold (0.1)")
    fit.add_argument("--score", choices=("auto", "recon", "elbo", "iw"), default="auto",
                     help="anomaly score: auto (elbo for a VAE on tables, recon for images and for an AE), "
                          "recon, elbo, iw")
    fit.add_argument("--epochs", type=positive_int,
                     help="default: for tables, the fewest passes that make about a step per row, but 300 to 500 "
                          "steps (at most 300 passes); for tables of more than 64 columns, steps that see 1.5 "
                          "million values or 10 passes, whichever is more; 50 for images")
    fit.add_argument("--column-types", metavar="COL=KIND[,...]",
                     help="a table's column kinds where not what the data say: continuous, binary or categorical, "
                          "e.g. zip=categorical (numbers are continuous, text categorical, bools binary)")
    fit.add_argument("--seed", type=int, default=0, help="random state (default: 0)")
    fit.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu")
    fit.add_argument("--quiet", action="store_true", help="no progress output")

    score = sub.add_parser("score", help="score data with a fitted detector",
                           description="Score data with a fitted detector; with 0/1 labels (1 = anomaly), "
                                       "also AUROC, AUPRC and F1, and the detector's report.html gains "
                                       "ROC/PR curves.")
    score.add_argument("run", metavar="RUN", help="a folder written by vaekit detect fit")
    add_data(score, required=True)
    score.add_argument("--out", required=True, metavar="FILE",
                       help=".csv or .parquet: a score and a 0/1 label per row, in input order")
    score.add_argument("--json", action="store_true", help="print the metrics as one JSON object")


def run(args: argparse.Namespace) -> int:
    return _fit(args) if args.action == "fit" else _score(args)


def _fit(args) -> int:
    from pathlib import Path

    from .. import distributed
    from ..anomaly import AnomalyDetector
    from ..data import load_dataset
    from ..data.schema import parse_column_types
    from ..errors import VaekitError
    from ..runfolder import RunFolder

    column_types = parse_column_types(args.column_types)
    out = Path(args.out)
    world = distributed.join()
    # refuse an existing folder before training (and leave no empty one behind)
    world.on_main(lambda: _remove_if_empty(RunFolder.create(out, resumable=False).path))
    data = world.agree(lambda: load_dataset(args.data, column_types=column_types))
    det = AnomalyDetector(model=args.model, contamination=args.contamination, anomaly_score=args.score,
                          epochs=args.epochs or "auto", random_state=args.seed, device=args.device,
                          verbose=not args.quiet, column_types=column_types)
    try:
        det.fit(data)
    except VaekitError:
        raise
    except ValueError as e:
        raise VaekitError(str(e)) from None
    if not world.is_main:
        return 0
    det.save(out)
    from ..report import write_detector_report

    write_detector_report(det, out)
    print(f"fitted a {args.model} detector on {len(data)} rows of {args.data}; threshold {det.threshold_:.4g} "
          f"flags {det.labels_.mean():.1%} of them", file=sys.stderr)
    print(out)
    return 0


def _remove_if_empty(folder) -> None:
    """The folder made only to check --out goes again; one holding a stopped run's lock stays
    (the detector is saved into it, as into an empty one)."""
    if not any(folder.iterdir()):
        folder.rmdir()


def _score(args) -> int:
    """Scores written as they are computed (any size; under torchrun each process scores its
    share); with 0/1 labels, the metrics and the detector's report on rank 0."""
    import numpy as np

    from .. import distributed
    from ..anomaly import AnomalyDetector, anomaly_marks
    from ..data import open_lazy

    out = check_output(args.out, allowed=(".csv", ".parquet"))
    world = distributed.join()
    det = AnomalyDetector.load(args.run)
    data = open_lazy(args.data, schema=det.schema_)  # a table's text columns read as in fitting
    det.check_data(data)  # the shape and columns must match before any work
    y = anomaly_marks(data)
    binary = y is not None
    if not binary and data.class_names is not None and len(data.class_names) == 2:
        how = "name the subfolders 1 (anomalies) and 0 (normal images)" if data.kind == "image" else \
            "mark anomalies with 1 and normal rows with 0"
        print(f"vaekit detect score: labels are names ({', '.join(data.class_names)}), not 0/1 anomaly marks, so "
              f"no AUROC is computed; {how}", file=sys.stderr)
    kept, flagged = [], [0]

    def chunks(part):
        for scores in det.score_chunks(part):
            labels = det.flags(scores)
            flagged[0] += int(labels.sum())
            if binary:
                kept.append(scores)
            yield {"score": scores, "label": labels}

    from ._common import stream_out

    stream_out(out, data, chunks, (2,), ["score", "label"], fmt=["%.8g", "%d"], announce=not args.json)
    flagged = sum(world.all_gather(flagged[0]))
    scores = None
    if binary:
        scores = np.concatenate([np.zeros(0), *kept])
        scores = np.concatenate(world.all_gather(scores)) if world.size > 1 else scores
    if not world.is_main:
        return 0
    metrics = {"n": len(data), "flagged": flagged, "threshold": det.threshold_}
    if binary:
        from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

        if 0 < y.sum() < len(y):
            metrics.update(auroc=float(roc_auc_score(y, scores)), auprc=float(average_precision_score(y, scores)),
                           f1=float(f1_score(y, det.flags(scores))))
        else:  # AUROC, AUPRC and F1 compare anomalies with normal rows: one kind alone gives none
            print(f"vaekit detect score: the labels of {args.data} are all {int(y[0])}, so AUROC, AUPRC and F1 (which "
                  "need anomalies (1) and normal rows (0) both) are left out", file=sys.stderr)
    if "auroc" in metrics:  # labelled data: the detector's report gains ROC/PR and the worst inputs
        from pathlib import Path

        from ..report import write_detector_report

        page = write_detector_report(det, Path(args.run), data, name=args.data, scores=scores)
        print(f"report: {page}", file=sys.stderr)
    if args.json:
        print_json(metrics)
    else:
        for key, value in metrics.items():
            print(f"{key:>10}  {value:.4f}" if isinstance(value, float) else f"{key:>10}  {value}", file=sys.stderr)
    return 0
