"""Data specs -> datasets, in memory or read on demand.

A spec is a bundled name (``mnist-5k``, ``digits``), a downloadable name (``mnist``,
``fashion-mnist``, ``kmnist``, ``cifar10``; add ``:test`` for the test split), or a path:
an IDX folder, an image folder, ``.npy``, ``.npz``, ``.csv``, or a Parquet file or folder.

``open_source`` resolves a spec without reading its samples (a ``.npy`` is memory-mapped,
an image folder only has its headers read, a Parquet table only its metadata);
``load_dataset`` reads everything into memory; ``open_dataset`` does whichever the memory
budget allows.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import VaekitError, option
from .bundled import BUNDLED, DOWNLOADS, load_cifar10, load_digits, load_idx_download, load_mnist_5k
from .dataset import Dataset, from_arrays, table_dataset
from .files import load_csv, load_npz
from .idx import idx_pairs, load_idx_folder
from .images import ImageFolderSource, is_image_folder
from .lazy import LazyDataset
from .parquet import ParquetSource, is_parquet_folder
from .schema import Schema, array_columns, frame_columns, is_frame, needs_schema
from .source import MemorySource, NpySource, Source

__all__ = ["Dataset", "LazyDataset", "Schema", "Source", "absolute_spec", "as_dataset", "check_resizable",
           "from_arrays", "load_dataset", "open_dataset", "open_lazy", "open_source", "parse_image_size", "parse_size",
           "default_memory_budget", "shard"]

PARTS = ("train", "test")


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """'28' or '32x48' (H x W) -> (H, W)."""
    if text is None:
        return None
    try:
        parts = [int(p) for p in str(text).lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise VaekitError(f"{option('image_size')} must look like 28 or 32x48 (height x width), got {text!r}")
    return parts[0], parts[1]


def _split_part(spec: str) -> tuple[str, str | None]:
    base, sep, part = spec.rpartition(":")
    if sep and part in PARTS and base:
        return base, part
    return spec, None


def absolute_spec(spec: str) -> str:
    """``spec`` with its path made absolute (a dataset name stays as it is), so that a run
    folder finds its data from any working directory."""
    spec = str(spec)
    base, part = (spec, None) if Path(spec).expanduser().exists() else _split_part(spec)
    path = Path(base).expanduser()
    if not path.exists():
        return spec
    return str(path.resolve()) + (f":{part}" if part else "")


def check_resizable(spec: str, image_size) -> None:
    """``image_size`` resizes the images of a folder; anything else would ignore it."""
    path = Path(str(spec)).expanduser()
    if image_size is not None and not (path.is_dir() and is_image_folder(path)):
        raise VaekitError(f"{option('image_size')} resizes the images of an image folder, and {spec} is not one; "
                          "leave it out, or resize the arrays before training")


def open_source(spec: str, image_size: tuple[int, int] | None = None, schema=None, column_types=None) -> Source:
    """Resolve a data spec (see the module docstring) into a :class:`Source`, reading no samples
    where the format allows it. A table's columns are read with ``schema`` (a run's
    :class:`~vaekit.data.schema.Schema`), or one inferred with ``column_types``."""
    spec = str(spec)
    path = Path(spec).expanduser()
    part = None
    if not path.exists():
        base, part = _split_part(spec)
        if base in BUNDLED and part is None:
            return MemorySource(load_mnist_5k() if base == "mnist-5k" else load_digits())
        if base in DOWNLOADS:
            return MemorySource(load_cifar10(part or "train") if base == "cifar10" else
                                load_idx_download(base, part or "train"))
        path = Path(base).expanduser()
        if not path.exists():
            if "/" in spec or "\\" in spec or path.suffix:
                raise VaekitError(f"{spec}: no such file or folder; check the path")
            raise VaekitError(
                f"unknown dataset {spec!r}; use one of {', '.join(BUNDLED + DOWNLOADS)} or a path to an "
                "IDX folder, image folder, .npy, .npz, .csv or Parquet file")
    try:
        if path.is_dir():
            if idx_pairs(path):
                return MemorySource(load_idx_folder(path, part))
            if is_image_folder(path):
                return ImageFolderSource(path, image_size)
            if is_parquet_folder(path):
                return ParquetSource(path, schema, column_types)
            raise VaekitError(f"{path}: the folder holds no IDX files, no PNG/JPEG images and no Parquet files")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return NpySource(path)
        if suffix == ".parquet":
            return ParquetSource(path, schema, column_types)
        if suffix == ".csv":
            return MemorySource(load_csv(path, schema, column_types))
        if suffix != ".npz":
            raise VaekitError(f"{path}: unsupported file type {path.suffix!r}; use .npy, .npz, .csv, .parquet, "
                              "an IDX folder or an image folder")
        return MemorySource(load_npz(path))
    except PermissionError:
        raise VaekitError(f"{path}: permission denied; make the file readable") from None


def open_lazy(spec: str, image_size: tuple[int, int] | None = None, schema=None) -> LazyDataset:
    """The data of a spec, read a chunk at a time as it is used."""
    return LazyDataset(open_source(spec, image_size, schema))


def load_dataset(spec: str, image_size: tuple[int, int] | None = None, schema=None, column_types=None) -> Dataset:
    """Resolve a data spec (see the module docstring) into an in-memory :class:`Dataset`."""
    return open_source(spec, image_size, schema, column_types).load()


def parse_size(text) -> int:
    """'512M', '2G', '1.5GB' or a number of bytes -> bytes."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    raw = str(text).strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "")
    try:
        value = float(number) * units[unit]
    except ValueError:
        value = -1.0
    if not value > 0 or not math.isfinite(value):
        raise VaekitError(f"{option('memory_budget')} must be a size such as 512M or 2G, got {text!r}")
    return int(value)


