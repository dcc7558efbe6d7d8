"""Metrics of a trained run on data: negative ELBO, reconstruction, KL, bits/dim, MSE, PSNR;
with --samples, how good its new samples are (FID, precision, recall against real images).

Without --data, the run's own validation split is used.
"""
from __future__ import annotations

import argparse

from ..config import PRIORS
from ._common import add_data, add_run, positive_int, print_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, default_help=" (default: the run's validation split)")
    p.add_argument("--iw-samples", type=positive_int, metavar="K",
                   help="also estimate -log p(x) by importance sampling with K samples")
    p.add_argument("--samples", type=positive_int, metavar="N",
                   help="also draw N new images and measure them against N real ones (FID, precision, recall, "
                        "in the features of vaekit's digit classifier), with the real-against-real noise floor")
    p.add_argument("--prior", choices=PRIORS,
                   help="the prior --samples draws from (default: the run's own)")
    p.add_argument("--seed", type=int, default=0, help="seed for the sampled terms (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")


def run(args: argparse.Namespace) -> int:
    from ..errors import VaekitError, option
    from ..run import load

    if args.prior is not None and args.samples is None:
        samples = option("samples")
        raise VaekitError(f"{option('prior')} chooses what {samples} draws from; give {samples} too")
    run = load(args.run)
    metrics = run.evaluate(args.data, iw_samples=args.iw_samples, seed=args.seed)
    if args.samples is not None:
        quality = run.sample_quality(args.samples, data=args.data, prior=args.prior, seed=args.seed)
        metrics.update(quality)
    if args.json:
        print_json(metrics)
        return 0
    for key, value in metrics.items():
        if isinstance(value, list):
            value = " ".join(f"{v:.2f}" for v in value)
        if value is not None and not key.endswith("_floor"):
            print(f"{key:>13}  {value:.4f}" if isinstance(value, float) else f"{key:>13}  {value}")
    if "fid_floor" in metrics:
        print(f"sample quality of {metrics['n_samples']} samples against as many held-out images: FID "
              f"{metrics['fid']:.1f} (real against real: {metrics['fid_floor']:.1f}), precision "
              f"{metrics['precision']:.3f} ({metrics['precision_floor']:.3f}), recall {metrics['recall']:.3f} "
              f"({metrics['recall_floor']:.3f})")
    return 0
