"""Pass data through a run's model and save the reconstructions (.npy, .csv, .parquet or a .png grid).

.npy, .csv and .parquet are written a chunk at a time (any size; under torchrun each process
takes its share); a .png grid is drawn in memory.
"""
from __future__ import annotations

import argparse

from ._common import ROW_SUFFIXES, add_data, add_run, check_output, stream_out, table_rows, table_units, write_array


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, required=True)
    p.add_argument("--out", required=True, metavar="FILE", help=".npy array, .csv or .parquet rows, or .png grid")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import distributed
    from ..run import load

    out = check_output(args.out, allowed=(*ROW_SUFFIXES, ".png"))
    distributed.join()
    r = load(args.run)
    data = r.config.data
    if out.suffix.lower() == ".png":
        if distributed.current().is_main:
            write_array(out, r.reconstruct(args.data), data.layout, data.columns)
            print(out)
        return 0
    ds = r.dataset(args.data, lazy=True)
    row_shape = r.to_data_units(np.zeros((1, *ds.sample_shape), np.float32)).shape[1:]
    columns, rows_of = table_rows(r, out, data.columns or [f"x{i}" for i in range(int(np.prod(row_shape)))])

    def chunks(part):
        for _, recon in r.chunks(part, r.model.reconstruct):
            yield rows_of(r.to_data_units(recon))

    stream_out(out, ds, chunks, row_shape, list(columns), **table_units(r))
    return 0
