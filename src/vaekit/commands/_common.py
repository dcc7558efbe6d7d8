"""Helpers the command modules share: argument types and output files."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..atomic import atomic_write
from ..errors import VaekitError

OUTPUT_SUFFIXES = (".npy", ".png", ".csv")
ROW_SUFFIXES = (".npy", ".csv", ".parquet")  # outputs written as they are computed


def _whole_number(text: str, least: int, bound: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "at least 1")


def nonnegative_int(text: str) -> int:
    return _whole_number(text, 0, "0 or more")


def add_run(parser: argparse.ArgumentParser, help: str = "a run folder written by vaekit train") -> None:
    parser.add_argument("run", metavar="RUN", help=help)


def add_data(parser: argparse.ArgumentParser, required: bool = False, default_help: str = "") -> None:
    parser.add_argument("--data", metavar="SPEC", required=required,
                        help="mnist-5k, digits, mnist[:test], fashion-mnist, kmnist, cifar10, or a path "
                             "(IDX folder, image folder, .npy, .npz, .csv, .parquet file or folder)" + default_help)


def check_output(path: str, allowed=OUTPUT_SUFFIXES) -> Path:
    """Fail before any work if the output file cannot be written."""
    out = Path(path)
    if out.suffix.lower() not in allowed:
        raise VaekitError(f"--out {path}: unsupported file type; use {', '.join(allowed)}")
    if not out.parent.exists():
        raise VaekitError(f"--out {path}: the folder {out.parent} does not exist; create it first")
    if out.is_dir():
        raise VaekitError(f"--out {path} is a folder; give a file name")
    return out


def write_array(out: Path, array, layout: str, columns=None, ncol: int | None = None) -> None:
    """Save samples in the data's own layout: .npy array, .png grid (images), .csv rows (tabular)."""
    import numpy as np

    suffix = out.suffix.lower()

    def write(tmp: str) -> None:
        if suffix == ".npy":
            np.save(tmp, array)
        elif suffix == ".png":
            if layout == "tabular":
                raise VaekitError(f"--out {out}: tabular rows cannot be drawn as a picture; use .npy or .csv")
            from ..data.dataset import from_layout
            from ..images import save_grid

            save_grid(Path(tmp), from_layout(array, layout), ncol=ncol)
        else:
            flat = array.reshape(len(array), -1)
            header = ",".join(columns) if columns and len(columns) == flat.shape[1] else \
                ",".join(f"x{i}" for i in range(flat.shape[1]))
            np.savetxt(tmp, flat, delimiter=",", header=header, comments="", fmt=float_format(flat.dtype))

    atomic_write(out, write)


def float_format(dtype) -> str:
    """How a CSV writes values of ``dtype``: float64 (a table in its own units) with 15
    significant digits, which give back any decimal of up to 15 digits exactly (a column of 1e12
    keeps its units digits, 36.44 stays 36.44, not 36.439999999999998); float32 with the six that
    mean something."""
    return "%.15g" if str(dtype) == "float64" else "%.6g"


def table_units(run) -> dict:
    """The ``dtype`` and ``fmt`` of row outputs in ``run``'s data units: float64 and 15 digits
    for a standardised table (a column of 1e12 keeps its units digits), else float32."""
    return {"dtype": "float64", "fmt": float_format("float64")} if run.config.data.mean is not None else {}


def table_rows(run, out: Path, columns: list[str], seed: int | None = None):
    """The columns of a row output of ``run``'s data and what turns model rows (N, width) in the
    data's units into them, ``rows_of(rows, given=None)``: a table with binary or categorical
    columns is written back in its own columns (text as text; ``given``, the columns as read,
    whose observed cells come back as they were; ``seed``: each category a level drawn with the
    model's probabilities, not the most likely), which a .npy cannot hold; other data as it is."""
    schema = run.config.data.table_schema()
    if schema is None:
        return columns, lambda rows, given=None: rows
    if out.suffix.lower() == ".npy":
        named = ", ".join(c.name for c in schema.columns if c.kind != "continuous")
        raise VaekitError(f"--out {out}: this run's table has categorical or binary columns ({named}), written back "
                          "as their own values, which a .npy array of numbers cannot hold; write .csv or .parquet")
    import numpy as np

    from ..data.schema import typed

    draw = None if seed is None else np.random.default_rng(seed)
    if out.suffix.lower() == ".parquet":  # one type per column (a CSV's cells as written would mix them)
        return schema.names, lambda rows, given=None: typed(schema, schema.decode(rows, given, draw))
    return schema.names, lambda rows, given=None: schema.decode(rows, given, draw)


def stream_out(out: Path, ds, chunks, row_shape: tuple[int, ...], columns: list[str], fmt="%.6g",
               announce: bool = True, dtype: str = "float32") -> None:
    """Write a row output of ``ds`` chunk by chunk (see :mod:`vaekit.outputs`): ``chunks(part)``
    yields the rows of a share of ``ds``; under torchrun each rank computes its own share.
    Rank 0 prints the file's name if ``announce``."""
    from ..data import shard
    from ..distributed import current
    from ..outputs import write_rows

    world = current()
    part = shard(ds, world)
    write_rows(out, chunks(part), len(ds), world.part(len(ds)).start, row_shape, columns, world, fmt=fmt, dtype=dtype)
    if world.is_main and announce:
        print(out)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")
