"""Metrics of a trained run on data: negative ELBO, reconstruction, KL, bits/dim, MSE, PSNR.

Without --data, the run's own validation split is used.
"""
from __future__ import annotations

import argparse

from ._common import add_data, add_run, positive_int, print_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, default_help=" (default: the run's validation split)")
    p.add_argument("--iw-samples", type=positive_int, metavar="K",
                   help="also estimate -log p(x) by importance sampling with K samples")
    p.add_argument("--seed", type=int, default=0, help="seed for the sampled terms (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")


def run(args: argparse.Namespace) -> int:
    from ..run import load

    metrics = load(args.run).evaluate(args.data, iw_samples=args.iw_samples, seed=args.seed)
    if args.json:
        print_json(metrics)
        return 0
    for key, value in metrics.items():
        if isinstance(value, list):
            value = " ".join(f"{v:.2f}" for v in value)
        if value is not None:
            print(f"{key:>13}  {value:.4f}" if isinstance(value, float) else f"{key:>13}  {value}")
    return 0
