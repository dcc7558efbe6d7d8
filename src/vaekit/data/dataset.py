"""The in-memory dataset every command works on: one contiguous tensor, batched by index."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import VaekitError, option
from .schema import Schema, raw_values

# How the user's own files hold the samples; outputs are written back in the same layout.
TABULAR, GRAY, CHANNEL_LAST = "tabular", "gray", "channel-last"


class Samples:
    """What every dataset answers the same way, in memory or read on demand (subclasses give
    ``__len__``, ``name``, ``layout``, ``label_rows``, ``value_range``, ``batch``, ``subset``)."""

    CHUNK = 4096  # rows per read when a whole dataset is passed over in order

    @property
    def kind(self) -> str:
        return "tabular" if self.layout == TABULAR else "image"

    def chunk_rows(self, size: int) -> int:
        return size

    def chunks(self, size: int = CHUNK, values: bool = False):
        """(start, samples) over the whole dataset in order, ``size`` rows at a time (``values``:
        as :meth:`values` gives them)."""
        size = self.chunk_rows(size)
        take = self.values if values else self.batch
        for start in range(0, len(self), size):
            yield start, take(slice(start, start + size))

    def values(self, index=None) -> torch.Tensor:
        """Samples at ``index`` as :meth:`batch` gives them, but a table kept in float64 and not
        yet standardised comes in float64: what its statistics and units are worked out from."""
        return self.batch(index)

    def given_rows(self, start: int, stop: int) -> tuple | None:
        """A table's columns of rows ``start`` to ``stop`` as they were read, where it has binary
        or categorical columns (None otherwise, and where the source does not keep them)."""
        return None

    def require_labels(self) -> torch.Tensor:
        y = self.label_rows()
        if y is None:
            raise VaekitError(f"{self.name} has no labels, but a conditional model (cvae) needs them; give "
                              "labelled data (.npz with y, a label column, class subfolders, IDX labels)")
        if len(y) and int(y.min()) < 0:
            raise VaekitError(f"{self.name}: a conditional model needs class indices 0, 1, 2, ... as labels, but "
                              f"they go down to {int(y.min())}; renumber the classes from 0")
        return y

    def labels(self, index, model) -> torch.Tensor | None:
        """Labels at ``index`` (all for None) if ``model`` is conditional, else None."""
        if not getattr(model, "n_classes", 0):
            return None
        self.require_labels()
        return self.label_rows(index)

    def check_binarizable(self) -> None:
        lo, hi = self.value_range()
        if lo < 0 or hi > 1:
            raise VaekitError(f"{self.name}: {option('binarize')} needs data in [0, 1], "
                              f"but it spans [{lo:.3g}, {hi:.3g}]")

    def split_indices(self, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Positions of a random train/validation split that depends only on the seed and the
        size (None when nothing is held out)."""
        n_val = int(round(len(self) * val_fraction))
        if n_val == 0:
            return None
        if n_val >= len(self):
            raise VaekitError(
                f"{self.name} has {len(self)} samples, too few for {option('val_fraction', val_fraction)}; "
                "use a smaller fraction or more data")
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return perm[n_val:], perm[:n_val]


