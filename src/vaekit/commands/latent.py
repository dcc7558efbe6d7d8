"""Draw the latent space: codes of the data in 2-D, coloured by label, and for a 2-D code
also the decoded grid of codes (the learned manifold)."""
from __future__ import annotations

import argparse

from ._common import add_data, add_run, check_output, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, default_help=" (default: the run's validation split)")
    p.add_argument("--method", choices=("pca", "tsne"), default="pca",
                   help="projection when the code has more than 2 dimensions (default: pca)")
    p.add_argument("--max-points", type=positive_int, default=5000, help="plot at most this many inputs (5000)")
    p.add_argument("--out", required=True, metavar="FILE.png")


def run(args: argparse.Namespace) -> int:
    import torch

    from .. import plots
    from ..report import latent_figure
    from ..run import load

    out = check_output(args.out, allowed=(".png",))
    r = load(args.run)
    ds = r.dataset(args.data)
    if len(ds) > args.max_points:  # an even spread, the same every time
        ds = ds.subset(torch.linspace(0, len(ds) - 1, args.max_points).long())
    plots.save(latent_figure(r, ds, args.method), out)
    print(out)
    return 0
