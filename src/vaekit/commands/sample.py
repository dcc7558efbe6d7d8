"""Draw new samples from a model's prior and save them as a PNG grid, a .npy array or CSV rows."""
from __future__ import annotations

import argparse

from ..config import PRIORS
from ._common import add_run, check_output, positive_int, write_array


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    p.add_argument("--n", type=positive_int, default=64, help="how many samples (default: 64)")
    p.add_argument("--out", required=True, metavar="FILE", help=".png grid, .npy array or .csv rows")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior draws (default: 0)")
    p.add_argument("--label", type=int, help="the class to draw, for a conditional model (--model cvae)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="scale of the prior draws (an autoregressive prior's: its logits divided by it); below 1 "
                        "gives cleaner, less varied samples")
    p.add_argument("--prior", choices=PRIORS,
                   help="where codes are drawn from: normal is N(0, I); gmm and flow are densities fitted to the "
                        "training data's codes after training, autoregressive a vqvae's prior over its symbols "
                        "(default: the run's own: gmm for new runs, autoregressive for a vqvae)")


def run(args: argparse.Namespace) -> int:
    from ..run import load

    out = check_output(args.out)
    r = load(args.run)
    write_array(out, r.sample(args.n, seed=args.seed, temperature=args.temperature, label=args.label, prior=args.prior),
                r.config.data.layout, r.config.data.columns)
    print(out)
    return 0
