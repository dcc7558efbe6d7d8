"""What the explorer page (``vaekit serve``'s ``/``) needs to know of a run's latent space.

The page builds every code it decodes as ``origin + values @ directions``:

- **Sliders** move a code along axes: the latent dimensions themselves when there are at
  most :data:`MAX_SLIDERS`, else the leading principal directions of the data's codes
  (where the codes actually vary). Each reaches :data:`SPAN` standard deviations of the
  codes either side of their mean.
- **The map** shows the codes of up to :data:`MAP_POINTS` samples in two dimensions: the
  code itself when it has one or two dimensions, else its first two principal components.
  A click on it decodes the code at that point of the plane.
- **Examples**, a few of the samples in the data's own layout, to pick interpolation ends from.
- **Class names** where the data names its classes (an image folder's subfolders, a CSV's
  label text): the legend and the examples show the served data's names, the class picker
  the names of the data the model was trained on (they differ when ``--data`` has other classes).

Codes are posterior means (``model.codes``), as ``vaekit latent`` plots them. Without data
to read (a run trained on an in-memory array, a moved file), a model with a prior still
gets sliders over its first dimensions, spanning the prior; the map says why it is missing.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import VaekitError, option, render
from .plots import principal_axes
from .report import MAX_POINTS as MAP_POINTS  # the report's latent map draws as many, the same ones
from .run import ARRAY_SPEC

MAX_SLIDERS = 16   # latent dimensions shown one slider each; past this, principal directions
EXAMPLES = 16      # samples offered as interpolation ends
SPAN = 3.0         # a slider reaches this many standard deviations either side of the mean


def latent_space(run, data=None, max_points: int = MAP_POINTS) -> dict:
    """Sliders, map and examples for ``run`` over ``data``: a spec or array, which must fit the
    model (else a :class:`VaekitError` says why), or by default all of the run's own data,
    its training and validation samples alike, which may be gone (then the page goes on
    without a map, and says why)."""
    if data is not None:
        return _from_data(run, data, max_points)
    if run.config.data.spec == ARRAY_SPEC:
        return _without_data(run, "the run was trained on an in-memory array, which its folder does not hold")
    try:
        return _from_data(run, run.config.data.spec, max_points)
    except VaekitError as e:
        return _without_data(run, e.for_command_line())
    except OSError as e:
        return _without_data(run, str(e))


def _from_data(run, data, max_points: int) -> dict:
    ds = run.dataset(data, lazy=run.config.data.storage == "stream")  # large data is read in part
    if len(ds) < 2:
        raise VaekitError(f"{ds.name} holds {len(ds)} sample(s); the explorer needs at least 2 to map")
    index = torch.linspace(0, len(ds) - 1, min(len(ds), max_points)).long()  # evenly spread, as the report's
    x = ds.batch(index)
    y = ds.labels(index, run.model)  # a conditional model's encoder takes the class too
    with torch.no_grad():
        codes = run.model.codes(x.to(run.device), None if y is None else y.to(run.device))
    codes = codes.cpu().numpy().astype(np.float64)
    shown = ds.label_rows(index)
    whole = np.flatnonzero(~torch.isnan(x.flatten(1)).any(1).numpy())  # rows with no missing cell
    if len(whole) >= min(EXAMPLES, len(index)):  # (the examples go to /reconstruct, which takes finite rows)
        picks = whole[np.linspace(0, len(whole) - 1, min(EXAMPLES, len(whole))).round().astype(int)]
    else:
        picks = np.linspace(0, len(index) - 1, min(EXAMPLES, len(index))).round().astype(int)
        x = torch.where(torch.isnan(x), torch.zeros(()), x)  # a gap as the column's mean (0, standardised)
    return {
        "data": ds.name,
        "class_names": None if ds.class_names is None else list(ds.class_names),  # what this data's labels index
        "model_classes": run.config.data.class_names,  # what a cvae's classes are: its training data's names
        "sliders": _sliders(codes),
        "map": _map(codes, None if shown is None else shown.numpy()),
        "examples": {
            "inputs": _inputs(run, x[picks]),
            "labels": None if shown is None else shown.numpy()[picks].tolist(),
        },
    }


def _inputs(run, x: torch.Tensor) -> list:
    """Example rows as the page sends them back: a table with text columns in its own cells, other
    data in its layout, unrounded (a table's columns may be tiny)."""
    rows = run.to_data_units(x)
    if run.config.data.table_schema() is None:
        return rows.astype(np.float32).tolist()
    from .serve import table_cells

    return table_cells(run.as_table(rows))


def _without_data(run, reason: str) -> dict:
    # said to whoever started `vaekit serve`, so options are named as its flags
    note = render(f"no data to map ({reason}); start vaekit serve with {option('data')} to choose some",
                  command_line=True)
    space = {"data": None, "class_names": None, "model_classes": run.config.data.class_names, "sliders": None,
             "map": None, "examples": None, "note": note}
    if not run.model.generative:
        return space
    d = run.model.latent_dim
    shown = min(d, MAX_SLIDERS)
    space["sliders"] = {"origin": [0.0] * d, "directions": np.eye(shown, d).tolist(), "start": [0.0] * shown,
                        "low": [-SPAN] * shown, "high": [SPAN] * shown, "names": [f"z{j + 1}" for j in range(shown)],
                        "basis": "prior"}
    return space


def _sliders(codes: np.ndarray) -> dict:
    d = codes.shape[1]
    if d <= MAX_SLIDERS:  # one slider per dimension, from its own mean and spread
        mean, sd = codes.mean(0), codes.std(0)
        sd = np.maximum(sd, max(sd.max(), 1e-3) * 0.05)  # a collapsed dimension still gets a usable range
        return {"origin": [0.0] * d, "directions": np.eye(d).tolist(), "start": mean.tolist(),
                "low": (mean - SPAN * sd).tolist(), "high": (mean + SPAN * sd).tolist(),
                "names": [f"z{j + 1}" for j in range(d)], "basis": "dimensions"}
    mean, vt, sd = principal_axes(codes)
    k = max(1, min(MAX_SLIDERS, int((sd > 1e-6 * sd[0]).sum())))  # directions the codes do vary along
    sd = np.maximum(sd[:k], 1e-6)
    share = sd ** 2 / max(float((codes.var(0, ddof=1)).sum()), 1e-12)
    return {"origin": mean.tolist(), "directions": vt[:k].tolist(), "start": [0.0] * k,
            "low": (-SPAN * sd).tolist(), "high": (SPAN * sd).tolist(),
            "names": [f"PC{j + 1} ({100 * share[j]:.0f}%)" for j in range(k)], "basis": "principal"}


def _map(codes: np.ndarray, labels: np.ndarray | None) -> dict:
    d = codes.shape[1]
    if d <= 2:  # the code itself (a 1-D code on a line)
        origin, axes = np.zeros(d), np.eye(2, d)
        names = ["z1", "z2"] if d == 2 else ["z1", ""]
    else:
        origin, vt, _ = principal_axes(codes)
        axes = vt[:2] if len(vt) >= 2 else np.eye(2, d)
        names = ["PC1", "PC2"]
    points = (codes - origin) @ axes.T
    return {"points": np.round(points, 4).tolist(), "labels": None if labels is None else labels.tolist(),
            "origin": origin.tolist(), "axes": axes.tolist(), "names": names}
