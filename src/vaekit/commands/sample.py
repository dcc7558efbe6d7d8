"""Draw new samples from a model's prior and save them as a PNG grid, a .npy array, or CSV or
Parquet rows; the last three are written a chunk at a time, so any number fits in memory."""
from __future__ import annotations

import argparse

from ..config import PRIORS
from ._common import ROW_SUFFIXES, add_run, check_output, positive_int, table_rows, table_units, write_array


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    p.add_argument("--n", type=positive_int, default=64, help="how many samples (default: 64)")
    p.add_argument("--out", required=True, metavar="FILE", help=".png grid, .npy array, or .csv or .parquet rows")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior draws (default: 0)")
    p.add_argument("--label", type=int, help="the class to draw, for a conditional model (--model cvae)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="scale of the prior draws (an autoregressive prior's: its logits divided by it); below 1 "
                        "gives cleaner, less varied samples")
    p.add_argument("--prior", choices=PRIORS,
                   help="where codes are drawn from: normal is N(0, I); gmm and flow are densities fitted to the "
                        "training data's codes after training, autoregressive a vqvae's prior over its symbols "
                        "(default: the run's own: gmm for new runs, autoregressive for a vqvae)")


MAX_GRID = 10_000  # samples a .png grid draws; more go to a file of rows


def run(args: argparse.Namespace) -> int:
    import itertools

    import numpy as np

    from ..errors import VaekitError, option
    from ..outputs import write_rows
    from ..run import load

    out = check_output(args.out, allowed=(*ROW_SUFFIXES, ".png"))
    if out.suffix.lower() == ".png" and args.n > MAX_GRID:
        raise VaekitError(f"{option('n', args.n)} samples are too many to draw as one picture (at most {MAX_GRID:,}); "
                          f"write them to .npy, .csv or .parquet, which take any number")
    r = load(args.run)
    chunks = r.sample_chunks(args.n, seed=args.seed, temperature=args.temperature, label=args.label, prior=args.prior)
    first = next(chunks)  # the options are checked here, before any file is begun
    data = r.config.data
    if out.suffix.lower() == ".png":
        write_array(out, np.concatenate([first, *chunks]), data.layout)
    else:  # a chunk at a time: any number of samples in a chunk's memory
        row_shape = first.shape[1:]
        columns, rows_of = table_rows(r, out, data.columns or [f"x{i}" for i in range(int(np.prod(row_shape)))],
                                      seed=args.seed)  # a table's categories drawn
        write_rows(out, map(rows_of, itertools.chain([first], chunks)), args.n, 0, row_shape, list(columns),
                   progress=False,
                   **table_units(r))
    print(out)
    return 0
