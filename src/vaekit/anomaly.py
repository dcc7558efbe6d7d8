"""Anomaly detection with an AE or VAE, as a scikit-learn estimator with PyOD's names.

Fit on (mostly) normal data; ``decision_function`` gives each row a score, higher for
rows the model explains badly. Tabular data is standardised with the training mean and
standard deviation and the networks are sized from the number of features; images
(N, H, W) or (N, H, W, C) are used as they are (uint8 scaled to [0, 1]).
"""
from __future__ import annotations

import copy
import json
import math
import numbers
import re
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from .errors import NotNumericError, TrainingDiverged, VaekitError, VaekitWarning, option
from .runfolder import DETECTOR as DETECTOR_FILE

SCORES = ("auto", "recon", "elbo", "iw")
AUTO_TABULAR_LIKELIHOOD = "gaussian-learned"
# "auto" training settings. Tables: many small steps, batches of 128 at 5e-3, for the fewest
# whole passes that make about one step per training row, but 300 to 500 steps (at most 300
# passes; from 1,000 rows up a 10% validation split picks the best pass and stops early). The
# large steps used before (512 at 2e-2, 100 epochs) left a VAE's fit to the seed: AUROC on
# ADBench's Wilt 0.46 +- 0.11 over seeds. The step budget is the price of fitting about as fast
# as PyOD's AutoEncoder: on the 20 ADBench tables 1,000 steps gained 0.008 AUROC for 1.5x the
# time, almost all of it on one kind of set, many rows of few columns (Wilt); at most 200 epochs
# cost the smallest (glass 0.87 -> 0.83). The AE gained nothing from up to 1,000 steps.
#
# Wide tables (more than WIDE columns: image and text embeddings, many flags) cost a step in
# proportion to their values, not a fixed overhead as narrow ones do, and each row tells more:
# batches of 32, for as many steps as hold 1.5 million values (what 300 steps of 128 rows of a
# 40-column table hold), or 10 passes (as PyOD's AutoEncoder trains), whichever is more, and a
# hidden layer no larger than a 64-column table's (64 x 256 weights a side), but at least 64
# wide. On the 15 MVTec-AD embedding sets (1,000 columns, 100 to 500 rows) the narrow settings
# took 16 times PyOD AE's fit time for AUROC 0.906 (VAE); these take 1.5 times for 0.895, and on
# the same sets cut to their first 128 or 256 columns they gave 0.902 and 0.900 against 0.903
# (bench/anomaly_adbench.py). Intensities (images, wide tables in [0, 1]) keep the classic VAE's
# settings.
AUTO_TRAINING = {"table": {"batch_size": 128, "lr": 5e-3, "epochs": 300, "steps": (300, 500)},
                 "wide table": {"batch_size": 32, "lr": 5e-3, "epochs": 2000, "steps": "values"},
                 "intensities": {"batch_size": 128, "lr": 1e-3, "epochs": 50, "steps": None}}
# A table with more columns than this whose values all lie in [0, 1] is read as flattened
# intensities (an image, a spectrum) rather than as features in their own units; with values
# in other units it is a wide table.
WIDE = 64
WIDE_VALUES, WIDE_PASSES, WIDE_STEPS = 1_500_000, 10, 2000

# What keeps a fit on data nobody cleaned from failing or going blind (bench/anomaly_adbench.py
# with --contaminate 0.05 and --glitches 5:1e4; bench/anomaly_robust.py; tests/test_anomaly_robust.py):
# - Robust units (vaekit.robust.robust_units): a row 10^4 times too large moves a column's mean
#   and standard deviation so far that every other row sits near 0; it does not move the median
#   and the quartiles. Values beyond CLIP units grow only logarithmically (vaekit.robust.soft_clip),
#   so any finite value is a number the network can take; no normal row of the 20 tables comes near.
# - Trimming (vaekit.objectives.within_fence): each step learns from the rows whose loss is within
#   TRIM interquartile ranges above the batch's upper quartile, and batches are of equal size. Glitch
#   rows are far beyond the fence and never learned; on clean tables about 3% of rows are past it at
#   a time. VAE AUROC on the 20 tables (seeds 1-5), with 5% anomalies in training, and on the 15
#   embedding sets, measured before batches were made equal: no trimming 0.823 (a fit failed),
#   0.785 (a fit failed), 0.890; TRIM = 3 (Tukey's "far out"): 0.842, 0.802, 0.889; 5: 0.846, 0.808,
#   0.890. With trimming, robust units against the mean and standard deviation: 0.846 against 0.838,
#   0.808 against 0.797, 0.890 both. Most of the gain is on heavy-tailed sets (Wilt, SpamBase).
# - Adam's rate per fan-in (TrainConfig.lr_fan_in): at 5e-3 the first layer of a 1,000-column
#   table made the loss diverge on 9 of 15 embedding sets; at 5e-3 * sqrt(64 / 1000) it did on none.
# - If training still diverges, it is done again from the start at a quarter of the rate (up to
#   RESTARTS times), with a warning that says so. No fit of the benchmarks needed it.
CLIP = 100.0
TRIM = 5.0
LR_FAN_IN = 64
RESTARTS = 3


