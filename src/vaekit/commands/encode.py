"""Latent codes of data (posterior means for a VAE), saved as .npy or .csv (with labels)."""
from __future__ import annotations

import argparse

from ._common import add_data, add_run, check_output, write_array


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, required=True)
    p.add_argument("--out", required=True, metavar="FILE", help=".npy array or .csv rows")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..run import load

    out = check_output(args.out, allowed=(".npy", ".csv"))
    r = load(args.run)
    data = r.dataset(args.data)
    codes = r.encode(data)
    columns = [f"z{i}" for i in range(codes.shape[1])]
    if out.suffix.lower() == ".csv" and data.y is not None:
        codes = np.column_stack([codes, data.y.numpy()])
        columns.append("label")
    write_array(out, codes, "tabular", columns)
    print(out)
    return 0
