"""Pass data through a run's model and save the reconstructions (.npy, .png or .csv)."""
from __future__ import annotations

import argparse

from ._common import add_data, add_run, check_output, write_array


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, required=True)
    p.add_argument("--out", required=True, metavar="FILE", help=".npy array, .png grid or .csv rows")


def run(args: argparse.Namespace) -> int:
    from ..run import load

    out = check_output(args.out)
    r = load(args.run)
    write_array(out, r.reconstruct(args.data), r.config.data.layout, r.config.data.columns)
    print(out)
    return 0