def _widths(n_features: int) -> tuple[tuple[int, ...], int]:
    """Hidden widths and code size for tabular data with ``n_features`` columns.

    One hidden layer: on the 20 ADBench sets a second (half as wide) gained nothing (VAE mean
    AUROC over seeds 1-5 0.841 with one, 0.834 with two; better on both halves of the sets;
    the AE within 0.003) and each training step cost a third more (bench/anomaly_adbench.py).
    Four units per column, 32 to 256, and for wide tables no more weights than a 64-column
    table's (at least 64 units: 64 for 256 columns and more).
    """
    hidden = min(256, max(32, 4 * n_features)) if n_features <= WIDE else max(64, 4 * WIDE * WIDE // n_features)
    latent = int(min(32, max(2, round(n_features / 3))))
    return (int(hidden),), latent


def wide_steps(rows: int, columns: int, batch_size: int) -> tuple[int, int]:
    """Steps for a wide table: as many batches as hold 1.5 million values, or 10 passes over the
    rows, whichever is more; at most 2,000 (both ends of the range :func:`auto_epochs` takes)."""
    steps = min(WIDE_STEPS, max(math.ceil(WIDE_VALUES / (batch_size * columns)),
                                WIDE_PASSES * math.ceil(rows / batch_size)))
    return steps, steps


def auto_epochs(rows: int, batch_size: int, steps: tuple[int, int], most: int) -> int:
    """The fewest whole passes over ``rows`` training rows that make at least one step per row,
    but from ``steps[0]`` to ``steps[1]`` steps; at most ``most`` passes. (A pass of more than
    ``steps[1]`` batches is one pass; of slightly fewer, two.)"""
    least, cap = steps
    per_pass = math.ceil(rows / batch_size)
    return int(min(most, math.ceil(min(max(rows, least), cap) / per_pass)))


def _intensities(ds) -> bool:
    """Whether the samples are intensities on one shared scale: images, or a table of more than
    ``WIDE`` columns whose values all lie in [0, 1] (a flattened image: its columns are pixels).
    Those are not standardised column by column, which would blow up the near-constant ones
    (a digit's border pixels) until they dominate every score; they get the settings of images
    (one-class MNIST as a flat table: AUROC 0.97 so, 0.89 standardised; bench/anomaly_mnist.py)."""
    if ds.kind != "tabular":
        return True
    lo, hi = ds.value_range()
    return math.prod(ds.sample_shape) > WIDE and lo >= 0 and hi <= 1


def _bytes(ds) -> bool:
    """Whether ``ds`` is a table stored as uint8. vaekit reads uint8 as 8-bit intensities (x / 255),
    right for images; but a table's bytes are the numbers they hold (pandas' downcast makes ages
    and counts uint8), and the same rows as int64, as floats or from a CSV must score alike, so
    the detector takes such a table as its values."""
    import torch

    source = getattr(ds, "source", None)
    stored = ds.x.dtype if source is None else source.dtype
    return ds.kind == "tabular" and stored in (np.uint8, torch.uint8)


def _integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def _plain(value):
    """A parameter as JSON can hold it: NumPy numbers as Python numbers, sequences as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _seed(random_state) -> int:
    """An int seed from scikit-learn's kinds of ``random_state`` (None: a fresh one)."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2 ** 31))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2 ** 31))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2 ** 31))
    return int(random_state)


def _is_numeric(column) -> bool:
    try:
        np.asarray(column, dtype=np.float64)
        return True
    except (TypeError, ValueError):
        return False


class AnomalyDetector(OutlierMixin, BaseEstimator):
    """Anomaly detector built on an autoencoder (AE) or a variational autoencoder (VAE).

    Fit it on (mostly) normal data; :meth:`decision_function` then gives each row an anomaly
    score, higher for rows the model explains badly.

    Tables are put in robust units (each column's median and interquartile range, which a few
    extreme training rows cannot move), and each training step learns from the rows whose loss is
    not far beyond the rest (Tukey's fence), so a training set with glitches or anomalies in it
    neither stops the fit nor blinds the detector. A fit that still diverges is done again at a
    lower learning rate, with a :class:`vaekit.VaekitWarning` that says so. Images, and tables of
    more than 64 columns whose values all lie in [0, 1] (flattened images), are intensities on one
    shared scale: they are used as they are, and scored by reconstruction error. A DataFrame may
    hold text, category and bool columns beside numbers, and missing cells (NaN, None).

    It is a scikit-learn estimator (``clone``, ``Pipeline``, ``GridSearchCV`` and
    ``cross_val_score`` work; :meth:`score` is the AUROC against 0/1 labels) with PyOD's names
    and semantics: 0/1 labels, ``decision_scores_``, ``threshold_``, ``labels_``,
    :meth:`predict_proba`, :meth:`predict_confidence`, :meth:`predict_with_rejection`, so code
    written for a PyOD detector runs unchanged.

    Parameters
    ----------
    model : {"vae", "ae", "vqvae"}, default="vae"
        The network: a VAE (a likelihood per row), a plain autoencoder, or (images only) a
        convolutional VQ-VAE, whose code is a grid of discrete symbols (``vaekit.models.VQVAE``).
    contamination : float in (0, 0.5], default=0.1
        The share of anomalies expected in the training data; sets ``threshold_`` (and so the
        0/1 labels), never the scores.
    anomaly_score : {"auto", "recon", "elbo", "iw"}, default="auto"
        "recon": squared reconstruction error (at the posterior mean for a VAE; for an AE on a
        table, each column's error in units of that column's residual spread on the training
        rows); "elbo": the negative evidence lower bound; "iw": the importance-weighted negative
        log-likelihood with ``n_samples`` draws; "auto": "elbo" for a VAE on tables, "recon" for
        images and for an AE.
    n_samples : int, default=16
        Posterior draws for the "elbo" and "iw" scores. The same standard-normal draws serve
        every row, so a row's score never depends on the rest of the batch.
    likelihood : {"auto", "gaussian-learned", "gaussian", "bernoulli", "continuous-bernoulli"}, \
default="auto"
        The VAE's p(x | z): "auto" is "bernoulli" for intensities in [0, 1] and
        "gaussian-learned" (one learned scale per feature) for tables.
    latent_dim : int or None, default=None
        Size of the code; None sizes it from the data (a third of the features, 2 to 32, for
        tables; 20 for intensities).
    hidden_dims : sequence of int or None, default=None
        Widths of the encoder's hidden layers (the decoder mirrors them); None sizes them
        from the data (for tables one layer four times as wide as the features, 32 to 256, and
        for tables of more than 64 columns no more weights than a 64-column table's, at least
        64 units; for intensities 400).
    epochs : int or "auto", default="auto"
        Most passes over the data: for tables, the fewest whole passes that make about one step
        per training row, but 300 to 500 steps (at most 300 passes); for tables of more than 64
        columns, enough steps to see 1.5 million values, or 10 passes, whichever is more (at most
        2,000 steps); 50 for images. Early stopping may end training sooner.
    batch_size : int or "auto", default="auto"
        128; 32 for tables of more than 64 columns, whose steps cost in proportion to their size.
    lr : float or "auto", default="auto"
        Adam's learning rate: 5e-3 for tables, 1e-3 for images. Many small steps: with large
        ones (512 rows at 2e-2) how well a VAE fits a small table was left to its seed. On
        tables, a layer with more than 64 inputs learns at lr * sqrt(64 / inputs): the first
        layer of a 1,000-column table diverged at 5e-3.
    patience : int or None, default=20
        Epochs without improvement of the held-out loss before training stops; None never stops
        early.
    val_fraction : float in [0, 1) or "auto", default="auto"
        Share of the training rows held out to judge early stopping. "auto" holds out 10% from
        1,000 rows up and none below (a few dozen held-out rows judge by noise and cost more
        than they save).
    noise : str or None, default=None
        Train as a denoising autoencoder with this corruption (see ``vaekit.noise``).
    random_state : int, numpy.random.RandomState, numpy.random.Generator or None, default=None
        Seed of initialisation, split, shuffling and score draws: a fixed seed gives the same
        scores every time.
    device : str, default="cpu"
        "cpu", "cuda", "cuda:N", "mps" or "auto".
    verbose : bool, default=False
        Print training progress.
    column_types : dict or None, default=None
        A table's column kinds where they are not what the data say, such as
        ``{"zip": "categorical"}`` for integer codes (``vaekit.data.schema``): numbers are
        continuous, text and pandas categories categorical, bools binary. Each kind has its own
        term in the score (a Gaussian, a Bernoulli, a softmax over the levels); a category never
        seen in fitting scores as unlikely.

    Attributes
    ----------
    decision_scores_ : ndarray of shape (n_samples,)
        Anomaly scores of the training rows.
    threshold_ : float
        Scores above it are labelled anomalies: the (1 - contamination) quantile of
        ``decision_scores_``.
    labels_ : ndarray of shape (n_samples,)
        0/1 labels of the training rows (1 = anomaly).
    anomaly_score_ : str
        The score in use ("auto" resolved).
    schema_ : vaekit.data.Schema or None
        Each column's kind and levels, learnt in fitting (None: numbers alone, or images).
    intensities_ : bool
        Whether the data were read as intensities on one scale (images, wide tables in [0, 1])
        rather than as features in their own units.
    n_features_in_ : int
        Values per row seen in fit (pixels for images).
    feature_names_in_ : ndarray of str
        Column names, when fit was given a DataFrame.
    net_ : torch.nn.Module
        The trained network (``vaekit.VAE`` or ``vaekit.AE``).
    center_, scale_ : ndarray
        What each table column is shifted and divided by before the network sees it: its median
        and its spread (the interquartile range / 1.349; see :func:`vaekit.robust.robust_units`),
        which a few extreme training rows cannot move.
    clip_ : float or None
        Table values further than this many units from the center are soft-clipped (they grow
        logarithmically beyond it), so that any finite value is a number the network can take.

    Examples
    --------
    >>> import numpy as np
    >>> from vaekit import AnomalyDetector
    >>> rng = np.random.default_rng(0)
    >>> normal = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 6))  # rows near a plane
    >>> det = AnomalyDetector(contamination=0.05, random_state=0).fit(normal)
    >>> new = np.vstack([normal[:3], rng.normal(size=(2, 6)) * 3])  # 3 normal rows, 2 anomalies
    >>> det.predict(new)
    array([0, 0, 0, 1, 1])
    >>> det.decision_function(new).shape
    (5,)
    """

    def __init__(self, model="vae", contamination=0.1, anomaly_score="auto", n_samples=16, likelihood="auto",
                 latent_dim=None, hidden_dims=None, epochs="auto", batch_size="auto", lr="auto", patience=20,
                 val_fraction="auto",
                 noise=None, random_state=None, device="cpu", verbose=False, column_types=None):
        self.model = model
        self.contamination = contamination
        self.anomaly_score = anomaly_score
        self.n_samples = n_samples
        self.likelihood = likelihood
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.noise = noise
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.column_types = column_types

    # -- input ------------------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a table's NaN are missing cells, left out of the score
        return tags

    def _validate_params(self) -> None:
        """Every parameter checked before any work, each failure one clear ValueError."""
        from .likelihoods import NAMES as LIKELIHOODS

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise VaekitError(f"{option(name)} must be {what}, got {getattr(self, name)!r}")

        def auto_or(name: str, test) -> bool:
            value = getattr(self, name)
            return value == "auto" if isinstance(value, str) else test(value)

        need(self.model in ("ae", "vae", "vqvae"), "model", "'vae', 'ae' or 'vqvae'")
        need(_real(self.contamination) and 0 < self.contamination <= 0.5, "contamination",
             "a number in (0, 0.5]")
        need(self.anomaly_score in SCORES, "anomaly_score", f"one of {', '.join(map(repr, SCORES))}")
        if self.anomaly_score in ("elbo", "iw") and self.model != "vae":
            raise VaekitError(f"{option('anomaly_score', self.anomaly_score)} needs a VAE; use "
                              f"{option('anomaly_score', 'recon')} (or auto) with {option('model', self.model)}")
        need(_integer(self.n_samples) and self.n_samples >= 1, "n_samples", "an integer of at least 1")
        need(self.likelihood == "auto" or self.likelihood in LIKELIHOODS, "likelihood",
             f"'auto' or one of {', '.join(map(repr, LIKELIHOODS))}")
        need(self.latent_dim is None or (_integer(self.latent_dim) and self.latent_dim >= 1), "latent_dim",
             "None or an integer of at least 1")
        need(self.hidden_dims is None or (isinstance(self.hidden_dims, (list, tuple)) and len(self.hidden_dims) > 0
                                          and all(_integer(h) and h >= 1 for h in self.hidden_dims)),
             "hidden_dims", "None or a non-empty list of positive integers, such as (64, 32)")
        need(auto_or("epochs", lambda v: _integer(v) and v >= 1), "epochs", "'auto' or an integer of at least 1")
        need(auto_or("batch_size", lambda v: _integer(v) and v >= 1), "batch_size",
             "'auto' or an integer of at least 1")
        need(auto_or("lr", lambda v: _real(v) and 0 < v < math.inf), "lr", "'auto' or a positive number")
        need(self.patience is None or (_integer(self.patience) and self.patience >= 1), "patience",
             "None (no early stopping) or an integer of at least 1")
        need(auto_or("val_fraction", lambda v: _real(v) and 0 <= v < 1), "val_fraction",
             "'auto' or a number in [0, 1)")
        need(self.random_state is None or (_integer(self.random_state) and 0 <= self.random_state < 2 ** 32)
             or isinstance(self.random_state, (np.random.RandomState, np.random.Generator)), "random_state",
             "None, an integer in [0, 2**32) or a NumPy random generator")
        need(isinstance(self.device, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device) is not None,
             "device", "'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'")
        if self.noise is not None:
            from .noise import parse_noise

            parse_noise(self.noise)

    def _likelihood(self, lo: float, hi: float) -> str:
        if self.likelihood != "auto":
            return self.likelihood
        if self.intensities_ and lo >= 0 and hi <= 1:
            return "bernoulli"
        return AUTO_TABULAR_LIKELIHOOD

    def _as_array(self, X, fitting: bool) -> np.ndarray:
        """X (array-like, DataFrame) as a dense numeric array, checked by scikit-learn's
        ``check_array``, every failure one clear ValueError (a TypeError too where the values
        are not numbers)."""
        from sklearn.utils import check_array

        complex_numbers = NotNumericError("Complex data not supported: X holds complex numbers; give real values "
                                          "(e.g. the real and imaginary parts as columns of their own)")
        columns = getattr(X, "columns", None)
        if columns is not None:
            kinds = {c: getattr(X[c], "dtype", np.dtype(object)).kind for c in columns}
            times = [c for c, kind in kinds.items() if kind in "mM"]
            if times:
                raise NotNumericError(f"column(s) {', '.join(map(str, times))} hold dates or durations; turn them "
                                      "into numbers (e.g. seconds since a start, or the hour and weekday) or drop them")
            if "c" in kinds.values():
                raise complex_numbers
            bad = [c for c in columns if not _is_numeric(X[c])]
            if bad:
                raise NotNumericError(f"column(s) {', '.join(map(str, bad))} are not numeric; encode them as "
                                      "numbers or drop them")
        if columns is not None and len(columns) == 0:
            raise VaekitError("X has 0 columns; give at least one feature")
        if getattr(X, "ndim", 2) == 1 or (isinstance(X, (list, tuple)) and X and np.ndim(X[0]) == 0):
            raise VaekitError(f"X is 1-D (shape ({len(X)},)); Reshape your data: X.reshape(-1, 1) if it is one "
                              "feature, X.reshape(1, -1) if it is one row")
        try:
            # NaN: a missing cell, which the models leave out (a table's; images refuse it later)
            X = check_array(X, accept_sparse=False, dtype="numeric", allow_nd=True, ensure_all_finite="allow-nan",
                            ensure_min_samples=2 if fitting else 1, input_name="X")
        except TypeError as e:
            text = str(e).splitlines()[0]
            if text.startswith("Sparse data"):
                raise VaekitError("sparse input is not supported; pass X.toarray() (dense data is needed)") from None
            raise NotNumericError(f"X must be numeric: {text}") from None
        except ValueError as e:
            text = " ".join(str(e).split())
            if text.startswith("Complex data not supported"):  # (scikit-learn's message goes on to print X)
                raise complex_numbers from None
            if "convert" in text:  # strings, objects
                raise NotNumericError(f"X must be numeric: {text}; encode such values as numbers") from None
            raise VaekitError(text) from None
        if X.ndim > 2 and 0 in X.shape[1:]:
            raise VaekitError(f"X's samples hold no values (shape {X.shape}); give at least one value per sample")
        # (a table is brought to its robust units in float64 and soft-clipped: any finite value will do)
        if X.ndim > 2 and X.dtype.kind == "f" and X.dtype.itemsize > 4 and X.size and \
                np.abs(X).max() > np.finfo(np.float32).max:
            raise VaekitError(f"X holds values up to {np.abs(X).max():.3g}, beyond what float32 holds; rescale the "
                              "images (the networks compute in float32)")
        return X

    def _dataset(self, X, fitting: bool):
        """X validated as a vaekit Dataset (raw values); when fitting, also the shape, column
        names and standardisation statistics that later data must match."""
        from .data import Dataset, LazyDataset, as_dataset, from_arrays
        from .data.schema import is_frame, needs_schema

        if fitting and isinstance(X, LazyDataset):
            X = X.load()  # training reads every row many times: it needs them in memory
        schema = None if fitting else getattr(self, "schema_", None)
        if isinstance(X, (Dataset, LazyDataset)):
            ds, names = X, (X.schema.names if X.schema is not None else list(X.columns) if X.columns else None)
        elif schema is not None or (fitting and (self.column_types or needs_schema(X))):
            # a table with text, category or yes/no columns: the schema learnt in fitting reads it
            names = [str(c) for c in X.columns] if is_frame(X) else None
            ds = as_dataset(X, name="X", schema=schema, column_types=self.column_types if fitting else None)
            if ds.schema is None and len(ds) < 2 and fitting:
                raise VaekitError("X needs at least 2 rows to fit a detector")
        else:
            names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
            ds = from_arrays(self._as_array(X, fitting), name="X")
        if isinstance(ds, Dataset) and _bytes(ds):
            ds = replace(ds, x=ds.x.double())  # a table's bytes are its values (see _bytes)
        if fitting:
            if names is not None:
                self.feature_names_in_ = np.asarray(names, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        if fitting:
            self.sample_shape_ = ds.sample_shape
            self.kind_ = ds.kind
            self.schema_ = ds.schema  # None: numbers alone, or images
            # scikit-learn's count of the columns given (a categorical column is one)
            self.n_features_in_ = len(ds.schema.names) if ds.schema is not None else math.prod(ds.sample_shape)
        elif ds.sample_shape != self.sample_shape_:
            if self.kind_ == "tabular" and ds.kind == "tabular":
                raise VaekitError(f"X has {ds.sample_shape[0]} features, but {type(self).__name__} is expecting "
                                  f"{self.n_features_in_} features as input; give the columns it was fitted on")
            raise VaekitError(f"X has samples of shape {ds.sample_shape}, but this detector was fitted on shape "
                              f"{self.sample_shape_}; give data like the training data")
        elif names is not None and hasattr(self, "feature_names_in_") and list(self.feature_names_in_) != names:
            first = next(i for i, (a, b) in enumerate(zip(names, self.feature_names_in_)) if a != b)
            raise VaekitError(f"X's column {first} is {names[first]!r}, but the detector was fitted with "
                              f"{self.feature_names_in_[first]!r} there; give the same columns in the same order")
        if fitting:
            self.intensities_ = _intensities(ds) and ds.schema is None
            if ds.kind == "tabular" and self.intensities_:  # one scale already: no column is blown up
                self.center_, self.scale_ = np.zeros(ds.sample_shape), np.ones(ds.sample_shape)
            elif ds.kind == "tabular":
                from .robust import robust_units

                self.center_, self.scale_ = robust_units(ds.values().numpy())
                if ds.schema is not None:  # binary and one-hot columns stay 0 and 1
                    kept = ~ds.schema.continuous()
                    self.center_[kept], self.scale_[kept] = 0.0, 1.0
            self.clip_ = CLIP
        return ds

    def _standardise(self, x):
        """Tables in the training data's robust units (soft-clipped far out); images as they are."""
        from .robust import robust_standardize

        return robust_standardize(x, self.center_, self.scale_, self.clip_) if self.kind_ == "tabular" else x

    # -- scikit-learn API ---------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train on X (labels, if given, are ignored) and set the threshold from ``contamination``.

        Started by torchrun, every process calls this with the same X; they train one model
        together (DistributedDataParallel) and end with the same fitted detector. A fit that
        fails (bad X, diverged training, Ctrl-C) leaves the detector unfitted, never holding
        parts of two fits.
        """
        try:
            return self._fit(X)
        except BaseException:
            for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
                delattr(self, name)  # scikit-learn's fitted attributes end with "_"
            raise

    def _fit(self, X):
        import torch

        from . import distributed
        from .config import ModelConfig, TrainConfig
        from .footprint import check_fits
        from .models import build_model
        from .training import Trainer, resolve_device

        self._validate_params()
        raw = self._dataset(X, fitting=True)
        ds = replace(raw, x=self._standardise(raw.values().double()).float())  # units in float64, then cast
        if len(ds) < 2:
            raise VaekitError("X needs at least 2 rows to fit a detector")
        self.seed_ = _seed(self.random_state)
        width = math.prod(self.sample_shape_)  # the model's columns (a categorical column's levels each)
        hidden, latent = ((400,), 20) if self.intensities_ else _widths(width)
        lo, hi = ds.value_range()
        if self.model == "vqvae":  # convolutional; its code size follows from the images
            from .models.vqvae import vqvae_code_size

            if ds.kind != "image" or self.latent_dim is not None:
                raise VaekitError(f"{option('model', 'vqvae')} takes images, (N, H, W) or (N, H, W, C), and sizes "
                                  "its own code; " + (f"leave out {option('latent_dim')}" if ds.kind == "image" else
                                                      f"reshape flattened images, or use {option('model', 'vae')} "
                                                      f"or {option('model', 'ae')} for tables"))
            hidden = self.hidden_dims or ModelConfig(model="vqvae").hidden_dims
            latent = vqvae_code_size(ds.sample_shape, hidden)
        self.model_config_ = ModelConfig(
            model=self.model, latent_dim=int(self.latent_dim or latent),
            hidden_dims=tuple(int(h) for h in (self.hidden_dims or hidden)),
            likelihood=self._likelihood(lo, hi),
            input_shape=ds.sample_shape, blocks=self.schema_.blocks() if self.schema_ is not None else ())
        self.model_config_.validate()
        world = distributed.join()
        device = distributed.device_for(resolve_device(self.device), world)
        val_fraction = (0.1 if len(ds) >= 1000 else 0.0) if self.val_fraction == "auto" else self.val_fraction
        train, val = ds.split(val_fraction, self.seed_)
        best = {}

        def keep_best(metrics, trainer, improved):
            if improved:
                best["state"] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

        auto = AUTO_TRAINING["intensities" if self.intensities_ else
                             "wide table" if width > WIDE else "table"]
        batch_size = auto["batch_size"] if self.batch_size == "auto" else self.batch_size
        # Batches of equal size (within one row): a last batch of a few rows is a poor step, and
        # there a glitch row or two can be half the batch, past what trimming can tell apart.
        batch_size = math.ceil(len(train) / math.ceil(len(train) / batch_size))
        epochs = auto["epochs"]
        if auto["steps"]:
            steps = auto["steps"]
            if steps == "values":
                steps = wide_steps(len(train), width, batch_size)
            epochs = auto_epochs(len(train), batch_size, steps, epochs)
        cfg = TrainConfig(epochs=int(epochs if self.epochs == "auto" else self.epochs), batch_size=batch_size,
                          lr=float(auto["lr"] if self.lr == "auto" else self.lr),
                          seed=self.seed_, patience=None if self.patience is None else int(self.patience),
                          device=device.type, precision="fp32", trim=TRIM,
                          lr_fan_in=None if self.intensities_ else LR_FAN_IN,
                          noise=self.noise, progress=bool(self.verbose) and world.is_main, world_size=world.size)
        check_fits(self.model_config_, batch_size, device, world.local_size)
        tried = []
        while True:
            best.clear()
            torch.manual_seed(self.seed_)  # every attempt starts from the same weights
            net = build_model(self.model_config_)
            try:
                Trainer(net, cfg, device, on_epoch=keep_best, world=world).fit(train, val)
                break
            except TrainingDiverged as e:
                tried.append(cfg.lr)
                if len(tried) > RESTARTS:
                    rates = ", ".join(f"{lr:g}" for lr in tried)
                    raise TrainingDiverged(f"training diverged at {option('lr')} {rates} in turn; check the data "
                                           f"for values a network cannot take, or give a lower {option('lr')}") from e
                # Started again from the same seed, at a quarter of the rate: what a user would do.
                cfg = replace(cfg, lr=cfg.lr / 4)
                warnings.warn(VaekitWarning(f"training diverged at {option('lr', tried[-1])} ({e.what}); "
                                            f"fitted again from the start at {option('lr', cfg.lr)}"), stacklevel=3)
        self.train_config_ = cfg
        net.load_state_dict(best["state"])
        if self.model == "ae" and not self.intensities_:
            net.fit_residual_scale(train.batch().to(device))
        self.net_ = net.eval()
        self.decision_scores_ = self._scores(raw, world)
        self.threshold_ = float(np.percentile(self.decision_scores_, 100 * (1 - self.contamination)))  # as PyOD
        self.labels_ = self.flags(self.decision_scores_)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Anomaly score of each row (higher = more anomalous), shape (N,)."""
        check_is_fitted(self, "net_")
        return self._scores(self._dataset(X, fitting=False))

    def predict(self, X, return_confidence: bool = False):
        """1 for rows scoring above ``threshold_`` (anomalies), 0 otherwise; with
        ``return_confidence``, also :meth:`predict_confidence`'s values."""
        scores = self.decision_function(X)
        labels = self.flags(scores)
        return (labels, self._confidence(scores)) if return_confidence else labels

    def flags(self, scores) -> np.ndarray:
        """0/1 marks of anomaly scores (1: above ``threshold_``), as :meth:`predict` gives for
        the rows they came from; the one place the threshold is applied."""
        check_is_fitted(self, "threshold_")
        return (np.asarray(scores) > self.threshold_).astype(int)

    def predict_proba(self, X, method: str = "linear", return_confidence: bool = False):
        """(N, 2): the probability of being normal and of being an anomaly.

        ``method="linear"`` scales the score by the training scores' range (min-max) and clips to
        [0, 1]; ``"unify"`` is Kriegel et al.'s (2011) Gaussian scaling, erf((s - mean) / (std
        sqrt 2)) of the training scores, clipped at 0. With ``return_confidence``, also
        :meth:`predict_confidence`'s values.
        """
        from scipy.special import erf

        if method not in ("linear", "unify"):
            raise VaekitError(f"method must be 'linear' or 'unify', got {method!r}")
        scores = self.decision_function(X)
        train = self.decision_scores_
        if method == "linear":
            lo, hi = train.min(), train.max()
            p = (scores - lo) / (hi - lo if hi > lo else 1.0)
        else:
            p = erf((scores - train.mean()) / ((train.std() or 1.0) * math.sqrt(2)))
        p = np.clip(p, 0.0, 1.0)
        proba = np.column_stack([1.0 - p, p])
        return (proba, self._confidence(scores)) if return_confidence else proba

    def predict_confidence(self, X) -> np.ndarray:
        """How surely each row would get the same label from a detector fitted on a slightly
        different training set, in [0, 1] (Perini et al., 2020, ExCeeD; PyOD's definition)."""
        return self._confidence(self.decision_function(X))

    def _confidence(self, scores: np.ndarray) -> np.ndarray:
        from scipy.stats import binom

        n = len(self.decision_scores_)
        below = np.searchsorted(np.sort(self.decision_scores_), scores, side="right")
        outlier = 1.0 - binom.cdf(n - int(n * self.contamination), n, (1.0 + below) / (2.0 + n))
        return np.where(scores > self.threshold_, outlier, 1.0 - outlier)

    def predict_with_rejection(self, X, T: float = 32, return_stats: bool = False, delta: float = 0.1,
                               c_fp: float = 1, c_fn: float = 1, c_r: float | None = None):
        """:meth:`predict`, with -2 for rows whose confidence is at most 1 - 2 exp(-T) (rejected:
        left to a person). With ``return_stats``, also [expected rejection rate, its upper bound,
        the upper bound of the cost] from :meth:`compute_rejection_stats`."""
        scores = self.decision_function(X)
        labels = self.flags(scores)
        self.rejection_threshold_ = 1.0 - 2.0 * math.exp(-T)
        labels[2.0 * np.abs(self._confidence(scores) - 0.5) <= self.rejection_threshold_] = -2
        if return_stats:
            return labels, list(self.compute_rejection_stats(T=T, delta=delta, c_fp=c_fp, c_fn=c_fn, c_r=c_r))
        return labels

    def compute_rejection_stats(self, T: float = 32, delta: float = 0.1, c_fp: float = 1, c_fn: float = 1,
                                c_r: float | None = None, verbose: bool = False) -> tuple[float, float, float]:
        """For :meth:`predict_with_rejection` with the same ``T``: the expected rejection rate, an
        upper bound of it that holds with probability 1 - ``delta``, and an upper bound of the
        cost, where a false positive costs ``c_fp``, a false negative ``c_fn`` and a rejection
        ``c_r`` (None or negative, as in PyOD: the contamination). Perini et al. (2023)."""
        from scipy.optimize import brentq
        from scipy.stats import binom

        check_is_fitted(self, "net_")
        n = len(self.decision_scores_)
        if int(n * self.contamination) < 1:
            raise VaekitError(f"rejection statistics need at least one expected anomaly in training, but "
                              f"{n} rows x contamination {self.contamination} < 1; fit on more rows")
        if not 0 < delta < 1:
            raise VaekitError(f"delta must be in (0, 1), got {delta}")
        if not T > 0:
            raise VaekitError(f"T must be positive, got {T}")
        gamma = self.contamination
        c_r = gamma if c_r is None or c_r < 0 else c_r
        self.rejection_threshold_ = 1.0 - 2.0 * math.exp(-T)
        k = int(n * gamma) - 1
        q1 = brentq(lambda p: binom.cdf(k, n, p) - (1 - math.exp(-T)), 0, 1)
        q2 = brentq(lambda p: binom.cdf(k, n, p) - math.exp(-T), 0, 1)
        expected = q2 - q1
        right = min(1.0, (-gamma * (n + 2) + n + 1) / n + T * (n + 2) / math.sqrt(2 * n ** 3 * T))
        inside = 0.5 * n ** 5 * (2 * n * (-3 * gamma ** 2 - 2 * n * (1 - gamma) ** 2 + 4 * gamma - 3)
                                 + T * (n + 2) ** 2 - 8)
        # a negative ``inside`` (small T) leaves no left margin, as PyOD's NaN there does
        left = max(0.0, (2 + n * (1 - gamma) * (n + 1)) / n ** 2 - math.sqrt(inside) / n ** 4) if inside >= 0 else 0.0
        upper_rate = right - left + 2 * math.sqrt(math.log(2 / delta) / (2 * n))
        upper_cost = min(gamma, q1) * c_fp + min(1 - q2, gamma) * c_fn + (q2 - q1) * c_r
        if verbose:
            print(f"expected rejection rate {expected:.4f}, upper bound {upper_rate:.4f}; "
                  f"upper bound of the cost {upper_cost:.4f}")
        return expected, upper_rate, upper_cost

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit on X and return the training rows' 0/1 labels (``labels_``)."""
        return self.fit(X).labels_

    def score(self, X, y=None, sample_weight=None) -> float:
        """How good the detector is on X, higher is better, so scikit-learn's model selection
        (``cross_val_score``, ``GridSearchCV``) can use it unchanged.

        With 0/1 labels ``y`` (1 = anomaly): the area under the ROC curve of the anomaly scores.
        Without: minus the mean anomaly score, as a density model's mean log-likelihood.
        """
        from sklearn.metrics import roc_auc_score

        scores = self.decision_function(X)
        if sample_weight is not None and np.shape(sample_weight) != scores.shape:
            raise VaekitError(f"sample_weight must be one weight per row of X ({len(scores)}), got shape "
                              f"{np.shape(sample_weight)}")
        if y is None:
            return float(-np.average(scores, weights=sample_weight))
        y = np.asarray(y)
        if y.shape != scores.shape or _marks(y) is None:
            raise VaekitError(f"y must be one 0/1 mark per row of X (1 = anomaly), got values "
                              f"{np.unique(y)[:5].tolist()} of shape {y.shape}")
        if len(np.unique(y)) < 2:
            raise VaekitError("y holds only one class, so the ranking cannot be judged; give both normal rows "
                              "and anomalies (with cross-validation, use StratifiedKFold)")
        return float(roc_auc_score(y, scores, sample_weight=sample_weight))

    # -- scoring --------------------------------------------------------------------------------
    @property
    def anomaly_score_(self) -> str:
        """The score in use. 'auto' is the negative ELBO for a VAE on tables, and the
        reconstruction error otherwise: on intensities (images, wide tables in [0, 1]),
        likelihoods favour simple pictures over typical ones (Nalisnick et al., 2019); one-class
        MNIST AUROC 0.97 against 0.94."""
        if self.anomaly_score != "auto":
            return self.anomaly_score
        check_is_fitted(self, "intensities_")
        return "elbo" if self.model == "vae" and not self.intensities_ else "recon"

    def check_data(self, X) -> None:
        """Raise a clear error if X is not data like the training data (shape, columns)."""
        check_is_fitted(self, "net_")
        self._dataset(X, fitting=False)

    def score_chunks(self, X, chunk: int = 4096):
        """Scores of X (an array, a DataFrame or a vaekit dataset, which may be read on demand)
        a chunk at a time, in order: the way to score data larger than memory."""
        check_is_fitted(self, "net_")
        yield from self._score_chunks(self._dataset(X, fitting=False), chunk)

    def _score_chunks(self, ds, chunk: int = 4096):
        """Scores of raw data chunk by chunk (standardised chunk by chunk), so a million rows never
        hold their intermediates, or a standardised copy, all at once."""
        import torch

        net = self._scoring_net()
        device, wide = next(net.parameters()).device, next(net.parameters()).dtype
        eps = score_draws(self).to(device, wide)
        as_values = _bytes(ds)  # a uint8 table read on demand comes in [0, 1]: back to the values it holds
        with torch.no_grad():
            for _, x in ds.chunks(chunk, values=True):  # a table's float64 values: standardised before any cast
                x = x.to(device, wide)
                if as_values:
                    x = x.mul_(255.0).round_()
                scores = row_scores(net, self._standardise(x), self.anomaly_score_, eps)
                yield scores.double().cpu().numpy()

    def _scoring_net(self):
        """The network rows are scored with. A table's rows are scored in float64 on the CPU: in
        float32 a row's score moved in the 7th digit with the number of rows beside it (the matrix
        kernels sum in another order for another batch size), so predict_proba depended on the
        batch. The networks are small there; conv and image networks, and accelerators, stay in
        float32. The float64 copy is made once per fitted network, not per call (serve scores
        batch after batch)."""
        net = self.net_
        if self.kind_ != "tabular" or next(net.parameters()).device.type != "cpu":
            return net
        made_from, wide = getattr(self, "_wide_net", (None, None))
        if made_from is not net:
            wide = copy.deepcopy(net).double()
            self._wide_net = (net, wide)
        return wide

    def _scores(self, ds, world=None) -> np.ndarray:
        """Scores of all of ``ds``; under torchrun each rank scores its share and all get all."""
        from .data import shard

        if world is None or world.size == 1:
            return np.concatenate(list(self._score_chunks(ds)))
        mine = np.concatenate([np.zeros(0), *self._score_chunks(shard(ds, world))])
        return np.concatenate(world.all_gather(mine))

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the fitted detector to a new folder (weights as safetensors, the rest as JSON)."""
        from .atomic import atomic_write
        from .config import DataConfig, RunConfig
        from .runfolder import RunFolder

        check_is_fitted(self, "net_")
        # A random generator is saved as the seed it gave, NumPy numbers as Python ones.
        params = {k: self.seed_ if k == "random_state" and v is not None else _plain(v)
                  for k, v in self.get_params().items()}
        state = {"params": params, "seed": self.seed_, "threshold": self.threshold_,
                 "sample_shape": list(self.sample_shape_), "kind": self.kind_, "intensities": self.intensities_,
                 "center": None if self.kind_ != "tabular" else self.center_.tolist(),
                 "scale": None if self.kind_ != "tabular" else self.scale_.tolist(), "clip": self.clip_,
                 "feature_names": None if not hasattr(self, "feature_names_in_") else list(self.feature_names_in_),
                 "schema": None if self.schema_ is None else self.schema_.to_json(),
                 "decision_scores": self.decision_scores_.tolist()}
        text = json.dumps(state) + "\n"  # before the folder exists: nothing half-written if this fails
        folder = RunFolder.create(path, resumable=False)
        try:
            config = RunConfig(model=self.model_config_, data=DataConfig(  # (what the ONNX graphs take, too)
                spec="<detector>", layout=self.kind_, schema=None if self.schema_ is None else self.schema_.to_json(),
                columns=self.schema_.model_names() if self.schema_ is not None else
                (list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else None)),
                               train=self.train_config_)
            folder.save_config(config)
            folder.save_weights(self.net_, config)
            atomic_write(folder.path / DETECTOR_FILE, lambda tmp: Path(tmp).write_text(text))
        except BaseException:
            shutil.rmtree(folder.path, ignore_errors=True)
            raise
        return folder.path

    @classmethod
    def load(cls, path) -> AnomalyDetector:
        from .config import RunConfig
        from .data.schema import Schema
        from .models import build_model
        from .runfolder import CONFIG, RunFolder

        folder = RunFolder.open(path)
        try:
            state = json.loads((folder.path / DETECTOR_FILE).read_text())
        except FileNotFoundError:
            raise VaekitError(f"{path} holds no detector ({DETECTOR_FILE} is missing); make one with "
                              "vaekit detect fit") from None
        except json.JSONDecodeError as e:
            raise VaekitError(f"{folder.path / DETECTOR_FILE} is corrupt ({e}); fit the detector again") from None
        params = state["params"]
        if "score" in params:  # written before the parameter was renamed
            params["anomaly_score"] = params.pop("score")
        if params.get("hidden_dims") is not None:
            params["hidden_dims"] = tuple(params["hidden_dims"])
        det = cls(**params)
        config = RunConfig.load(folder.file(CONFIG))
        det.model_config_, det.train_config_ = config.model, config.train
        net = build_model(det.model_config_)
        folder.load_weights(net)
        det.net_ = net.eval()
        det.seed_, det.threshold_, det.kind_ = state["seed"], state["threshold"], state["kind"]
        det.intensities_ = state.get("intensities", det.kind_ != "tabular")  # older folders: images only
        det.sample_shape_ = tuple(state["sample_shape"])
        schema = state.get("schema")  # (folders written before column types: none)
        det.schema_ = None if schema is None else Schema.from_json(schema)
        det.n_features_in_ = len(det.schema_.names) if det.schema_ is not None else math.prod(det.sample_shape_)
        center = state.get("center", state.get("mean"))  # folders written before robust units: the mean
        if center is not None:
            det.center_ = np.asarray(center, np.float64)
            det.scale_ = np.asarray(state["scale"], np.float64)
        det.clip_ = state.get("clip")  # folders written before it: not clipped
        if state["feature_names"] is not None:
            det.feature_names_in_ = np.asarray(state["feature_names"], dtype=object)
        det.decision_scores_ = np.asarray(state["decision_scores"])
        det.labels_ = det.flags(det.decision_scores_)
        return det


def anomaly_marks(ds) -> np.ndarray | None:
    """The labels of ``ds`` as 0/1 anomaly marks (1 = anomaly), or None where they are not that:
    no labels, class numbers, or names other than "0" and "1" (names are numbered in sorted
    order, so "anomaly" and "normal", say, would read backwards)."""
    if ds.y is None:
        return None
    if ds.class_names is None:
        return _marks(ds.y.numpy())
    if not set(ds.class_names) <= {"0", "1"}:  # an image folder's subfolders 0/ and 1/ are marks
        return None
    return np.array([int(name) for name in ds.class_names])[ds.y.numpy()]


def _marks(y: np.ndarray) -> np.ndarray | None:
    """``y`` as int 0/1 anomaly marks, or None if it holds any other value."""
    return y.astype(int) if set(np.unique(y).tolist()) <= {0, 1} else None


def score_draws(detector):
    """The fixed standard-normal draws (n_samples, latent_dim) every row's score uses."""
    import torch

    return torch.randn(detector.n_samples, detector.model_config_.latent_dim,
                       generator=torch.Generator().manual_seed(detector.seed_))


def row_scores(model, x, score: str, eps):
    """Per-row anomaly scores (N,) of a batch; ``eps`` (K, latent) are the fixed draws."""
    import torch

    from .objectives import kl_to_standard_normal, log_weights

    if score == "recon" or not model.generative:
        return model.reconstruction_error(x)
    loc, logvar = model.posterior_params(x)
    log_px, log_w = log_weights(model, x, loc, logvar, eps)
    if score == "elbo":
        return -log_px.mean(0) + kl_to_standard_normal(loc, logvar)
    return -(torch.logsumexp(log_w, dim=0) - math.log(len(eps)))
