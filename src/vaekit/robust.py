"""Robust statistics for tables: units that a few extreme rows cannot move, and values that
stay finite however far out they are.

A detector is trained on data nobody cleaned. One row multiplied by 10^4 moves a column's
mean and standard deviation so far that the other rows all sit near 0 in the standardised
units (the detector goes blind to that column); the median and the quartiles do not move.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

# The interquartile range of the standard normal distribution: IQR / this is the standard
# deviation for normal data.
NORMAL_IQR = 1.3489795
FLOAT32_MAX = float(np.finfo(np.float32).max)


def robust_units(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column center and scale of a table (N, D), float64.

    The center is the median; the scale is the interquartile range / 1.349 (the standard
    deviation, for normal data). Where the middle half of the rows share one value (sparse 0/1
    flags, counts that are mostly 0, columns that rarely change) the interquartile range is 0;
    the scale is then the median distance from the median of the rows that differ from it
    (a flag's 1 is one unit), and a column that never changes keeps its own units (scale 1).
    Missing cells (NaN) are left out.
    """
    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with no value at all: center 0, scale 1
        q1, center, q3 = np.nanpercentile(x, [25, 50, 75], axis=0)  # over each column's observed cells
    center = np.nan_to_num(center)
    scale = (q3 - q1) / NORMAL_IQR
    flat = ~(scale > 0)
    if flat.any():
        away = np.abs(x[:, flat] - center[flat])
        away[away == 0] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all NaN: no row off the median
            typical = np.nanmedian(away, axis=0)
        scale[flat] = np.where(np.isfinite(typical) & (typical > 0), typical, 1.0)
    # (a spread below the smallest normal number would divide by 0 once halved)
    return center, np.maximum(scale, np.finfo(np.float64).tiny)


def soft_clip(z: torch.Tensor, beyond: float) -> torch.Tensor:
    """``z`` where |z| <= ``beyond``, and beyond it ``beyond * (1 + log(|z| / beyond))`` with
    z's sign: continuous, increasing, so the order of values is kept, and growing only
    logarithmically, so that a value 10^30 units out stays a finite number a network can take
    (10^30 becomes about 6,700 for ``beyond`` = 100)."""
    z = z.clamp(-FLOAT32_MAX, FLOAT32_MAX)  # an overflow to infinity becomes the largest float
    size = z.abs()
    far = beyond * (1.0 + torch.log(size.clamp_min(beyond) / beyond))
    return torch.where(size <= beyond, z, torch.sign(z) * far)


def robust_standardize(x: torch.Tensor, center, scale, beyond: float | None) -> torch.Tensor:
    """(x - center) / scale, soft-clipped beyond ``beyond`` units (None: not clipped).

    Worked out as (x / 2 - center / 2) / (scale / 2): the same number (halving is exact in binary
    floating point), but one that cannot overflow where x and the center lie more than float32's
    range apart (a column of values near -1e38 and 1e38), with no branch for an ONNX export to trace.
    """
    center = torch.as_tensor(center, dtype=x.dtype, device=x.device)
    scale = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
    z = (x * 0.5 - center * 0.5) / (scale * 0.5)
    return z if beyond is None else soft_clip(z, beyond)
