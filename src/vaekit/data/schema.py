"""A table's columns and how each is modelled: the one place that decides what a column is.

Every reader of a table (CSV, Parquet, a DataFrame, an array of objects) hands its columns
here as they come, and gets back the numbers a model sees:

- ``continuous``: numbers; one model column (standardised; a Gaussian likelihood);
- ``binary``: two values (``bool`` columns, or a column declared so); one model column of
  0 and 1 (a Bernoulli likelihood);
- ``categorical``: text, a pandas ``category``, or integer codes declared so; one model
  column per level seen in training (one-hot) and one more for a level never seen, which the
  model learns is unlikely: a new category scores as unlikely, never as an error (a softmax
  over the levels).

Numbers, even 0/1 flags, are continuous unless declared, as SDV reads them: declaring
(``column_types={"zip": "categorical"}``, ``--column-types zip=categorical``) is how a user
says that numbers are codes. Missing cells (empty CSV fields, ``NA``, ``None``, NaN) are
NaN in every model column of theirs; the models leave them out.

A :class:`Schema` is inferred from the training data, recorded in a run's ``config.json``
and applied to every later read, so a later file is encoded with the training levels.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import VaekitError, option

KINDS = ("continuous", "binary", "categorical")
_LEADING_ZERO = re.compile(r"^[+-]?0\d")  # a code such as 02134, whose zero is part of it
# Cells read as missing, compared lowercased: pandas' read_csv list (less its rarer spellings),
# and "?", the UCI repository's mark of a missing value (adult's workclass and occupation).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "<na>", "#n/a", "-nan", "?"})
UNSEEN = "(unseen)"  # the model column of a level not seen in training
# A text column with more distinct values than this, and more than half its rows, is an
# identifier or free text, not categories: refused unless declared.
MOST_LEVELS = 50


@dataclass(frozen=True)
class Column:
    """One column of a table: its name, kind, and for binary and categorical columns the values
    seen in training (as text; ``numbers``: they were numbers, written back as numbers)."""

    name: str
    kind: str = "continuous"
    levels: tuple[str, ...] = ()
    numbers: bool = False

    @property
    def width(self) -> int:
        return len(self.levels) + 1 if self.kind == "categorical" else 1

    def model_names(self) -> list[str]:
        if self.kind != "categorical":
            return [self.name]
        return [f"{self.name}={level}" for level in (*self.levels, UNSEEN)]

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "levels": list(self.levels), "numbers": self.numbers}


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]
    offsets: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "offsets", tuple(np.cumsum([0] + [c.width for c in self.columns]).tolist()))

    # -- what it is ----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def width(self) -> int:
        """Model columns in all."""
        return self.offsets[-1]

    @property
    def plain(self) -> bool:
        """Every column continuous: a table of numbers, modelled as vaekit always has."""
        return all(c.kind == "continuous" for c in self.columns)

    def model_names(self) -> list[str]:
        return [name for c in self.columns for name in c.model_names()]

    def blocks(self) -> tuple[tuple[str, int], ...]:
        """The model columns as (kind, width) runs in order: continuous and binary columns side
        by side merged into one run, each categorical column a run of its own (what the
        likelihood needs to know, recorded with the model)."""
        out: list[list] = []
        for c in self.columns:
            if c.kind != "categorical" and out and out[-1][0] == c.kind:
                out[-1][1] += 1
            else:
                out.append([c.kind, c.width])
        return tuple((kind, width) for kind, width in out)

    def continuous(self) -> np.ndarray:
        """(width,) bool: which model columns are continuous (the ones standardised)."""
        return np.concatenate([np.full(c.width, c.kind == "continuous") for c in self.columns])

    def to_json(self) -> list[dict]:
        return [c.to_json() for c in self.columns]

    @classmethod
    def from_json(cls, data) -> Schema:
        return cls(tuple(Column(d["name"], d["kind"], tuple(d.get("levels", ())), bool(d.get("numbers")))
                         for d in data))

    # -- reading -------------------------------------------------------------------------------
    @classmethod
    def infer(cls, names, columns, declared: dict | None = None, name: str = "data") -> Schema:
        """The schema of a table's raw ``columns`` (1-D arrays or sequences as read), each named
        in ``names``; ``declared`` maps column names to a kind."""
        names, declared = [str(n) for n in names], dict(declared or {})
        unknown = [c for c in declared if c not in names]
        if unknown:
            raise VaekitError(f"{option('column_types')} names {', '.join(map(repr, unknown))}, which {name} does "
                              f"not have; its columns are {', '.join(map(repr, names))}")
        for column, kind in declared.items():
            if kind not in KINDS:
                raise VaekitError(f"{option('column_types')}: {column}={kind} is no kind; use one of "
                                  f"{', '.join(KINDS)}")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise VaekitError(f"{name}: column(s) {', '.join(map(repr, twice))} appear more than once; give each "
                              "column a name of its own")
        return cls(tuple(_infer(n, c, declared.get(n), name) for n, c in zip(names, columns)))

    def encode(self, names, columns, name: str = "data") -> np.ndarray:
        """Raw ``columns`` named ``names`` as model columns (N, width), float64, NaN where missing."""
        self.check_names(names, name)
        n = len(columns[0]) if columns else 0
        out = np.empty((n, self.width), np.float64)
        for c, raw, start in zip(self.columns, columns, self.offsets):
            out[:, start:start + c.width] = _encode(c, raw, name)
        return out

    def check_names(self, names, name: str = "data") -> None:
        """One line unless ``names`` are this schema's columns, in order."""
        names = [str(n) for n in names]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise VaekitError(f"{name}: column(s) {', '.join(map(repr, twice))} appear more than once; give each "
                              "column a name of its own")
        if names != self.names:
            missing = [c for c in self.names if c not in names]
            extra = [c for c in names if c not in self.names]
            what = (f"lacks column(s) {', '.join(map(repr, missing))}" if missing else
                    f"has column(s) {', '.join(map(repr, extra))} the model was not trained on" if extra else
                    "has the columns in another order")
            unnamed = names == [f"x{i}" for i in range(len(names))]  # an array (or a CSV without a header)
            hint = " (an array has no column names: pass a DataFrame, or a file with a header)" if unnamed else ""
            raise VaekitError(f"{name}: the table {what}; give the columns it was trained on: "
                              f"{', '.join(self.names)}{hint}")

    def decode(self, x: np.ndarray, given=None, draw: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Model columns (N, width) back as the table's own columns: numbers for continuous and
        number-coded columns, text for the rest.

        A category's probabilities (or its one-hot) give its most likely level, or with ``draw``
        (a NumPy generator) a level drawn with those probabilities, a binary column's a draw of
        its Bernoulli; a level never seen in training comes out as ``(unseen)`` (empty where the
        levels are numbers). ``given``: the raw columns the rows were read from (as
        :meth:`encode` took them), whose observed cells are given back exactly as they were.
        """
        out = {}
        for i, (c, start) in enumerate(zip(self.columns, self.offsets)):
            block = np.asarray(x[:, start:start + c.width], np.float64)
            if c.kind == "continuous":
                column = block[:, 0]
            else:
                column = _levels_of(c, block, draw)
            if given is not None:
                raw = raw_values(given[i])
                kept = ~_missing(raw)
                if kept.any():
                    column = column.astype(object) if raw.dtype == object else column
                    column[kept] = raw[kept]
            out[c.name] = column
        return out


def typed(schema: Schema, columns: dict) -> dict:
    """Decoded columns (:meth:`Schema.decode`) with one type each, as a typed format (Parquet)
    needs them: numbers as float64 (a CSV's text of a number read as the number), true/false as
    bools, categories as text; missing cells as None or NaN."""
    out = {}
    for c in schema.columns:
        values = raw_values(columns[c.name])
        if c.kind == "continuous" or c.numbers:
            out[c.name] = _numeric(values) if values.dtype.kind != "f" else values
        elif c.kind == "binary" and c.levels == ("False", "True"):
            out[c.name] = np.array([None if _is_missing(v) else _key(v) == "True" for v in values], dtype=object)
        else:
            out[c.name] = np.array([None if _is_missing(v) else str(v) for v in values], dtype=object)
    return out


def _levels_of(c: Column, block: np.ndarray, draw) -> np.ndarray:
    """A binary or categorical column's values from its model columns (probabilities or one-hot)."""
    if c.kind == "binary":
        p = np.clip(np.nan_to_num(block[:, 0], nan=0.0), 0, 1)
        index = (draw.random(len(p)) < p if draw is not None else p >= 0.5).astype(int)
        missing = np.isnan(block[:, 0])
        levels = c.levels if len(c.levels) == 2 else (c.levels * 2)[:2]
    else:
        missing = np.isnan(block).all(1)
        scores = np.nan_to_num(block, nan=-1.0)
        if draw is not None:  # a level drawn among those seen in training
            p = np.clip(scores[:, :-1], 0, None) + 1e-12
            p /= p.sum(1, keepdims=True)
            index = (draw.random((len(p), 1)) > np.cumsum(p, 1)).sum(1).clip(0, p.shape[1] - 1)
        else:
            index = scores.argmax(1)
        levels = c.levels
    values = np.array([_level_value(c, level) for level in levels] + [UNSEEN], dtype=object)
    column = values[index]
    column[missing] = np.nan if c.numbers else None
    if c.numbers:  # (a level never seen in training has no number)
        column[index == len(levels)] = np.nan
        return column.astype(np.float64)
    return column


def _missing(values: np.ndarray, split=None) -> np.ndarray:
    """Which cells of a raw column are missing (``split``: its :func:`_distinct`, if known)."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind in "iub":
        return np.zeros(len(values), bool)
    return _per_cell(values, _is_missing, bool, split)


def _per_cell(values: np.ndarray, fn, dtype, split=None) -> np.ndarray:
    """``fn`` of each cell of an object column, worked out once per distinct cell (a text column
    of 30,000 rows holds a handful of levels; ``split``: its :func:`_distinct`, if known)."""
    distinct, inverse = split or _distinct(values)
    return np.array([fn(v) for v in distinct], dtype)[inverse]


def _distinct(values: np.ndarray) -> tuple[list, np.ndarray]:
    """An object column's distinct cells (by type and value: 1, 1.0 and True stay apart) and where
    each cell's is; cells that cannot be hashed each count as their own."""
    seen: dict = {}
    try:
        inverse = np.fromiter((seen.setdefault((type(v), v), len(seen)) for v in values), np.int64, len(values))
    except TypeError:
        return list(values), np.arange(len(values))
    return [v for _, v in seen], inverse


def parse_column_types(text: str | None) -> dict[str, str] | None:
    """'zip=categorical,smoker=binary' -> {'zip': 'categorical', 'smoker': 'binary'}."""
    if not text:
        return None
    out = {}
    for part in str(text).split(","):
        column, sep, kind = part.strip().rpartition("=")
        if not sep or not column.strip() or kind.strip() not in KINDS:
            raise VaekitError(f"{option('column_types')} must look like zip=categorical,age=continuous (kinds: "
                              f"{', '.join(KINDS)}), got {text!r}")
        out[column.strip()] = kind.strip()
    return out


# -- one column ------------------------------------------------------------------------------------
def _dtype_name(raw) -> str:
    return str(getattr(raw, "dtype", ""))


def _is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip().lower() in MISSING
    try:
        return bool(v != v)  # NaN, pandas' NA
    except TypeError:
        return True  # pandas.NA compares to an NA (ambiguous truth)


def _key(v) -> str:
    """A cell as the text a level is recorded as: text stripped; numbers (and text that reads as one,
    as a CSV holds them: 31.0 from pandas, 31 from elsewhere) whole without '.0', except text with
    a leading zero (a zip code 02134 is text); true and false in any case as True and False."""
    if isinstance(v, str):
        text = v.strip()
        truth = {"true": "True", "false": "False"}.get(text.lower())
        if truth is not None:
            return truth
        number = _number(text) if text[:1].isdigit() or text[:1] in "+-." else None
        if number is not None and np.isfinite(number) and not _LEADING_ZERO.match(text):
            return _key(number)
        return text
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() and abs(v) < 2 ** 63 else format(float(v), ".15g")
    return str(v).strip()


def _level_value(c: Column, level: str):
    if c.kind == "binary" and set(c.levels) <= {"False", "True"} and not c.numbers:
        return level == "True"
    return float(level) if c.numbers else level


def raw_values(raw) -> np.ndarray:
    """A raw column as a 1-D NumPy array (what is kept beside its encoding): a pandas column's own
    values (NA as None), a sequence as objects (text) or numbers."""
    if hasattr(raw, "to_numpy") and not isinstance(raw, np.ndarray):
        kind = getattr(getattr(raw, "dtype", None), "kind", "O")
        if kind in "iuf" and _dtype_name(raw) != "category":  # pandas' nullable Int64 and Float64 too
            return raw.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(raw.to_numpy(dtype=object, na_value=None), dtype=object)
    array = np.asarray(raw)
    return array if array.ndim == 1 else array.reshape(-1)


def _numeric(values: np.ndarray) -> np.ndarray | None:
    """The column as float64 (NaN where missing), or None where some cell is not a number."""
    if values.dtype.kind in "iuf":
        return values.astype(np.float64)
    if values.dtype.kind == "b":
        return values.astype(np.float64)
    if values.dtype.kind == "c":
        return None
    try:  # every cell a number as text (a CSV column of numbers): NumPy's loop
        return values.astype(np.float64)
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), np.float64)
    for i, v in enumerate(values):
        if _is_missing(v):
            out[i] = np.nan
            continue
        if isinstance(v, (bool, np.bool_)):
            return None
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            return None
    return out