@dataclass
class Dataset(Samples):
    """All samples of a data spec, ready for training.

    ``x`` is (N, D) for tabular data and (N, C, H, W) for images; uint8 images stay uint8
    (a quarter of the memory) and become floats in [0, 1] only when a batch is taken.
    """

    x: torch.Tensor
    y: torch.Tensor | None
    layout: str
    name: str
    columns: tuple[str, ...] | None = None
    is_standardized: bool = False  # x already holds (x - mean) / std, so it is not scaled twice
    class_names: tuple[str, ...] | None = None  # labels given as names: y indexes these (sorted)
    schema: Schema | None = None  # a table with binary or categorical columns: how x encodes them
    given: tuple | None = None  # and its columns as they were read (observed cells given back as they were)

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def batch(self, index: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Float32 samples at ``index`` (all of them for None), uint8 scaled to [0, 1]."""
        if index is None:
            x = self.x
        elif isinstance(index, torch.Tensor):
            x = torch.index_select(self.x, 0, index)  # several times faster than x[index] for rows
        else:
            x = self.x[index]
        if x.dtype == torch.uint8:
            return x.float().mul_(1.0 / 255.0)
        return x.float()

    @property
    def nbytes(self) -> int:
        return self.x.numel() * self.x.element_size()

    def epoch_order(self, generator: torch.Generator, loading=None) -> torch.Tensor:
        """This epoch's order: a permutation of all samples (everything is in memory, so the
        whole set is one window)."""
        return torch.randperm(len(self), generator=generator)

    def local_batches(self, order: torch.Tensor, loading, device=None, with_labels: bool = False):
        """This rank's part of each global batch of ``order`` (see
        :func:`vaekit.data.lazy.global_batches`): (samples, labels or None, global batch size)."""
        from .lazy import global_batches

        for index, n in global_batches(order.to(self.x.device), loading):
            yield self.batch(index), (self.require_labels()[index] if with_labels else None), n

    def label_rows(self, index=None) -> torch.Tensor | None:
        """Labels at ``index`` (all for None), or None for unlabelled data."""
        return self.y if index is None or self.y is None else self.y[index]

    def subset(self, index: torch.Tensor) -> Dataset:
        given = self.given
        if given is not None:
            rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index)
            given = tuple(c[rows] for c in given)
        return replace(self, x=self.x[index], y=None if self.y is None else self.y[index], given=given)

    def given_rows(self, start: int, stop: int) -> tuple | None:
        """The columns of rows ``start`` to ``stop`` as they were read (a table with binary or
        categorical columns; else None)."""
        return None if self.given is None else tuple(c[start:stop] for c in self.given)

    def to(self, device: torch.device) -> Dataset:
        return replace(self, x=self.x.to(device), y=None if self.y is None else self.y.to(device))

    def resident(self, device: torch.device, max_float_bytes: int = 1 << 30) -> Dataset:
        """On ``device``, as float32 when that copy stays under ``max_float_bytes``.

        Converting once saves a cast per batch (a few % of a small model's step); past the
        limit uint8 stays, at a quarter of the memory, and an unstandardised float64 table at
        twice (each batch is cast).
        """
        data = self.to(device)
        if data.x.dtype in (torch.uint8, torch.float64) and data.x.numel() * 4 <= max_float_bytes:
            data = replace(data, x=data.batch())
        return data

    def split(self, val_fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
        """A random train/validation split that depends only on the seed and the size."""
        parts = self.split_indices(val_fraction, seed)
        return (self, None) if parts is None else (self.subset(parts[0]), self.subset(parts[1]))

    def values(self, index=None) -> torch.Tensor:
        if self.x.dtype != torch.float64:
            return self.batch(index)
        return self.x if index is None else self.x[index]

    def standardized(self, mean, std) -> Dataset:
        """Features shifted and scaled: (x - mean) / std, worked out in float64 (a table's
        values are kept in it), as float32."""
        return replace(self, x=standardize(self.values().double(), mean, std).float(), is_standardized=True)

    def feature_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature mean and standard deviation in float64 (1 where a feature is constant, see
        :func:`feature_scale`)."""
        return moments(self.values().double()).stats()

    def binarized(self, seed: int) -> Dataset:
        """Each value in [0, 1] replaced by one Bernoulli draw with that probability (seeded)."""
        self.check_binarizable()
        g = torch.Generator(device=self.x.device).manual_seed(seed)
        return replace(self, x=torch.bernoulli(self.batch(), generator=g))

    def value_range(self) -> tuple[float, float]:
        if self.x.dtype == torch.uint8:
            return 0.0, 1.0
        return value_range(self.x)


def value_range(x: torch.Tensor) -> tuple[float, float]:
    """The smallest and largest values of ``x``, its missing cells (NaN) left out."""
    seen = x[~torch.isnan(x)] if x.is_floating_point() else x
    return (float(seen.min()), float(seen.max())) if seen.numel() else (0.0, 0.0)


@dataclass
class Moments:
    """Per-feature count, mean and spread of a table's observed cells, combinable chunk by chunk
    (Chan et al.'s parallel update), in float64. The deviations are taken of half the values
    (exact in binary, so two values of float64's limit and opposite signs stay apart by a finite
    number) and summed in units of ``unit``, so their squares cannot overflow either."""

    n: torch.Tensor
    mean: torch.Tensor
    m2: torch.Tensor        # sum of squared deviations of x/2 from its mean, over unit^2
    unit: torch.Tensor      # a scale of those deviations (> 0)
    largest: torch.Tensor   # the largest |value|

    def __add__(self, other: Moments) -> Moments:
        n = self.n + other.n
        gap = other.mean * 0.5 - self.mean * 0.5
        unit = torch.maximum(torch.maximum(self.unit, other.unit), gap.abs())
        delta = gap / unit
        share = torch.where(n > 0, other.n / n.clamp_min(1), torch.zeros_like(n))
        return Moments(n, self.mean + (gap * share + gap * share),
                       self.m2 * (self.unit / unit) ** 2 + other.m2 * (other.unit / unit) ** 2
                       + delta ** 2 * self.n * share, unit, torch.maximum(self.largest, other.largest))

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per feature (0 and 1 for a feature with no value; the scale
        of :func:`feature_scale`)."""
        half = self.unit * (self.m2 / (self.n - 1).clamp_min(1)).sqrt()
        std = torch.where(self.n > 1, half + half, torch.zeros_like(half))
        return self.mean.numpy(), feature_scale(std.numpy(), self.largest.numpy())


def moments(x: torch.Tensor) -> Moments:
    """The :class:`Moments` of a chunk of rows (float64, NaN as missing): deviations from the
    chunk's median, which neither overflows nor loses the digits of values far from 0 (a column
    of 1.7e15 that varies by 30)."""
    seen = ~torch.isnan(x)
    n = seen.sum(0).to(torch.float64)
    pivot = torch.nan_to_num(x.nanmedian(0).values) if len(x) else torch.zeros(x.shape[1:], dtype=x.dtype)
    half = torch.where(seen, x * 0.5 - pivot * 0.5, torch.zeros_like(x))
    unit = half.abs().amax(0) if len(x) else torch.zeros_like(pivot)
    unit = torch.where(unit > 0, unit, torch.ones_like(unit))
    offset = (half / unit).sum(0) / n.clamp_min(1)  # the mean of x/2 - pivot/2, in units
    m2 = torch.where(seen, half / unit - offset, torch.zeros_like(x)).pow(2).sum(0)
    mean = pivot + (offset * unit + offset * unit)
    largest = torch.where(seen, x, torch.zeros_like(x)).abs().amax(0) if len(x) else torch.zeros_like(pivot)
    return Moments(n, mean, m2, unit, largest)


# A feature's spread below this many of float64's rounding steps of its largest value is the
# rounding of a constant, not variation (an integer column of 1.7e15 that varies by 30 varies).
CONSTANT_SPREAD = 8 * float(np.finfo(np.float64).eps)



def feature_scale(std: np.ndarray, largest: np.ndarray) -> np.ndarray:
    """Each feature's standardisation scale: its standard deviation, or 1 where the feature is
    constant, judged against its own size (a column of values near 1e-9 varies; 1e12 plus
    rounding does not)."""
    return np.where(std > CONSTANT_SPREAD * largest, std, 1.0)


def standardize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """(x - mean) / std with the statistics on x's device, worked out as (x/2 - mean/2) / (std/2):
    the same number (halving is exact in binary), but one that cannot overflow where x and the
    mean lie more than float64's range apart."""
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    return (x * 0.5 - mean * 0.5) / (std * 0.5)


