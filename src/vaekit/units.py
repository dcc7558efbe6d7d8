"""Data in a run's own units and shape: standardised with its training statistics, and
checked against the shape its model was trained on."""
from __future__ import annotations

from .config import RunConfig
from .data import Dataset
from .errors import VaekitError, option
from .robust import FLOAT32_MAX


def describe_shape(shape: tuple[int, ...], layout: str) -> str:
    if layout == "gray":
        return f"{shape[1]}x{shape[2]} grayscale images"
    if layout == "channel-last":
        return f"{shape[1]}x{shape[2]}x{shape[0]} images"
    return f"{shape[0]} features" if len(shape) == 1 else str(shape)


def in_model_units(ds: Dataset, config: RunConfig) -> Dataset:
    """``ds`` standardised with the run's training statistics, if the run standardises (and
    ``ds`` is not already)."""
    if config.data.mean is None or ds.is_standardized:
        return ds
    return ds.standardized(config.data.mean, config.data.std)


# A column whose standard deviation is this many times the spread of its middle half (in the units
# of a normal's sd) has its scale set by a few far values: a unit slip (1e7 among salaries of 50)
# squeezes every other value of it to nearly one point, and what the model fills in or generates
# there follows the glitch. A lognormal of sigma 2 is at about 20; the most heavy-tailed column of
# ADBench's 20 tables (PageBlocks) at 68; one value of 1e7 among 300 salaries of about 60 at 37,000.
FAR_SPREAD = 100.0


def warn_far_values(train: Dataset, std) -> None:
    """One warning naming the continuous columns whose scale a few far values set (see FAR_SPREAD)."""
    import warnings

    import numpy as np

    from .errors import VaekitWarning

    x = train.values().numpy()
    names = list(train.columns) if train.columns else [f"x{j}" for j in range(x.shape[1])]
    continuous = train.schema.continuous() if train.schema is not None else np.ones(x.shape[1], bool)
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # (a column with no value: all-NaN slices)
        q1, median, q3 = np.nanpercentile(x, [25, 50, 75], axis=0)
        spread = (q3 * 0.5 - q1 * 0.5) / (1.349 * 0.5)  # halves: columns near float64's limit cannot overflow
        far = [j for j in np.flatnonzero(continuous & (spread > 0)) if std[j] > FAR_SPREAD * spread[j]]
        where = {j: np.nanargmax(np.abs(x[:, j] - median[j])) for j in far}
    if far:
        shown = [f"{names[j]} ({x[where[j], j]:.3g} where half lie within "
                 f"{q1[j]:.3g} to {q3[j]:.3g})" for j in far[:3]]
        warnings.warn(VaekitWarning(f"column(s) {', '.join(shown)}{' ...' if len(far) > 3 else ''} hold values so "
                                    "far from the rest that they set the column's scale and squeeze its other values "
                                    "together (imputed and generated values follow them); if they are glitches (a "
                                    "unit slip?), correct or empty those cells"), stacklevel=2)


def standardization(dataset: Dataset, config: RunConfig) -> tuple[list[float], list[float]] | None:
    """Mean and std of the training split's features (float64), for a table that needs standardising."""
    lo, hi = dataset.value_range()
    if dataset.kind != "tabular" or (lo >= 0 and hi <= 1):
        return None
    if not config.data.standardize:
        if max(-lo, hi) > FLOAT32_MAX:
            raise VaekitError(f"{dataset.name} holds values up to {max(-lo, hi):.3g}, beyond float32's "
                              f"{FLOAT32_MAX:.3g}, which a network computes in; drop {option('standardize', False)} "
                              "(standardising brings them to a few units) or rescale them")
        return None
    train, _ = dataset.split(config.data.val_fraction, config.train.seed)
    mean, std = train.feature_stats()
    if isinstance(train, Dataset):  # in memory: its quartiles cost little
        warn_far_values(train, std)
    if dataset.schema is not None:  # binary and one-hot columns stay 0 and 1
        kept = ~dataset.schema.continuous()
        mean[kept], std[kept] = 0.0, 1.0
    return mean.tolist(), std.tolist()


def check_shape(ds: Dataset, config: RunConfig) -> None:
    """Data for a trained model must have the shape it was trained on."""
    expected = tuple(config.model.input_shape)
    if ds.sample_shape != expected:
        raise VaekitError(f"{ds.name}: samples are {describe_shape(ds.sample_shape, ds.layout)} but the model "
                          f"was trained on {describe_shape(expected, config.data.layout)}; give data like "
                          "the training data")


def checked(dataset, config: RunConfig):
    """Data like the run's training data (else a clear error), in the model's units."""
    check_shape(dataset, config)
    return in_model_units(dataset, config)