def _infer(name: str, raw, declared: str | None, table: str) -> Column:
    values, dtype = raw_values(raw), _dtype_name(raw)
    # an object column's distinct cells, which every test below looks at once each
    split = _distinct(values) if values.dtype.kind == "O" else None
    missing = _check_readable(name, values, dtype, table, split)
    boolean = values.dtype.kind == "b" or dtype in ("bool", "boolean") or (split is not None and _bools(split[0]))
    numbers = None if boolean else _numeric(values)
    if numbers is None and declared is None and not boolean and dtype != "category":
        _check_not_a_glitch(name, values, table, missing, split)
    kind = declared or ("binary" if boolean else
                        "categorical" if numbers is None or dtype == "category" else "continuous")
    if kind == "continuous":
        if numbers is None:
            bad = next(v for v in values if not _is_missing(v) and _number(v) is None)
            raise VaekitError(f"{table}: column {name!r} is declared continuous but holds {_key(bad)!r}; give numbers "
                              f"there, or declare it categorical in {option('column_types')}")
        return Column(name)
    seen = int((~missing).sum())
    distinct = split[0] if split is not None else np.unique(values[~missing])
    keys = sorted({_key(v) for v in distinct if not _is_missing(v)},
                  key=lambda k: (float(k), k) if numbers is not None else (0, k))
    if dtype == "category" and hasattr(raw, "cat"):  # a pandas category keeps its declared levels
        keys = [_key(v) for v in raw.cat.categories]
    # levels read from numbers (not from text, which keeps its spelling: a zip code 02134)
    as_numbers = values.dtype.kind in "iuf" and not boolean and dtype != "category"
    if kind == "binary":
        if len(keys) > 2:
            raise VaekitError(f"{table}: column {name!r} is declared binary but holds {len(keys)} values "
                              f"({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}); declare it categorical")
        if boolean:
            keys = ["False", "True"]
        return Column(name, "binary", tuple(keys), as_numbers)
    if declared is None and len(keys) > MOST_LEVELS and len(keys) > seen / 2:
        raise VaekitError(f"{table}: column {name!r} holds {len(keys)} different texts in {seen} rows, too many "
                          f"to be categories (an identifier or free text?); drop it, or declare it with "
                          f"{option('column_types', f'{name}=categorical')}")
    return Column(name, "categorical", tuple(keys), as_numbers)


