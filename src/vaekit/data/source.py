"""Where samples come from: a data file read a few rows at a time, never all of it at once.

A :class:`Source` knows the size, layout and labels of its data up front and reads any
rows on demand, in the model's layout (uint8 images stay uint8, everything else becomes
float32). ``load()`` reads it all into a :class:`~vaekit.data.Dataset` (the fast path for
data that fits in memory); :class:`~vaekit.data.LazyDataset` reads it a chunk at a time.

Sources are picklable and hold no open file, so DataLoader worker processes can read them.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import VaekitError
from .dataset import Dataset, from_arrays, layout_of, model_rows

BLOCK_BYTES = 1 << 20  # rows read together when streaming: large enough for fast sequential reads


class Source:
    """Rows of one data spec. Subclasses set the attributes and implement ``take``."""

    name: str
    layout: str
    sample_shape: tuple[int, ...]  # one sample in the model's layout: (D,) or (C, H, W)
    dtype: np.dtype                # of the rows ``take`` returns: uint8, float32, or float64 (a table wider)
    labels: np.ndarray | None      # int64 (N,), small enough to keep in memory
    columns: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None  # labels given as names: ``labels`` index these
    schema = None  # a table with binary or categorical columns: how its rows encode them (vaekit.data.schema)
    parallel_reads: int = 1  # DataLoader workers that pay off when streaming it (more where decoding is the work)

    def __len__(self) -> int:
        raise NotImplementedError

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The samples at ``rows`` (ascending source row numbers), (len(rows), *sample_shape)."""
        raise NotImplementedError

    def given(self, rows: np.ndarray) -> tuple | None:
        """A table's columns at ``rows`` as they were read (binary and categorical columns' text
        kept as written; None where there are none)."""
        return None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop`` (exclusive)."""
        return self.take(np.arange(start, min(stop, len(self))))

    @property
    def row_bytes(self) -> int:
        return math.prod(self.sample_shape) * np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        """Memory the whole data takes once loaded."""
        return len(self) * self.row_bytes

    def block_bounds(self) -> np.ndarray:
        """Row numbers [0, ..., N] that cut the data into blocks that are cheap to read whole."""
        per_block = max(1, BLOCK_BYTES // max(1, self.row_bytes))
        return np.unique(np.r_[np.arange(0, len(self), per_block), len(self)])

    def load(self) -> Dataset:
        """All rows in memory."""
        x = self.read(0, len(self))
        import torch

        return Dataset(x=torch.from_numpy(x), y=None if self.labels is None else torch.from_numpy(self.labels),
                       layout=self.layout, name=self.name, columns=self.columns, class_names=self.class_names,
                       schema=self.schema)


class MemorySource(Source):
    """A dataset already in memory (bundled sets, .npz, .csv, IDX files, arrays)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.name, self.layout, self.columns = dataset.name, dataset.layout, dataset.columns
        self.sample_shape = dataset.sample_shape
        self.dtype = np.dtype(str(dataset.x.dtype).removeprefix("torch."))
        self.labels = None if dataset.y is None else dataset.y.numpy()
        self.class_names, self.schema = dataset.class_names, dataset.schema

    def __len__(self) -> int:
        return len(self.dataset)

    def take(self, rows: np.ndarray) -> np.ndarray:
        import torch

        return self.dataset.x.index_select(0, torch.as_tensor(rows, dtype=torch.long)).numpy()

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.dataset.x[start:stop].numpy()

    def given(self, rows: np.ndarray) -> tuple | None:
        given = self.dataset.given
        return None if given is None else tuple(c[np.asarray(rows)] for c in given)

    def load(self) -> Dataset:
        return self.dataset


class NpySource(Source):
    """A ``.npy`` file, memory-mapped a read at a time.

    Each read maps the file, copies the rows out and unmaps it again, so the pages it
    touched leave this process (a mapping kept open would count every page ever read
    towards the process's memory until the whole file was resident).
    """

    def __init__(self, path):
        self.path = path
        self.name = str(path)
        a = self._map()
        self.layout = layout_of(a.shape, a.dtype, self.name)
        first = model_rows(np.zeros((1, *a.shape[1:]), a.dtype), self.layout, self.name)
        self.dtype, self.sample_shape = first.dtype, first.shape[1:]
        self.n = a.shape[0]
        self.labels = None

    def _map(self) -> np.ndarray:
        try:
            return np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:  # object arrays need pickle, which we never load
            raise VaekitError(f"{self.path}: cannot read it as a numeric .npy array ({e}); save it with np.save "
                              "from a numeric array") from None
        except (OSError, EOFError) as e:
            raise VaekitError(f"{self.path}: not a readable .npy file ({e or 'the file is empty'})") from None

    def __len__(self) -> int:
        return self.n

    def take(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        return model_rows(self._map()[rows], self.layout, self.name, int(rows[0]) if len(rows) else 0)

    def read(self, start: int, stop: int) -> np.ndarray:
        return model_rows(np.array(self._map()[start:stop]), self.layout, self.name, start)

    def load(self) -> Dataset:
        try:
            x = np.load(self.path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise VaekitError(f"{self.path}: not a readable .npy file ({e})") from None
        return from_arrays(x, name=self.name)
