"""Loaders for a user's own array files read whole: .npz and .csv (.npy: see source.py)."""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from ..errors import VaekitError
from .dataset import Dataset, from_arrays

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


def load_csv(path: Path) -> Dataset:
    """Numeric columns become features; a column named ``label`` or ``y`` holds the labels."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM is not part of the first name
            rows = [r for r in csv.reader(f) if r]
    except (OSError, UnicodeDecodeError) as e:
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
    columns = list(zip(*body))

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

    features, names = [], []
    for i, (h, col) in enumerate(zip(header, columns)):
        if i == label_at:
            continue
        try:
            features.append(np.array([float(v) if v.strip() else np.nan for v in col], dtype=np.float64))
        except ValueError:
            bad = next(v for v in col if v.strip() and not _is_number(v))
            raise VaekitError(f"{path}: column {h!r} is not numeric (value {bad!r}); drop or encode it "
                              "as numbers") from None
        names.append(h)
    if not features:
        raise VaekitError(f"{path}: no feature columns besides the label")
    return from_arrays(np.stack(features, axis=1), y, name=str(path), columns=names, class_names=class_names)
