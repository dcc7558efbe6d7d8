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