def _check_readable(name: str, values: np.ndarray, dtype: str, table: str, split) -> np.ndarray:
    """One line for a column no kind fits: dates, complex numbers, no value at all; else which
    of its cells are missing."""
    if values.dtype.kind in "mM" or dtype.startswith(("datetime", "timedelta")):
        raise VaekitError(f"{table}: column {name!r} holds dates or durations; turn them into numbers (e.g. seconds "
                          "since a start, or the hour and weekday) or drop it")
    if values.dtype.kind == "c":
        raise VaekitError(f"{table}: column {name!r} holds complex numbers; give the real and imaginary parts (or "
                          "the magnitude) as columns of their own")
    missing = _missing(values, split)
    if len(values) and missing.all():
        raise VaekitError(f"{table}: column {name!r} has no values (every cell is empty), nothing to learn from; "
                          "drop it")
    return missing


def _bools(distinct: list) -> bool:
    """Whether an object column's distinct cells are Python bools, and gaps."""
    flags = [isinstance(v, (bool, np.bool_)) for v in distinct]
    return any(flags) and all(f or _is_missing(v) for f, v in zip(flags, distinct))


def _check_not_a_glitch(name: str, values: np.ndarray, table: str, missing: np.ndarray, split) -> None:
    """One line for a column of numbers with a few texts in it (fewer than half its values): a
    glitch to correct, not categories."""
    text = _per_cell(values, lambda v: not _is_missing(v) and _number(v) is None, bool, split)
    if text.sum() < (len(values) - int(missing.sum())) / 2:
        row = int(np.argmax(text))
        bad, more = values[row], f" and {int(text.sum()) - 1} more" if text.sum() > 1 else ""
        raise VaekitError(f"{table}: column {name!r} holds numbers but also {_key(bad)!r} (row {row}{more}); "
                          f"correct or empty those cells, or declare the column with "
                          f"{option('column_types', f'{name}=categorical')}")