def to_layout(x: torch.Tensor | np.ndarray, layout: str) -> np.ndarray:
    """Model-space samples (N, C, H, W) or (N, D) as an array in the user's layout (float32, or
    float64 where it is given float64: a table back in its own units)."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    x = x if x.dtype == np.float64 else x.astype(np.float32, copy=False)
    if layout == GRAY:
        return x[:, 0]
    if layout == CHANNEL_LAST:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x


def from_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """The inverse of :func:`to_layout` for images: (N, H, W) or (N, H, W, C) -> (N, C, H, W)."""
    if layout == GRAY:
        return x[:, None]
    if layout == CHANNEL_LAST:
        return x.transpose(0, 3, 1, 2)
    return x


def layout_of(shape: tuple[int, ...], dtype, name: str) -> str:
    """The layout of data of this (N, ...) shape and dtype, or a clear error.

    Accepted: (N, D) tabular, (N, H, W) grayscale, (N, H, W, C) with C in {1, 3}; numbers only.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "O" or not (np.issubdtype(dtype, np.number) or dtype.kind == "b"):
        raise VaekitError(f"{name}: data must be numeric, got dtype {dtype}; convert it to numbers first")
    if np.issubdtype(dtype, np.complexfloating):  # casting would silently drop the imaginary part
        raise VaekitError(f"{name}: complex numbers ({dtype}) are not supported; save the real and imaginary "
                          "parts (or the magnitude) as real features")
    if len(shape) == 0 or shape[0] == 0 or 0 in shape:
        raise VaekitError(f"{name}: the dataset is empty; give a file with at least one sample")
    if len(shape) == 2:
        return TABULAR
    if len(shape) == 3:
        return GRAY
    if len(shape) == 4 and shape[-1] in (1, 3):
        return CHANNEL_LAST
    if len(shape) == 4:
        hint = " (it looks channel-first: transpose it to (N, H, W, C))" if shape[1] in (1, 3) else ""
        raise VaekitError(f"{name}: images of shape {tuple(shape[1:])} are not channel-last with 1 or 3 "
                          f"channels{hint}")
    raise VaekitError(f"{name}: expected (N, D), (N, H, W) or (N, H, W, C) data, got shape {tuple(shape)}")