def default_memory_budget(processes: int = 1) -> int:
    """A quarter of the memory available now, shared by this machine's ``processes``."""
    import psutil

    return psutil.virtual_memory().available // 4 // max(1, processes)


def format_size(n: int) -> str:
    for unit, size in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n}B"


def open_dataset(spec, image_size: tuple[int, int] | None, budget: int,
                 column_types=None) -> tuple[Dataset | LazyDataset, str]:
    """The data of ``spec`` in memory if it fits ``budget`` bytes, else read on demand; and why."""
    source = open_source(spec, image_size, column_types=column_types)
    size, limit = format_size(source.nbytes), format_size(budget)
    if isinstance(source, MemorySource) or source.nbytes <= budget:
        return source.load(), f"in memory: {size} of data within the {limit} memory budget"
    return LazyDataset(source), f"streamed: {size} of data exceeds the {limit} memory budget"


def shard(data, world):
    """``world``'s rank's contiguous share of ``data`` (all of it in a single process)."""
    if world.size == 1:
        return data
    rows = world.part(len(data))
    return data.subset(torch.arange(rows.start, rows.stop))


def as_dataset(data, image_size: tuple[int, int] | None = None, name: str = "array", schema=None,
               column_types=None) -> Dataset:
    """A spec (str or Path), a :class:`Dataset`, a DataFrame, or an array / tensor in a data
    layout -> Dataset. A table with text, category or bool columns (a DataFrame, a 2-D array of
    objects) is read with ``schema``, or one inferred with ``column_types``."""
    if isinstance(data, (Dataset, LazyDataset)):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_dataset(str(data), image_size, schema, column_types)
    if hasattr(data, "detach"):  # a torch tensor
        data = data.detach().cpu().numpy()
    if is_frame(data):
        return table_dataset(*frame_columns(data), name=name, schema=schema, column_types=column_types)
    if schema is not None or column_types or needs_schema(data):
        x = np.asarray(data)
        if x.ndim == 2:
            return table_dataset(*array_columns(x), name=name, schema=schema, column_types=column_types)
    return from_arrays(data, name=name)
