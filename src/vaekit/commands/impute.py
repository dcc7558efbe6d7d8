"""Fill the missing cells (empty, NaN) of a table with a run's model (.npy, .csv or .parquet).

Written a chunk at a time (any size; under torchrun each process takes its share); the
observed cells are written as they were given.
"""
from __future__ import annotations

import argparse

from ._common import ROW_SUFFIXES, add_data, add_run, check_output, float_format, stream_out


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, required=True)
    p.add_argument("--out", required=True, metavar="FILE", help=".npy array, .csv or .parquet rows")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior draws a VAE weighs (default: 0)")


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..config import check_seed
    from ..run import load
    from ._common import table_rows

    out = check_output(args.out, allowed=ROW_SUFFIXES)
    check_seed(args.seed)
    distributed.join()
    r = load(args.run)
    ds = r.table(args.data)
    columns, rows_of = table_rows(r, out, r.config.data.columns or [f"x{i}" for i in range(ds.sample_shape[0])])

    def chunks(part):
        for start, rows in r.impute_chunks(part, seed=args.seed):
            yield rows_of(rows, part.given_rows(start, start + len(rows)))  # observed cells as they were

    # the observed cells as given: float64 in a .npy, 15 significant digits in a CSV
    stream_out(out, ds, chunks, tuple(ds.sample_shape), list(columns), fmt=float_format("float64"), dtype="float64")
    return 0