def model_rows(x: np.ndarray, layout: str, name: str, first_row: int = 0) -> np.ndarray:
    """Rows in the user's layout as a contiguous array in the model's: uint8 stays uint8, other
    numbers become float32, checked to be finite (``first_row`` numbers the rows in errors).

    A table of numbers wider than float32 (float64, int32, int64: every CSV) stays float64, and
    is standardised in float64 before the cast: a column of 1e12 plus noise of 1e3 keeps its
    noise, values near float32's limit keep a finite spread.
    Images of wider unsigned integers (16-bit PNGs and TIFFs) are scaled by their type's
    maximum to [0, 1], as uint8 images are by 255 (scikit-image's ``img_as_float`` rule);
    images of signed integers are 0/1 images (int64 is NumPy's default) or refused, their scale
    unknown (0-255 or 0-65535?): a chunk holding only 0s and 1s reads them as 0 and 1, and the
    first chunk past 1 stops the read. A table's NaN are missing cells (not an error); infinities are.
    """
    if layout != TABULAR and x.dtype.kind == "u" and x.dtype != np.uint8:
        return model_rows(x.astype(np.float64) / np.iinfo(x.dtype).max, layout, name, first_row)
    if layout != TABULAR and x.dtype.kind == "i" and x.size and (x.min() < 0 or x.max() > 1):
        raise VaekitError(f"{name}: images stored as {x.dtype} (signed integers) holding values up to {x.max()} "
                          "have no known brightness scale; store 0-255 images as uint8 (x.astype(np.uint8)), "
                          "others as floats in [0, 1]")
    if x.dtype != np.uint8:
        wide = layout == TABULAR and not np.can_cast(x.dtype, np.float32)  # float64, int32, int64
        with np.errstate(over="ignore"):  # values beyond float32 become inf, reported below
            x = x.astype(np.float64 if wide else np.float32)
        if layout == TABULAR:  # a table's empty cells (NaN) are missing values: models leave them out
            _check_table(x, name, first_row)
        elif not (finite := np.isfinite(x)).all():
            bad = np.argwhere(~finite)[0]
            raise VaekitError(f"{name}: {int((~finite).sum())} NaN or infinite values (first in sample "
                              f"{first_row + bad[0]}, or too large for float32); remove, impute or rescale them")
    x = np.ascontiguousarray(from_layout(x, layout))
    if not x.flags.writeable:  # e.g. np.frombuffer over file bytes; torch wants to own writable memory
        x = x.copy()
    return x


def _check_table(x: np.ndarray, name: str, first_row: int) -> None:
    """A table may miss cells (NaN), even every cell of a row, but not hold infinities."""
    infinite = np.isinf(x)
    if infinite.any():
        bad = np.argwhere(infinite)[0]
        raise VaekitError(f"{name}: {int(infinite.sum())} infinite values (first in sample {first_row + bad[0]}); "
                          "remove or rescale them (empty cells and NaN are taken as missing)")


def as_labels(y, n: int, name: str) -> torch.Tensor:
    """Class indices (n,) as int64, or a clear error."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise VaekitError(f"{name}: {y.shape[0] if y.ndim else 0} labels for {n} samples; "
                          "give one label per sample")
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        raise VaekitError(f"{name}: labels must be whole numbers (class indices)")
    return torch.from_numpy(y.astype(np.int64))


def table_dataset(names, columns, y=None, *, name: str, schema: Schema | None = None, column_types=None,
                  class_names=None) -> Dataset:
    """A table given as raw columns (text, numbers, bools, with missing cells) as a
    :class:`Dataset` of model columns: encoded with ``schema``, or one inferred from the columns
    (and ``column_types``); a table of numbers alone keeps no schema."""
    if schema is None:
        schema = Schema.infer(names, columns, column_types, name)
    x = schema.encode(names, columns, name)
    if not len(x):
        raise VaekitError(f"{name}: the dataset is empty; give a file with at least one sample")
    data = from_arrays(x, y, name=name, columns=schema.model_names(), class_names=class_names)
    if schema.plain:
        return data
    return replace(data, schema=schema, given=tuple(raw_values(c) for c in columns))


def from_arrays(x, y=None, *, name: str, columns=None, class_names=None) -> Dataset:
    """Validate user arrays and turn them into a :class:`Dataset`.

    Accepted layouts: (N, D) tabular, (N, H, W) grayscale, (N, H, W, C) with C in {1, 3}.
    """
    x = np.asarray(x)
    layout = layout_of(x.shape, x.dtype, name)
    xt = torch.from_numpy(model_rows(x, layout, name))
    yt = None if y is None else as_labels(y, x.shape[0], name)
    return Dataset(x=xt, y=yt, layout=layout, name=name,
                   columns=tuple(columns) if columns is not None else None, class_names=class_names)
