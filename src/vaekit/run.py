"""A trained run as the Python API holds it: :class:`Run` and ``load(run_dir) -> Run``.

Training one (``vaekit.train``) lives in :mod:`vaekit.orchestrate`.
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .config import SEED_MAX, RunConfig, check_prior, check_seed
from .data import (
    Dataset,
    LazyDataset,
    as_dataset,
    load_dataset,
    open_lazy,
)
from .data.dataset import TABULAR, standardize, to_layout
from .data.schema import is_frame
from .errors import VaekitError, option
from .evaluation import evaluate as evaluate_model
from .footprint import EVAL_ROWS, inference_rows
from .interpolation import INTERPOLATIONS
from .models import build_model
from .models.base import LatentModel
from .runfolder import CONFIG, RunFolder
from .training import resolve_device
from .units import check_shape, checked

BINARIZE_SEED = 2016  # the one fixed binarisation of evaluation data
SAMPLE_CHUNK = 4096  # samples drawn at a time (Run.sample_chunks)
IMPUTE_DRAWS = 100  # posterior draws weighed for each row a VAE imputes (Run.impute)
ARRAY_SPEC = "<array>"  # the data spec recorded for a run trained on an in-memory array

class Run:
    """A trained model with its config and run folder.

    Inputs may be a data spec (str or Path), a :class:`~vaekit.data.Dataset`, or an array in
    the data's own layout ((N, D), (N, H, W) or (N, H, W, C)); outputs come back as NumPy
    arrays in that same layout.
    """

    def __init__(self, model: LatentModel, config: RunConfig, path: Path | None, device: torch.device):
        self.model = model.to(device).eval()
        self.config = config
        self.path = path
        self.device = device
        self._rows: dict[int, int] = {}  # rows at a time, by the most asked for (see rows)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, model={self.config.model.model!r}, data={self.config.data.spec!r})"

    # -- data -----------------------------------------------------------------------------
    def dataset(self, data=None, lazy: bool | None = None, binarize: bool = True,
                units: bool = True) -> Dataset | LazyDataset:
        """The dataset for ``data``, checked against the model's input shape, in model units
        (``units=False``: in its own).

        With ``data=None``: the run's validation split (or its training data when it had none).
        ``lazy=True`` reads a spec's samples only as they are used (bounded memory); by default
        that is done for the run's own data when training had to stream it. A run trained on
        binarised images sees one fixed draw of them, unless ``binarize=False``.
        """
        image_size, schema = self.config.data.image_size, self.config.data.table_schema()
        if data is None:
            if self.config.data.spec == ARRAY_SPEC:
                raise VaekitError("this run was trained on an in-memory array, which the run folder does "
                                  "not hold; pass the data to use")
            if lazy is None:
                lazy = self.config.data.storage == "stream"
            spec = self.config.data.spec
            full = open_lazy(spec, image_size, schema) if lazy else load_dataset(spec, image_size, schema)
            train, val = full.split(self.config.data.val_fraction, self.config.train.seed)
            ds = val if val is not None else train
        elif lazy and isinstance(data, (str, os.PathLike)):
            ds = open_lazy(str(data), image_size, schema)
        else:
            ds = as_dataset(data, image_size, name="input", schema=schema)
        if units:
            ds = checked(ds, self.config)
        else:
            check_shape(ds, self.config)
        if self.model.n_classes and ds.y is not None and int(ds.y.max()) >= self.model.n_classes:
            raise VaekitError(f"{ds.name} has labels up to {int(ds.y.max())}, but the model knows classes 0 to "
                              f"{self.model.n_classes - 1}")
        if self.config.train.binarize and binarize:  # evaluate on one fixed draw, as the literature does
            ds = ds.binarized(BINARIZE_SEED)
        return ds

    def rows(self, most: int) -> int:
        """Rows to run through the model at a time, at most ``most``: as many as the memory of a
        training batch holds (:meth:`vaekit.footprint.Footprint.rows`)."""
        if most not in self._rows:
            self._rows[most] = inference_rows(self.model, self.config.model, self.config.train.batch_size, most)
        return self._rows[most]

    def chunks(self, ds, fn, batch_size: int | None = None):
        """(start, ``fn(x, y)`` as a NumPy array) over a dataset from :meth:`dataset`, chunk by
        chunk in order (y: labels for a conditional model, else None): bounded memory for any size."""
        with torch.no_grad():
            for start, x in ds.chunks(self.rows(4096) if batch_size is None else batch_size):
                y = ds.labels(slice(start, start + len(x)), self.model)
                yield start, fn(x.to(self.device), None if y is None else y.to(self.device)).cpu().numpy()

    def _batches(self, data, fn, batch_size: int | None = None) -> np.ndarray:
        """``fn(x, y)`` over the data in batches, concatenated."""
        rows = self.rows(EVAL_ROWS) if batch_size is None else batch_size
        return np.concatenate([out for _, out in self.chunks(self.dataset(data), fn, rows)])

    def _label_tensor(self, label: int | None, n: int, start: int = 0) -> torch.Tensor | None:
        """Labels for generating with a conditional model: ``label`` for all, or each class in turn
        (from sample number ``start`` on)."""
        classes = self.model.n_classes
        if not classes:
            if label is not None:
                raise VaekitError(f"{option('label')} needs a conditional model; train with {option('model', 'cvae')}")
            return None
        if label is None:
            return torch.arange(start, start + n, device=self.device) % classes
        if not 0 <= label < classes:
            raise VaekitError(f"{option('label', label)} is not a class of this model; use 0 to {classes - 1}")
        return torch.full((n,), label, device=self.device)

    def to_data_units(self, x) -> np.ndarray:
        """Model-space values (N, C, H, W) or (N, D) back in the data's own layout and units
        (a standardised table is scaled back)."""
        x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
        cfg = self.config.data
        if cfg.mean is not None:  # in float64, which a column of 1e12 plus 1e3 needs
            x = x * np.asarray(cfg.std, np.float64) + np.asarray(cfg.mean, np.float64)
        return to_layout(x, cfg.layout)

    # -- what a trained model does ------------------------------------------------------------
    def encode(self, data=None) -> np.ndarray:
        """Latent codes (posterior means for a VAE), (N, latent_dim)."""
        return self._batches(data, self.model.codes)

    def decode(self, z, label: int | None = None) -> np.ndarray:
        """Decoded outputs (the likelihood mean) for codes ``z`` (N, latent_dim), in the data layout;
        ``label`` is the class for a conditional model (default: each class in turn)."""
        z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=self.device)
        if z.dim() != 2 or z.shape[1] != self.config.model.latent_dim:
            raise VaekitError(f"codes must have shape (N, {self.config.model.latent_dim}), got "
                              f"{tuple(z.shape)}")
        y = self._label_tensor(label, len(z))
        with torch.no_grad():
            out = self.model.decode_mean(z, y)
        return self.to_data_units(out.cpu().numpy())

    def reconstruct(self, data=None) -> np.ndarray:
        """The model's output for each input (the mean of p(x|z) at the code's mean), in the
        data's layout and units; a table with binary or categorical columns in its own columns,
        each category's most likely level (see :meth:`as_table`)."""
        return self.as_table(self.to_data_units(self._batches(data, self.model.reconstruct)), like=data)

    def impute(self, data, draws: int = IMPUTE_DRAWS, seed: int = 0) -> np.ndarray:
        """The table ``data`` with its missing cells (NaN, empty CSV cells) filled by the model
        from each row's observed cells, which are returned exactly as given; in the data's own
        units (float64). A VAE averages ``draws`` posterior draws weighted by how well each
        explains the observed cells (MIWAE); an AE reconstructs and refills a few times."""
        ds = self.table(data)
        rows = np.concatenate([rows for _, rows in self.impute_chunks(ds, draws, seed)])
        return self.as_table(rows, like=data, given=ds.given_rows(0, len(ds)))

    def as_table(self, rows: np.ndarray, like=None, given=None, draw: np.random.Generator | None = None):
        """Model rows (N, width) in the data's units as the table's own columns, where it has
        binary or categorical columns (:meth:`vaekit.data.Schema.decode`: ``given``, the columns
        as read, whose observed cells come back as they were; ``draw``, levels drawn rather than
        the most likely): a DataFrame where ``like`` is one (its index and, where they still
        fit, its column types), else an array of objects (N, columns). Other data as it is."""
        schema = self.config.data.table_schema()
        if schema is None:
            return rows
        columns = schema.decode(rows, given, draw)
        if not is_frame(like):
            return np.column_stack([columns[name] for name in schema.names]).astype(object)
        frame = type(like)(columns, index=like.index)
        for name in schema.names:
            try:  # a bool, Int64 or category column stays one where its values allow
                frame[name] = frame[name].astype(like[name].dtype)
            except (TypeError, ValueError):
                pass
        return frame

    def impute_chunks(self, ds, draws: int = IMPUTE_DRAWS, seed: int = 0):
        """(start, filled rows) of a table dataset in its own units (:meth:`dataset` with
        ``units=False``), a chunk at a time: :meth:`impute` for data of any size."""
        cfg = self.config.data
        g = torch.Generator(device=self.device).manual_seed(seed)
        with torch.no_grad():
            for start, raw in ds.chunks(self.rows(EVAL_ROWS), values=True):
                raw = raw.double()
                x = raw if cfg.mean is None else standardize(raw, cfg.mean, cfg.std)
                y = ds.labels(slice(start, start + len(raw)), self.model)
                filled = self.model.impute(x.float().to(self.device), draws, g,
                                           y=None if y is None else y.to(self.device))
                out = self.to_data_units(filled.cpu().numpy())
                given = raw.numpy()
                yield start, np.where(np.isnan(given), out, given)

    def table(self, data):
        """The table ``data`` in its own units (:meth:`dataset` with ``units=False``), read on
        demand where it is a file; for :meth:`impute_chunks`."""
        if self.config.data.layout != TABULAR:
            raise VaekitError("impute fills the missing cells of a table; this run was trained on images")
        return self.dataset(data, lazy=True, units=False)

    def denoise(self, data) -> np.ndarray:
        """Clean copies of noisy ``data``: the reconstruction of a model trained with ``noise``
        (corrupted input, clean target). Returns the data layout."""
        return self.reconstruct(data)

    def sample(self, n: int = 64, seed: int = 0, temperature: float = 1.0, label: int | None = None,
               prior: str | None = None) -> np.ndarray:
        """``n`` new samples in the data layout, from codes drawn from ``prior``: ``normal``
        (N(0, I)), ``gmm`` or ``flow`` (densities fitted to the training codes, see
        :mod:`vaekit.priors`), ``autoregressive`` (a VQ-VAE's prior over its grid of symbols); by
        default the run's own (``config.model.prior``). A conditional
        model draws class ``label`` (default: each class in turn); its ``gmm`` is its classes'
        Gaussians."""
        rows = np.concatenate(list(self.sample_chunks(n, seed, temperature, label, prior)))
        return self.as_table(rows, draw=np.random.default_rng(seed))  # a table's categories drawn

    def sample_chunks(self, n: int, seed: int = 0, temperature: float = 1.0, label: int | None = None,
                      prior: str | None = None, chunk: int | None = None):
        """:meth:`sample`'s ``n`` samples a chunk of at most ``chunk`` at a time (default: at most
        :data:`SAMPLE_CHUNK`, as many as a training batch's memory holds), from one seeded
        generator (so any number of them needs only a chunk's memory; ``sample`` is these chunks
        joined, and up to ``chunk`` samples are one draw)."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise VaekitError(f"the number of samples must be a whole number of at least 1, got {n!r}")
        check_prior(prior)
        check_seed(seed)
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise VaekitError(f"{option('temperature')} must be a positive number, got {temperature}")
        g = torch.Generator(device=self.device).manual_seed(seed)
        chunk = self.rows(SAMPLE_CHUNK) if chunk is None else chunk
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            y = self._label_tensor(label, m, start)  # each class in turn carries on across chunks
            out = self.model.sample(m, generator=g, temperature=temperature, y=y, prior=prior)
            yield self.to_data_units(out.cpu().numpy())

    @property
    def can_sample(self) -> bool:
        """Whether the model has a prior to draw new samples from (an AE trained before vaekit
        fitted priors has none)."""
        return self.model.default_prior in self.model.sampling_priors

    def interpolate(self, data, i: int, j: int, steps: int = 10, method: str = "lerp") -> np.ndarray:
        """Decoded points on the path between the codes of samples ``i`` and ``j`` (endpoints included).

        ``lerp`` walks the straight line; ``slerp`` the great circle, which keeps the norm a
        Gaussian prior expects of a code. Returns (steps, ...) in the data layout.
        """
        ds = self.dataset(data)
        for name, index in (("i", i), ("j", j)):
            if not 0 <= index < len(ds):
                raise VaekitError(f"{option(name, index)} is out of range: {ds.name} has samples 0 to {len(ds) - 1}")
        if steps < 2:
            raise VaekitError(f"{option('steps')} must be at least 2 (the two endpoints), got {steps}")
        if method not in INTERPOLATIONS:
            raise VaekitError(f"unknown interpolation {method!r}; choose one of {', '.join(INTERPOLATIONS)}")
        pair = torch.tensor([i, j])
        y = ds.labels(pair, self.model)
        with torch.no_grad():
            ends = self.model.codes(ds.batch(pair).to(self.device), None if y is None else y.to(self.device))
            path = INTERPOLATIONS[method](ends[0], ends[1], torch.linspace(0, 1, steps, device=self.device))
        # A conditional model decodes the whole path as the first input's class.
        return self.decode(path.cpu().numpy(), label=None if y is None else int(y[0]))

    def evaluate(self, data=None, iw_samples: int | None = None, seed: int = 0) -> dict:
        """Metrics per sample (see :func:`vaekit.evaluation.evaluate`)."""
        if iw_samples is not None and iw_samples < 1:
            raise VaekitError(f"{option('iw_samples')} must be at least 1, got {iw_samples}")
        check_seed(seed)
        return evaluate_model(self.model, self.dataset(data), self.rows(EVAL_ROWS), iw_samples=iw_samples, seed=seed)

    def sample_quality(self, n: int = 2000, data=None, prior: str | None = None, seed: int = 0,
                       temperature: float = 1.0) -> dict:
        """How close new samples come to real images (:mod:`vaekit.sample_quality`): FID,
        precision and recall of ``n`` samples against ``n`` images of ``data`` (default: the
        validation split; ``n`` is cut to its size), and the same three for as many training
        images against those (``*_floor``, the noise floor: what a perfect model would score at
        these sizes)."""
        from .sample_quality import MIN_IMAGES, compare, generated_features, real_features

        if n < MIN_IMAGES:
            raise VaekitError(f"sample quality needs at least {MIN_IMAGES} samples, got {n}; use hundreds")
        check_seed(seed)
        if self.config.data.layout == "tabular":
            raise VaekitError("sample quality (FID, precision, recall) is measured on images; this run models a table")
        held = self.dataset(data, binarize=False)
        n = min(n, len(held))  # as many samples as real images: FID depends on both sizes
        real = held.batch(torch.randperm(len(held), generator=torch.Generator().manual_seed(seed))[:n].sort().values)
        fake = np.concatenate([self.sample(min(1000, n - i), seed=(seed + i) % SEED_MAX, temperature=temperature,
                                           prior=prior)
                               for i in range(0, n, 1000)])  # in the data's layout, which the features read
        held_features = real_features(real)
        out = {"n_samples": n, "n_real": len(real), "prior": prior or self.model.default_prior,
               **compare(held_features, generated_features(fake))}
        if data is None and self.config.data.spec != ARRAY_SPEC:
            train = self._training_images(len(real), seed)
            if train is not None:
                out.update({f"{k}_floor": v for k, v in compare(held_features, real_features(train)).items()})
        return out

    def _training_images(self, n: int, seed: int) -> torch.Tensor | None:
        """``n`` images of the run's training split (None where it is smaller than that)."""
        cfg = self.config
        read = open_lazy if cfg.data.storage == "stream" else load_dataset
        full = read(cfg.data.spec, cfg.data.image_size)
        train, _ = full.split(cfg.data.val_fraction, cfg.train.seed)
        train = checked(train, cfg)
        if len(train) < n:
            return None
        g = torch.Generator().manual_seed((seed + 1) % SEED_MAX)
        return train.batch(torch.randperm(len(train), generator=g)[:n])

    def metrics(self) -> list[dict]:
        return RunFolder(self.path).metrics() if self.path else []


def load(run_dir, device: str = "auto") -> Run:
    """The trained model of a run folder, ready to encode, reconstruct, sample and evaluate."""
    folder = RunFolder.open(run_dir)
    if folder.kind == "detector":  # its network works in the detector's robust units, not a run's
        raise VaekitError(f"{folder.path} is an anomaly detector (vaekit detect fit); score data with vaekit detect "
                          "score, or give a run folder written by vaekit train")
    config = RunConfig.load(folder.file(CONFIG))
    try:
        model = build_model(config.model)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise VaekitError(f"{folder.file(CONFIG)} describes no buildable model ({e}); retrain the run") from None
    folder.load_weights(model)
    return Run(model, config, folder.path, distributed.device_for(resolve_device(device), distributed.current()))


def __getattr__(name: str):
    if name == "train":  # vaekit.run.train, where it was before training moved to vaekit.orchestrate
        from .orchestrate import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
