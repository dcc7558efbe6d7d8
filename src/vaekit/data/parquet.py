"""Tables in Parquet: one file, or a folder of files with the same columns, read in row groups.

Columns of numbers, text, categories and bools are the features (:mod:`vaekit.data.schema`;
nulls are missing cells); a column named ``label`` or ``y`` holds the labels (class
names are numbered in sorted order, as for CSV). Needs pyarrow (``pip install
'vaekit[parquet]'``), imported only when a Parquet file is opened or written.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import VaekitError
from .dataset import TABULAR, model_rows
from .schema import Schema
from .source import Source

LABEL_COLUMNS = ("label", "y")


def pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise VaekitError("Parquet files need pyarrow; pip install 'vaekit[parquet]'") from None
    return pyarrow


def parquet_files(path: Path) -> list[Path]:
    """The file itself, or every ``*.parquet`` file under the folder, in sorted order."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise VaekitError(f"{path}: the folder holds no .parquet files")
        return files
    return [path]


def is_parquet_folder(path: Path) -> bool:
    return path.is_dir() and any(path.rglob("*.parquet"))


class ParquetSource(Source):
    """Rows of one or more Parquet files; a read decodes only the row groups it touches."""

    def __init__(self, path: Path, schema: Schema | None = None, column_types=None):
        pa = pyarrow()
        self.name = str(path)
        self.files = [str(f) for f in parquet_files(path)]
        arrow, groups = None, []
        for f in self.files:
            meta = self._open(f).metadata
            this = meta.schema.to_arrow_schema()
            if arrow is None:
                arrow = this
            elif this.names != arrow.names:
                raise VaekitError(f"{f}: its columns differ from those of {self.files[0]}; every file of a "
                                  "Parquet folder needs the same columns")
            else:
                changed = [c for c in this.names if _is_numeric(pa, this.field(c).type) !=
                           _is_numeric(pa, arrow.field(c).type)]
                if changed:
                    what = "numbers" if _is_numeric(pa, arrow.field(changed[0]).type) else "text"
                    raise VaekitError(f"{f}: column(s) {', '.join(map(repr, changed))} hold "
                                      f"{'text' if what == 'numbers' else 'numbers'}, where {self.files[0]} holds "
                                      f"{what}; every file of a Parquet folder needs the same columns")
            groups += [(f, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
        groups = [g for g in groups if g[2] > 0]
        if not groups:
            raise VaekitError(f"{path}: the dataset is empty; give a file with at least one row")
        names = [c for c in arrow.names if c not in _index_columns(arrow)]  # pandas' saved index is no feature
        labels = [c for c in names if c.strip().lower() in LABEL_COLUMNS]
        if len(labels) > 1:
            raise VaekitError(f"{path}: columns {' and '.join(map(repr, labels))} are both label columns; keep one "
                              "(or rename the other if it is a feature)")
        label = labels[0] if labels else None
        features = [c for c in names if c != label]
        if not features:
            raise VaekitError(f"{path}: no feature columns besides the label")
        self.features = features
        if schema is None:  # numbers need no reading to be known continuous; other columns are read whole
            declared = column_types or {}
            whole = [c for c in features if c.strip() in declared or not _is_numeric(pa, arrow.field(c).type)
                     or pa.types.is_boolean(arrow.field(c).type)]
            raw = {c: self._column(c) for c in whole}
            schema = Schema.infer([c.strip() for c in features], [raw.get(c, np.zeros(0)) for c in features],
                                  declared, self.name)
        schema.check_names(features, self.name)
        self.table_schema = schema
        self.schema = None if schema.plain else schema
        self.columns = tuple(schema.model_names())
        self.groups = [(f, g) for f, g, _ in groups]
        self.bounds = np.cumsum([0] + [n for _, _, n in groups])
        self.layout, self.sample_shape, self.dtype = TABULAR, (schema.width,), np.dtype(np.float64)
        self.class_names = None
        self.labels = None if label is None else self._labels(label)
        self._cache: dict[int, np.ndarray] = {}

    def __getstate__(self):  # workers start with an empty cache
        return {**self.__dict__, "_cache": {}}

    def _open(self, file: str):
        try:
            return pyarrow().parquet.ParquetFile(file)
        except (OSError, ValueError) as e:
            raise VaekitError(f"{file}: not a readable Parquet file ({e})") from None

    def _column(self, column: str) -> np.ndarray:
        """One column of every file, whole (to learn a text column's levels)."""
        pq = pyarrow().parquet
        return np.concatenate([pq.read_table(f, columns=[column]).column(0).to_numpy(zero_copy_only=False)
                               for f in self.files])

    def _labels(self, column: str) -> np.ndarray:
        raw = self._column(column)
        if raw.dtype.kind in "iub":
            return raw.astype(np.int64)
        if raw.dtype.kind == "f" and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw)):
            return raw.astype(np.int64)
        if raw.dtype.kind == "f":
            raise VaekitError(f"{self.name}: labels must be whole numbers (class indices), and every row needs one")
        if any(v is None for v in raw):
            raise VaekitError(f"{self.name}: the label column {column!r} has empty values; give every row a label")
        names, index = np.unique(raw.astype(str), return_inverse=True)  # class names, in sorted order
        self.class_names = tuple(names.tolist())
        return index.astype(np.int64)

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def block_bounds(self) -> np.ndarray:
        return self.bounds  # a row group is decoded whole, so it is the natural block

    def _group(self, g: int) -> np.ndarray:
        """Row group ``g`` as float64 (rows, features); the last two are kept for the next read."""
        if g not in self._cache:
            file, index = self.groups[g]
            try:
                table = self._open(file).read_row_group(index, columns=self.features)
            except (OSError, ValueError, pyarrow().ArrowException) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise VaekitError(f"{file}: row group {index} cannot be read ({first}); the file is damaged, "
                                  "write it again") from None
            x = self.table_schema.encode(self.table_schema.names, [table.column(i).to_numpy(zero_copy_only=False)
                                                                   for i in range(table.num_columns)],
                                         f"{self.name} (row group {index})")
            self._cache[g] = model_rows(x, TABULAR, self.name, int(self.bounds[g]))
            while len(self._cache) > 2:
                self._cache.pop(next(iter(self._cache)))
        return self._cache[g]

    def given(self, rows: np.ndarray) -> tuple | None:
        """The columns at ``rows`` as stored (a table with binary or categorical columns)."""
        if self.schema is None:
            return None
        rows = np.asarray(rows, dtype=np.int64)
        out = [np.empty(len(rows), object) for _ in self.features]
        which = np.searchsorted(self.bounds, rows, side="right") - 1
        for g in np.unique(which):
            at = which == g
            file, index = self.groups[g]
            table = self._open(file).read_row_group(int(index), columns=self.features)
            for column, part in zip(out, table.columns):
                column[at] = part.to_numpy(zero_copy_only=False)[rows[at] - self.bounds[g]]
        return tuple(out)

    def take(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self.sample_shape), self.dtype)
        which = np.searchsorted(self.bounds, rows, side="right") - 1
        for g in np.unique(which):
            at = which == g
            out[at] = self._group(int(g))[rows[at] - self.bounds[g]]
        return out

    def read(self, start: int, stop: int) -> np.ndarray:
        stop = min(stop, len(self))
        parts = []
        first = int(np.searchsorted(self.bounds, start, side="right") - 1)
        for g in range(first, len(self.groups)):
            lo, hi = int(self.bounds[g]), int(self.bounds[g + 1])
            if lo >= stop:
                break
            parts.append(self._group(g)[max(start, lo) - lo:min(stop, hi) - lo])
        return np.concatenate(parts)  # a copy: callers may change it, the cache must not change


def _index_columns(schema) -> list[str]:
    """Columns that hold a pandas DataFrame's index (``df.to_parquet`` keeps it as a column)."""
    meta = schema.pandas_metadata or {}
    return [c for c in meta.get("index_columns", []) if isinstance(c, str)]


def _is_numeric(pa, t) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t)


def write_parquet(path, x: np.ndarray, columns, labels: np.ndarray | None = None, row_group_rows: int = 1 << 16):
    """Rows (N, D) as a Parquet table (a label column last, if given)."""
    pa = pyarrow()
    arrays = {str(c): x[:, i] for i, c in enumerate(columns)}
    if labels is not None:
        arrays["label"] = labels
    pa.parquet.write_table(pa.table(arrays), path, row_group_size=row_group_rows)
