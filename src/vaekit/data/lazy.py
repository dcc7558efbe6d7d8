"""Data larger than memory: a view of a :class:`~vaekit.data.source.Source` read a chunk at a time.

:class:`LazyDataset` answers the same questions as the in-memory
:class:`~vaekit.data.Dataset` (``batch``, ``subset``, ``split``, ``standardized`` ...), so
evaluation, scoring and the report work on either; only the rows asked for are read.

Training streams it in *windows*: each epoch shuffles the data's blocks (runs of rows that
are cheap to read together: a row group, a megabyte of an array, a few dozen image files),
cuts the shuffled order into windows that fit the memory budget, and shuffles the rows
within each window. DataLoader workers read the next windows while the model trains on the
current one. Every rank computes the same order; rank r trains on part r of each global
batch, as with the in-memory path, so the same seed gives the same batches at any world size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..errors import VaekitError
from .dataset import Dataset, Samples, moments, standardize, value_range
from .source import Source

CHUNK_BYTES = 32 << 20  # a chunk's stored size at most, so wide rows do not make huge reads


@dataclass(frozen=True)
class Loading:
    """How one rank reads training data: the global batch, the ranks that share it, and for
    streamed data the memory budget (bytes) and the DataLoader workers."""

    batch_size: int
    rank: int = 0
    world_size: int = 1
    budget: int = 1 << 30
    workers: int = 0
    timeout: float = 300.0  # seconds to wait for a worker's next window before giving up


@dataclass
class LazyDataset(Samples):
    """Rows ``rows`` of ``source`` (all for None), in model units: uint8 scaled to [0, 1],
    standardised with ``mean``/``std`` if given, binarised with ``binarize_seed`` if given."""

    source: Source
    rows: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    binarize_seed: int | None = None
    _range: list = field(default_factory=list, repr=False)  # cached (min, max)

    # -- what it is ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.source) if self.rows is None else len(self.rows)

    name = property(lambda self: self.source.name)
    layout = property(lambda self: self.source.layout)
    columns = property(lambda self: self.source.columns)
    sample_shape = property(lambda self: tuple(self.source.sample_shape))
    is_standardized = property(lambda self: self.mean is not None)
    class_names = property(lambda self: self.source.class_names)
    schema = property(lambda self: self.source.schema)

    @property
    def nbytes(self) -> int:
        return len(self) * self.source.row_bytes

    @property
    def y(self) -> torch.Tensor | None:
        return self.label_rows()

    def given_rows(self, start: int, stop: int) -> tuple | None:
        return self.source.given(self.source_rows(slice(start, stop)))

    def label_rows(self, index=None) -> torch.Tensor | None:
        """Labels at positions ``index`` (all for None), or None for unlabelled data."""
        labels = self.source.labels
        if labels is None:
            return None
        if index is None and self.rows is None:
            return torch.from_numpy(labels)
        return torch.from_numpy(labels[self.source_rows(index)])

    # -- reading -------------------------------------------------------------------------------
    def source_rows(self, index=None) -> np.ndarray:
        """Source row numbers of positions ``index`` (slice, array or tensor; None for all)."""
        n = len(self)
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        if index is None:
            index = slice(0, n)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if self.rows is None and step == 1:
                return np.arange(start, stop)
            return (np.arange(n) if self.rows is None else self.rows)[index]
        index = np.asarray(index, dtype=np.int64)
        return index if self.rows is None else self.rows[index]

    def raw(self, index=None) -> np.ndarray:
        """Samples at positions ``index`` as stored (see :attr:`Source.dtype`), in the order asked for."""
        rows = self.source_rows(index)
        if len(rows) and np.all(np.diff(rows) == 1):  # one run of rows: a plain read
            return self.source.read(int(rows[0]), int(rows[-1]) + 1)
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.sample_shape), self.source.dtype)
        out[order] = self.source.take(rows[order])
        return out

    def prepare(self, x: torch.Tensor, first_row: int = 0) -> torch.Tensor:
        """Stored samples -> float32 model units (on x's device); a table is standardised in
        the float64 it is stored in, then cast."""
        if x.dtype == torch.uint8:
            x = x.float().mul_(1.0 / 255.0)
        if self.mean is not None:
            x = standardize(x.double(), self.mean, self.std)
        x = x.float()
        if self.binarize_seed is not None:  # seeded by position, so a read gives the same draw every time
            g = torch.Generator(device=x.device).manual_seed(self.binarize_seed * 1_000_003 + first_row)
            x = torch.bernoulli(x, generator=g)
        return x

    def batch(self, index=None) -> torch.Tensor:
        """Float32 samples at ``index`` (all of them for None), in model units."""
        first = (index.start or 0) if isinstance(index, slice) else 0
        return self.prepare(torch.from_numpy(self.raw(index)), first)

    def chunk_rows(self, size: int) -> int:
        """Fewer rows per chunk where ``size`` of them would take more than ``CHUNK_BYTES``."""
        return max(1, min(size, CHUNK_BYTES // max(1, self.source.row_bytes)))

    # -- views ---------------------------------------------------------------------------------
    def subset(self, index) -> LazyDataset:
        return replace(self, rows=self.source_rows(index), _range=[])

    def split(self, val_fraction: float, seed: int) -> tuple[LazyDataset, LazyDataset | None]:
        """The same random split as :meth:`Dataset.split` for the same seed and size, with each
        part's rows kept in file order (so that reading them stays sequential)."""
        parts = self.split_indices(val_fraction, seed)
        if parts is None:
            return self, None
        return self.subset(np.sort(parts[0].numpy())), self.subset(np.sort(parts[1].numpy()))

    def standardized(self, mean, std) -> LazyDataset:
        return replace(self, mean=np.asarray(mean, np.float64), std=np.asarray(std, np.float64), _range=[])

    def binarized(self, seed: int) -> LazyDataset:
        self.check_binarizable()
        return replace(self, binarize_seed=seed, _range=[])

    def to(self, device) -> LazyDataset:
        return self  # read on demand; batches move to the device

    resident = to

    def load(self) -> Dataset:
        """Every row in memory (what the fast path trains on), transforms applied."""
        x = self.batch() if (self.mean is not None or self.binarize_seed is not None) else \
            torch.from_numpy(self.raw())
        return Dataset(x=x, y=self.y, layout=self.layout, name=self.name, columns=self.columns,
                       is_standardized=self.is_standardized, class_names=self.class_names)

    # -- statistics, in one pass -------------------------------------------------------------------
    def value_range(self) -> tuple[float, float]:
        if self.source.dtype == np.uint8 and self.mean is None:
            return 0.0, 1.0
        if not self._range:
            lo, hi = math.inf, -math.inf
            for _, x in self.chunks(values=True):
                low, high = value_range(x)
                lo, hi = min(lo, low), max(hi, high)
            self._range.extend([lo, hi])
        return self._range[0], self._range[1]

    def feature_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature mean and standard deviation, as :meth:`Dataset.feature_stats` gives them,
        combined chunk by chunk in float64 (Chan et al.'s parallel update)."""
        total = None
        for _, x in self.chunks(values=True):
            part = moments(x.double())
            total = part if total is None else total + part
        return total.stats()

    def values(self, index=None) -> torch.Tensor:
        if self.mean is not None or self.binarize_seed is not None or self.source.dtype != np.float64:
            return self.batch(index)
        return torch.from_numpy(self.raw(index))

    # -- training ------------------------------------------------------------------------------------
    def epoch_order(self, generator: torch.Generator, loading: Loading) -> torch.Tensor:
        """This epoch's order of positions: blocks shuffled, then rows shuffled within each
        window. Depends only on the generator's state, the data and the window size."""
        window = self.window_rows(loading)
        bounds = self.source.block_bounds()
        if self.rows is not None:
            bounds = np.unique(np.r_[0, np.searchsorted(self.rows, bounds), len(self)])
        starts, lengths = bounds[:-1], np.diff(bounds)
        perm = torch.randperm(len(starts), generator=generator).numpy()
        starts, lengths = starts[perm], lengths[perm]
        # position i of the order is start of its block + offset within the block
        order = np.arange(len(self)) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        order = torch.from_numpy(order)
        for w in range(0, len(order), window):
            part = order[w:w + window]
            order[w:w + window] = part[torch.randperm(len(part), generator=generator)]
        return order

    def window_rows(self, loading: Loading) -> int:
        """Positions per window: a multiple of the global batch whose share on one rank fits the
        memory budget, with room for the windows the loader's workers read ahead."""
        in_flight = 2 + 3 * loading.workers  # the one in use, each worker's next, its two prefetched, a copy
        rows = loading.budget // in_flight // max(1, self.source.row_bytes) * loading.world_size
        return max(1, rows // loading.batch_size) * loading.batch_size

    def local_batches(self, order: torch.Tensor, loading: Loading, device, with_labels: bool = False):
        """This rank's part of each global batch of ``order``: (samples on device, labels or
        None, global batch size). Windows are read by ``loading.workers`` DataLoader processes."""
        from torch.utils.data import DataLoader

        reader = WindowReader(self, order.numpy(), loading, self.window_rows(loading), with_labels)
        workers = loading.workers
        loader = DataLoader(reader, batch_size=None, num_workers=workers, prefetch_factor=2 if workers else None,
                            timeout=loading.timeout if workers else 0)
        it = iter(loader)
        try:
            while True:
                try:
                    item = next(it)  # a dead worker raises here (or anywhere): see loader_errors
                except StopIteration:
                    return
                except (ConnectionError, EOFError) as e:  # a worker died while handing over its window
                    raise RuntimeError(f"DataLoader worker lost ({type(e).__name__}: {e})") from None
                if isinstance(item, str):
                    raise VaekitError(item)
                x, y, sizes = item
                offset = 0
                for m, n in sizes.tolist():
                    part = x[offset:offset + m].to(device, non_blocking=True)
                    yield self.prepare(part), (None if y is None else y[offset:offset + m].to(device)), n
                    offset += m
        finally:
            # Stop the workers now. Dropping the iterator is not enough when an exception is on its
            # way out: its traceback holds the iterator, whose SIGCHLD handler would then raise
            # again, anywhere, for a worker that is already reported.
            shutdown = getattr(it, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            del it


class loader_errors:
    """Turns a DataLoader's failure (a worker killed, dead or silent past the timeout) into one
    clear error. The DataLoader may raise it anywhere in the training step: it learns of a
    dead worker by a signal."""

    def __init__(self, hint: str = ""):
        self.hint = hint

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        text = str(error) if error is not None else ""
        if kind is not None and issubclass(kind, RuntimeError) and "DataLoader" in text:
            raise VaekitError(f"a data-loading worker stopped ({text.splitlines()[0].rstrip('.')}){self.hint}; "
                              "if it ran out of memory, use fewer --workers or a smaller --memory-budget") from None
        return False


def global_batches(order, loading: Loading):
    """(this rank's positions, global batch size) for each global batch of ``order``.

    A global batch is split into ``world_size`` near-equal parts (the first ones one larger);
    one smaller than the world (the last of an epoch, rarely) is skipped by every rank alike.
    """
    batch_size, world_size = loading.batch_size, loading.world_size
    for start in range(0, len(order), batch_size):
        part = order[start:start + batch_size]
        if world_size > 1:
            if len(part) < world_size:
                continue
            part = part.tensor_split(world_size)[loading.rank] if isinstance(part, torch.Tensor) else \
                np.array_split(part, world_size)[loading.rank]
        yield part, min(batch_size, len(order) - start)


class WindowReader(torch.utils.data.IterableDataset):
    """One item per window of the epoch's order: this rank's rows of it as stored, their labels,
    and the (local, global) size of each batch in it. Worker k reads windows k, k + workers, ...
    which the DataLoader hands out in order."""

    def __init__(self, data: LazyDataset, order: np.ndarray, loading: Loading, window: int, with_labels: bool):
        self.data, self.order, self.loading, self.window, self.with_labels = data, order, loading, window, with_labels

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        first, step = (info.id, info.num_workers) if info is not None else (0, 1)
        for start in range(first * self.window, len(self.order), step * self.window):
            try:
                yield self._read(self.order[start:start + self.window])
            except VaekitError as e:
                yield e.args[0]  # the raw message, so the main process names options for its reader
                return
            except Exception as e:  # the main process raises it as one clear line
                yield f"{self.data.name}: reading failed ({type(e).__name__}: {e})"
                return

    def _read(self, positions: np.ndarray):
        parts, sizes = [], []
        for part, n in global_batches(positions, self.loading):
            parts.append(part)
            sizes.append((len(part), n))
        local = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        x = torch.from_numpy(self.data.raw(local))
        y = self.data.label_rows(local) if self.with_labels else None
        return x, y, torch.tensor(sizes, dtype=torch.long).reshape(-1, 2)
