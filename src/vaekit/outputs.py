"""Row outputs of any length, written as they are computed: ``.npy``, ``.csv`` or ``.parquet``.

Rows arrive in chunks, in input order, and go straight to disk, so encoding or scoring
a file larger than memory holds one chunk at a time. Under torchrun each rank writes
the rows of its own contiguous share (``.npy``: into its place in the one file; ``.csv``
and ``.parquet``: into a part file that rank 0 appends in rank order), so the result is
still one file in input order. The file appears under its name only when complete; with
several nodes, its folder must be one they all see (a shared file system).
"""
from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .atomic import umask
from .distributed import SINGLE, World
from .errors import VaekitError, option

SUFFIXES = (".npy", ".csv", ".parquet")


def write_rows(out: Path, chunks, n_rows: int, first_row: int, row_shape: tuple[int, ...], columns: list[str],
               world: World = SINGLE, fmt="%.6g", progress: bool = True, dtype=np.float32) -> Path:
    """Write ``chunks`` (this rank's rows, in order, starting at input row ``first_row``) to
    ``out``, which holds ``n_rows`` rows of ``row_shape`` in all.

    A chunk is an array (rows, *row_shape), whose flattened values ``columns`` name in CSV
    headers and Parquet columns, or (CSV and Parquet) a dict of one array per column, which
    keeps each column's type (``fmt`` may then give one format per column). ``dtype``: a .npy's
    values (float32; float64 for a table's own values, which must come back as given).
    """
    from tqdm.auto import tqdm

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise VaekitError(f"{option('out', out)}: unsupported file type; use {', '.join(SUFFIXES)}")
    tmp, offset = world.on_main(lambda: _reserve(out, suffix, n_rows, row_shape, dtype))
    tmp = Path(tmp)
    part = tmp if world.size == 1 or suffix == ".npy" else _parts(tmp, world.size)[world.rank]
    bar = tqdm(total=n_rows, unit="row", leave=False, disable=None if progress and world.is_main else True,
               desc=out.name)
    try:
        if suffix == ".npy":
            world.agree(lambda: _write_npy_rows(tmp, offset, chunks, first_row, row_shape, bar, world.size, dtype))
        else:
            world.agree(lambda: _write_table(part, suffix, chunks, columns, fmt, bar, world.size))
        world.on_main(lambda: _finish(tmp, out, suffix, world.size))  # its errors reach every rank
    except BaseException:  # every rank clears what it can: the one that failed may be gone
        for path in (tmp, *_parts(tmp, world.size)):
            path.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    return out


def _finish(tmp: Path, out: Path, suffix: str, world_size: int) -> None:
    """The ranks' parts appended (CSV, Parquet) and the whole file put in place."""
    if world_size > 1 and suffix != ".npy":
        _append_parts(tmp, suffix, _parts(tmp, world_size))
    os.chmod(tmp, 0o666 & ~umask())
    os.replace(tmp, out)


def _parts(tmp: Path, world_size: int) -> list[Path]:
    """The ranks' part files of a .csv or .parquet output (none in a single process)."""
    return [tmp.with_name(f"{tmp.name}.part{r}") for r in range(world_size)] if world_size > 1 else []


def _reserve(out: Path, suffix: str, n_rows: int, row_shape, dtype) -> tuple[str, int]:
    """A temporary file beside ``out`` and where its rows start: a .npy already holds its header
    and room for every row."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=suffix)
    os.close(fd)
    if suffix != ".npy":
        return tmp, 0
    mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(n_rows, *row_shape))
    offset = mm.offset
    del mm  # the header is written and the file sized; the ranks write the rows
    return tmp, offset


def _columns(chunk, columns) -> dict:
    if isinstance(chunk, dict):
        return chunk
    flat = chunk.reshape(len(chunk), -1)
    return {c: flat[:, i] for i, c in enumerate(columns)}


def _write_table(path: Path, suffix: str, chunks, columns, fmt, bar, world_size: int) -> None:
    if suffix == ".csv":
        with open(path, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerow(columns)  # a name with a comma or quote is quoted
            for chunk in chunks:
                table = _columns(chunk, columns)
                if any(v.dtype == object for v in table.values()):  # text: quoted where it must be
                    _write_text_rows(f, table, fmt)
                else:
                    np.savetxt(f, np.column_stack(list(table.values())), delimiter=",", fmt=fmt)
                bar.update(len(next(iter(table.values()))) * world_size)
        return
    from .data.parquet import pyarrow

    pa = pyarrow()
    writer = None
    try:
        for chunk in chunks:
            table = pa.table(_columns(chunk, columns))
            if writer is None:
                writer = pa.parquet.ParquetWriter(path, table.schema)
            writer.write_table(table)
            bar.update(table.num_rows * world_size)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no rows on this rank: an empty table with the right columns
        pa.parquet.write_table(pa.table({c: np.zeros(0, np.float32) for c in columns}), path)


def _write_text_rows(f, table: dict, fmt) -> None:
    """Rows of columns some of which hold text (a table's categories): numbers in ``fmt``,
    missing values (None, NaN) as empty cells."""
    number = fmt if isinstance(fmt, str) else "%.15g"

    def cell(v) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return ""
        if isinstance(v, (float, np.floating)):
            return number % v
        return str(v)

    writer = csv.writer(f, lineterminator="\n")
    for row in zip(*table.values()):
        writer.writerow([cell(v) for v in row])


def _write_npy_rows(path: Path, offset: int, chunks, first_row: int, row_shape, bar, world_size: int,
                    dtype) -> None:
    """Each chunk into its place in the preallocated file (plain writes: a memory map would keep
    every written page in this process)."""
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    with open(path, "r+b") as f:
        at = first_row
        for chunk in chunks:
            data = np.ascontiguousarray(chunk, dtype=dtype)
            f.seek(offset + at * row_bytes)
            f.write(data.tobytes())
            at += len(data)
            bar.update(len(data) * world_size)


def _append_parts(tmp: Path, suffix: str, parts: list[Path]) -> None:
    """Rank 0's file followed by the other ranks' rows, in rank order."""
    if suffix == ".csv":
        with open(tmp, "w") as out:
            for i, part in enumerate(parts):
                with open(part) as f:
                    if i:
                        f.readline()  # each part repeats the header
                    shutil.copyfileobj(f, out, 1 << 20)
    else:
        from .data.parquet import pyarrow

        pq = pyarrow().parquet
        files = [pq.ParquetFile(part) for part in parts]
        # a rank with no rows wrote an empty file whose column types are only guessed
        written = [f for f in files if f.metadata.num_rows] or files[:1]
        with pq.ParquetWriter(tmp, written[0].schema_arrow) as writer:
            for f in written:
                for g in range(f.num_row_groups):
                    writer.write_table(f.read_row_group(g))
    for part in parts:
        part.unlink(missing_ok=True)
