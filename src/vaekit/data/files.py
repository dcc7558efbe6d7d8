"""Loaders for a user's own array files read whole: .npz and .csv (.npy: see source.py)."""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from ..errors import VaekitError
from .dataset import Dataset, from_arrays, table_dataset
from .schema import Schema

LABEL_COLUMNS = ("label", "y")


def load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            key = next((k for k in ("X", "x") if k in keys), None)
            if key is None:
                raise VaekitError(f"{path}: no array named 'X' (found {', '.join(keys) or 'none'}); "
                                  "save the data with np.savez(path, X=data, y=labels)")
            x = archive[key]
            y = archive["y"] if "y" in keys else None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        if isinstance(e, VaekitError):
            raise
        raise VaekitError(f"{path}: not a readable .npz archive ({e})") from None
    return from_arrays(x, y, name=str(path))


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def load_csv(path: Path, schema: Schema | None = None, column_types=None) -> Dataset:
    """Columns of numbers, text and yes/no values become features (see :mod:`vaekit.data.schema`;
    ``schema``: the run's, which a later file is read with); empty cells and ``NA`` are missing; a
    column named ``label`` or ``y`` holds the labels."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM is not part of the first name
            rows = [r for r in csv.reader(f) if r]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise VaekitError(f"{path}: cannot read it as a text CSV file ({e})") from None
    if not rows:
        raise VaekitError(f"{path}: the file is empty; give a CSV with one row per sample")
    has_header = not all(_is_number(v) for v in rows[0])
    header = [h.strip() for h in rows[0]] if has_header else [f"x{i}" for i in range(len(rows[0]))]
    body = rows[1:] if has_header else rows
    if not body:
        raise VaekitError(f"{path}: the dataset is empty (a header but no rows)")
    for line, r in enumerate(body, start=2 if has_header else 1):
        if len(r) != len(header):
            raise VaekitError(f"{path}: line {line} has {len(r)} fields, expected {len(header)}")
    columns = [np.array(c, dtype=object) for c in zip(*body)]

    label_at = [i for i, h in enumerate(header) if h.lower() in LABEL_COLUMNS]
    if len(label_at) > 1:
        raise VaekitError(f"{path}: columns {' and '.join(repr(header[i]) for i in label_at)} are both label "
                          "columns; keep one (or rename the other if it is a feature)")
    label_at = label_at[0] if label_at else None
    y, class_names = None, None
    if label_at is not None:
        raw = [v.strip() for v in columns[label_at]]
        if all(_is_number(v) for v in raw):
            y = np.array(raw, dtype=np.float64)
        else:  # class names: index them in sorted order
            class_names = tuple(sorted(set(raw)))
            index = {v: i for i, v in enumerate(class_names)}
            y = np.array([index[v] for v in raw])
    names = [h for i, h in enumerate(header) if i != label_at]
    features = [c for i, c in enumerate(columns) if i != label_at]
    if not features:
        raise VaekitError(f"{path}: no feature columns besides the label")
    return table_dataset(names, features, y, name=str(path), schema=schema, column_types=column_types,
                         class_names=class_names)
