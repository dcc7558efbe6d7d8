"""Hostile tables for anomaly detectors: the kinds of columns real tables hold, made on the spot.

Every case starts from the same structure: normal rows lie near a few latent factors
(``c = z W + noise``, one column of ``c`` per base column), and anomalies are rows whose
factors are drawn the same way but that lie off the structure, with a third of their base
columns pushed 2.5 to 4 standard deviations out (so an IsolationForest, which sees columns
one at a time, finds them too). Each case then turns the base columns into what users'
tables hold: sparse 0/1 flags, constant columns, one-hot groups, heavy tails, values near
1e9 beside values near 1e-6, duplicated rows, integer counts, hundreds of dense columns, or
a training set with a few rows a thousand times too large (glitches: contamination the
detector is not told about).

``make(case, seed)`` returns ``(train, test, y)``: float64 arrays and 0/1 marks of the test
rows (1 = anomaly). Used by tests/test_anomaly_robust.py on small sizes and by
bench/anomaly_robust.py on larger ones.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm


def _base(rng, n_train: int, n_test: int, n_anomalies: int, columns: int, factors: int = 3, noise: float = 0.3):
    """Base columns (standard scale) of the training rows, and of the test rows with their marks."""
    w = rng.normal(size=(factors, columns)) / np.sqrt(factors)

    def rows(n):
        return rng.normal(size=(n, factors)) @ w + noise * rng.normal(size=(n, columns))

    anomalies = rows(n_anomalies)
    pushed = rng.random((n_anomalies, columns)) < 1 / 5
    anomalies += pushed * rng.choice([-1, 1], size=pushed.shape) * rng.uniform(1.5, 3, size=pushed.shape)
    test = np.concatenate([rows(n_test - n_anomalies), anomalies])
    y = np.r_[np.zeros(n_test - n_anomalies), np.ones(n_anomalies)]
    return rows(n_train), test, y


def sparse_flags(c, rng, state):
    """0/1 flags that are 1 in 0.03% to 3% of normal rows (most columns are 0 in nearly every
    row, some in every training row), beside three sizes (lognormal, as an image's width and height)."""
    if "cut" not in state:
        state["cut"] = norm.isf(np.exp(rng.uniform(np.log(3e-4), np.log(0.03), c.shape[1] - 3)))
    return np.column_stack([np.exp(2 + c[:, :3]), (c[:, 3:] > state["cut"]).astype(float)])


def constant_columns(c, rng, state):
    """Columns that never change in training (0, 1, 1e6, -3.5) beside ordinary ones."""
    return np.column_stack([c, np.tile([0.0, 1.0, 1e6, -3.5], (len(c), 1))])


def one_hot_groups(c, rng, state):
    """Three categorical columns of five levels each, one-hot encoded, beside six numbers."""
    groups = [np.eye(5)[np.argmax(c[:, 6 + 5 * g: 11 + 5 * g], axis=1)] for g in range(3)]
    return np.column_stack([c[:, :6], *groups])


def heavy_tails(c, rng, state):
    """Lognormal, Cauchy-noised and Pareto columns (alpha 1.5: infinite variance)."""
    k = c.shape[1] // 3
    return np.column_stack([np.exp(c[:, :k]), c[:, k:2 * k] + 0.3 * rng.standard_cauchy((len(c), k)),
                            norm.sf(c[:, 2 * k:]) ** (-1 / 1.5)])


def mixed_scales(c, rng, state):
    """Columns near 1e9 (spread 1e7) beside columns near 1e-6 (spread 1e-7) and ordinary ones."""
    k = c.shape[1] // 3
    return np.column_stack([1e9 + 1e7 * c[:, :k], 1e-6 + 1e-7 * c[:, k:2 * k], c[:, 2 * k:]])


def near_constant(c, rng, state):
    """Columns that differ from their usual value in about 0.5% of rows, and columns that vary by 1e-9."""
    k = c.shape[1] // 3
    rare = np.where(c[:, :k] > 2.6, c[:, :k], 0.0)
    return np.column_stack([rare, 1.0 + 1e-9 * c[:, k:2 * k], c[:, 2 * k:]])


def integer_counts(c, rng, state):
    """Counts: Poisson with a rate that follows the factors (mostly 0 to 5)."""
    return rng.poisson(np.exp(0.7 * np.clip(c, -5, 5) + 0.3)).astype(float)


def identity(c, rng, state):
    return c


# name -> (base columns, factors, transform, training rows multiplied by (count, factor), training rows)
CASES = {
    "sparse flags": (1500, 10, sparse_flags, None, 150),  # more columns than rows, as many real tables
    "constant columns": (8, 3, constant_columns, None, 600),
    "one-hot groups": (21, 3, one_hot_groups, None, 600),
    "heavy tails": (12, 3, heavy_tails, None, 600),
    "1e9 beside 1e-6": (12, 3, mixed_scales, None, 600),
    "near-constant columns": (12, 3, near_constant, None, 600),
    "duplicated rows": (10, 3, identity, None, 600),
    "integer counts": (10, 3, integer_counts, None, 600),
    "dense, 1000 columns": (1000, 20, identity, None, 150),
    "one glitch row x1e3": (10, 3, identity, (1, 1e3), 2000),
    "five glitch rows x1e4": (10, 3, identity, (5, 1e4), 2000),
}


def make(case: str, seed: int = 0, n_train: int | None = None, n_test: int = 200, n_anomalies: int = 20):
    """(train, test, y) of one hostile case (see CASES); ``n_train`` defaults to the case's."""
    columns, factors, transform, glitches, rows = CASES[case]
    n_train = n_train or rows
    rng = np.random.default_rng(seed)
    train, test, y = _base(rng, n_train, n_test, n_anomalies, columns, factors)
    state = {}
    train, test = transform(train, rng, state), transform(test, rng, state)
    if case == "duplicated rows":  # each row 1 to 4 times
        train = np.repeat(train, rng.integers(1, 5, len(train)), axis=0)[:n_train]
        train = train[rng.permutation(len(train))]
    if glitches:
        count, factor = glitches
        rows = rng.choice(len(train), count, replace=False)
        train[rows] *= factor
    return train, test, y
