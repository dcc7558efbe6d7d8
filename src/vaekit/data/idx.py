"""MNIST-style IDX files (``*-images-idx3-ubyte[.gz]`` with ``*-labels-idx1-ubyte[.gz]``)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import VaekitError
from .dataset import Dataset, from_arrays

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (gzipped or raw) into an array of its declared shape."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise VaekitError(f"{path}: cannot read the IDX file ({e}); download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise VaekitError(f"{path}: not an IDX file (bad magic number); download it again")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise VaekitError(f"{path}: the file holds {len(data)} bytes but its header says {expected}; "
                          "it is truncated or corrupt, download it again")
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


def idx_pairs(folder: Path) -> dict[str, tuple[Path, Path | None]]:
    """Image files in ``folder`` by their prefix ('train', 't10k', ...), each with its labels file."""
    pairs = {}
    for images in sorted(folder.glob("*-images-idx3-ubyte*")):
        if images.suffix not in ("", ".gz"):
            continue
        prefix = images.name.split("-images-idx3-ubyte")[0]
        labels = next((p for p in sorted(folder.glob(f"{prefix}-labels-idx1-ubyte*"))
                       if p.suffix in ("", ".gz")), None)
        pairs[prefix] = (images, labels)
    return pairs


def load_idx_folder(folder: Path, part: str | None = None) -> Dataset:
    """The training files of an IDX folder if it has them, else its test files.

    ``part`` ('train' or 'test') picks one explicitly.
    """
    pairs = idx_pairs(folder)
    train = [k for k in pairs if "t10k" not in k and "test" not in k]
    test = [k for k in pairs if k not in train]
    if part is None:
        chosen = train or test
    else:
        chosen = train if part == "train" else test
    if not chosen:
        raise VaekitError(f"{folder}: no {part or ''} IDX image files (*-images-idx3-ubyte[.gz]) found")
    images, labels = pairs[chosen[0]]
    x = read_idx(images)
    y = read_idx(labels) if labels is not None else None
    if y is not None and len(y) != len(x):
        raise VaekitError(f"{labels}: {len(y)} labels for {len(x)} images in {images.name}")
    return from_arrays(x, y, name=str(folder))
