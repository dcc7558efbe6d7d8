"""(Re)write the self-contained HTML report of a run or of an anomaly detector.

For a detector, --data with labels adds ROC and precision-recall curves and the most
anomalous inputs.
"""
from __future__ import annotations

import argparse

from ._common import add_data, add_run


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, default_help=" (default: the run's validation split; for a detector, none)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..runfolder import RunFolder

    if RunFolder.open(args.run).kind == "detector":
        from ..anomaly import AnomalyDetector
        from ..data import load_dataset
        from ..report import write_detector_report

        detector = AnomalyDetector.load(args.run)
        data = load_dataset(args.data, schema=detector.schema_) if args.data else None
        print(write_detector_report(detector, Path(args.run), data, name=args.data or ""))
        return 0
    from ..report import write_run_report
    from ..run import load

    print(write_run_report(load(args.run), args.data))
    return 0
