"""Decode the path between the latent codes of two inputs (endpoints included)."""
from __future__ import annotations

import argparse

from ._common import add_data, add_run, check_output, positive_int, table_rows, write_array


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, required=True)
    p.add_argument("--from", dest="start", type=int, required=True, metavar="I", help="index of the first input")
    p.add_argument("--to", dest="end", type=int, required=True, metavar="J", help="index of the second input")
    p.add_argument("--steps", type=positive_int, default=10, help="points on the path, endpoints included (10)")
    p.add_argument("--method", choices=("lerp", "slerp"), default="lerp",
                   help="straight line, or spherical (keeps the code's norm; good for Gaussian priors)")
    p.add_argument("--out", required=True, metavar="FILE", help=".png strip, .npy array or .csv rows")


def run(args: argparse.Namespace) -> int:
    from ..run import load

    out = check_output(args.out)
    r = load(args.run)
    path = r.interpolate(args.data, args.start, args.end, steps=args.steps, method=args.method)
    if r.config.data.table_schema() is not None and out.suffix.lower() != ".png":  # text columns as text
        from ..outputs import write_rows

        columns, rows_of = table_rows(r, out, [])
        write_rows(out, [rows_of(path)], len(path), 0, path.shape[1:], columns, progress=False)
    else:
        write_array(out, path, r.config.data.layout, r.config.data.columns, ncol=args.steps)
    print(out)
    return 0