def _number(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _encode(c: Column, raw, table: str) -> np.ndarray:
    values = raw_values(raw)
    if c.kind == "continuous":
        numbers = _numeric(values)
        if numbers is None:
            bad = next(v for v in values if not _is_missing(v) and _number(v) is None)
            raise VaekitError(f"{table}: column {c.name!r} holds {_key(bad)!r}, but the model reads it as numbers; "
                              "give numbers there (or leave the cell empty)")
        if np.isinf(numbers).any():
            row = int(np.argmax(np.isinf(numbers)))
            raise VaekitError(f"{table}: column {c.name!r} holds infinite values (first in row {row}); remove or "
                              "rescale them (empty cells and NaN are taken as missing)")
        return numbers[:, None]
    index = {level: i for i, level in enumerate(c.levels)}
    if values.dtype.kind in "iufb":  # numbers: the levels of their distinct values, looked up once each
        missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(len(values), bool)
        distinct, inverse = np.unique(values[~missing], return_inverse=True)
        codes = np.full(len(values), -2, np.int64)
        codes[~missing] = np.array([index.get(_key(v), -1) for v in distinct], np.int64)[inverse.reshape(-1)]
    else:
        split = _distinct(values)
        missing = _missing(values, split)
        codes = _per_cell(values, lambda v: -2 if _is_missing(v) else index.get(_key(v), -1), np.int64, split)
    if c.kind == "binary":
        if ((codes == -1) & ~missing).any():
            bad = values[int(np.argmax((codes == -1) & ~missing))]
            raise VaekitError(f"{table}: column {c.name!r} is binary ({' or '.join(c.levels)}) but holds "
                              f"{_key(bad)!r}; give one of those values there (or leave the cell empty)")
        out = codes.astype(np.float64)
        if len(c.levels) == 1:
            out[:] = 0.0
        out[missing] = np.nan
        return out[:, None]
    out = np.zeros((len(values), c.width), np.float64)
    codes = np.where(codes == -1, c.width - 1, codes)  # a level not seen in training: the last column
    out[np.arange(len(values)), np.clip(codes, 0, None)] = 1.0
    out[missing] = np.nan
    return out


def frame_columns(frame) -> tuple[list[str], list]:
    """The names and columns of a pandas (or any DataFrame-like) table."""
    names = [str(c) for c in frame.columns]
    return names, [frame[c] for c in frame.columns]


def is_frame(data) -> bool:
    """A pandas DataFrame or a table that looks like one (columns, each indexable by name)."""
    return hasattr(data, "columns") and hasattr(data, "dtypes") and hasattr(data, "__getitem__")


def needs_schema(data) -> bool:
    """Data whose columns are not all numbers: a DataFrame with a text, category or bool column,
    or a 2-D array of objects."""
    if is_frame(data):
        return any(getattr(t, "kind", "O") not in "iuf" or str(t) == "category" for t in data.dtypes)
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.dtype.kind not in "OUSb":
        return False
    return data.dtype.kind != "O" or any(isinstance(v, (str, bool, np.bool_)) for v in data.flat)


def array_columns(x: np.ndarray) -> tuple[list[str], list]:
    return [f"x{i}" for i in range(x.shape[1])], [x[:, i] for i in range(x.shape[1])]
