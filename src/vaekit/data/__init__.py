"""Data specs -> in-memory datasets.

A spec is a bundled name (``mnist-5k``, ``digits``), a downloadable name (``mnist``,
``fashion-mnist``, ``kmnist``, ``cifar10``; add ``:test`` for the test split), or a path:
an IDX folder, an image folder, ``.npy``, ``.npz`` or ``.csv``.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import VaekitError
from .bundled import BUNDLED, DOWNLOADS, load_cifar10, load_digits, load_idx_download, load_mnist_5k
from .dataset import Dataset, from_arrays
from .files import load_csv, load_npy, load_npz
from .idx import idx_pairs, load_idx_folder
from .images import is_image_folder, load_image_folder

__all__ = ["Dataset", "as_dataset", "from_arrays", "load_dataset", "parse_image_size"]

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
        raise VaekitError(f"--image-size must look like 28 or 32x48 (height x width), got {text!r}")
    return parts[0], parts[1]


def _split_part(spec: str) -> tuple[str, str | None]:
    base, sep, part = spec.rpartition(":")
    if sep and part in PARTS and base:
        return base, part
    return spec, None


def load_dataset(spec: str, image_size: tuple[int, int] | None = None) -> Dataset:
    """Resolve a data spec (see the module docstring) into a :class:`Dataset`."""
    spec = str(spec)
    path = Path(spec).expanduser()
    part = None
    if not path.exists():
        base, part = _split_part(spec)
        if base in BUNDLED and part is None:
            return load_mnist_5k() if base == "mnist-5k" else load_digits()
        if base in DOWNLOADS:
            return load_cifar10(part or "train") if base == "cifar10" else load_idx_download(base, part or "train")
        path = Path(base).expanduser()
        if not path.exists():
            if "/" in spec or "\\" in spec or path.suffix:
                raise VaekitError(f"{spec}: no such file or folder; check the path")
            raise VaekitError(
                f"unknown dataset {spec!r}; use one of {', '.join(BUNDLED + DOWNLOADS)} or a path to an "
                "IDX folder, image folder, .npy, .npz or .csv file")

    if path.is_dir():
        if idx_pairs(path):
            return load_idx_folder(path, part)
        if is_image_folder(path):
            return load_image_folder(path, image_size)
        raise VaekitError(f"{path}: the folder holds no IDX files and no PNG/JPEG images")
    loaders = {".npy": load_npy, ".npz": load_npz, ".csv": load_csv}
    loader = loaders.get(path.suffix.lower())
    if loader is None:
        raise VaekitError(f"{path}: unsupported file type {path.suffix!r}; use .npy, .npz, .csv, an IDX "
                          "folder or an image folder")
    try:
        return loader(path)
    except PermissionError:
        raise VaekitError(f"{path}: permission denied; make the file readable") from None


def as_dataset(data, image_size: tuple[int, int] | None = None, name: str = "array") -> Dataset:
    """A spec (str or Path), a :class:`Dataset`, or an array / tensor in a data layout -> Dataset."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_dataset(str(data), image_size)
    if hasattr(data, "detach"):  # a torch tensor
        data = data.detach().cpu().numpy()
    return from_arrays(data, name=name)
