"""Latent codes of data (posterior means for a VAE), saved as .npy, .csv or .parquet (with labels).

Any size: the data is read and the codes written a chunk at a time; under torchrun each
process encodes its share and the output is still one file in input order.
"""
from __future__ import annotations

import argparse

from ._common import ROW_SUFFIXES, add_data, add_run, check_output, stream_out


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run(p)
    add_data(p, required=True)
    p.add_argument("--out", required=True, metavar="FILE", help=".npy array, or .csv / .parquet rows with labels")


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..run import load

    out = check_output(args.out, allowed=ROW_SUFFIXES)
    distributed.join()
    r = load(args.run)
    ds = r.dataset(args.data, lazy=True)
    latent = r.config.model.latent_dim
    columns = [f"z{i}" for i in range(latent)]
    labelled = out.suffix.lower() != ".npy" and ds.y is not None

    def chunks(part):
        y = part.y
        for start, codes in r.chunks(part, r.model.codes):
            if not labelled:
                yield codes
                continue
            yield {**{c: codes[:, i] for i, c in enumerate(columns)}, "label": y[start:start + len(codes)].numpy()}

    stream_out(out, ds, chunks, (latent,), columns + ["label"] * labelled)
    return 0
