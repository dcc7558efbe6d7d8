"""The Python API: ``train(...) -> Run`` and ``load(run_dir) -> Run``."""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from . import distributed, likelihoods
from .config import DataConfig, ModelConfig, RunConfig, TrainConfig, denoiser_defaults
from .data import (
    Dataset,
    LazyDataset,
    absolute_spec,
    as_dataset,
    check_resizable,
    default_memory_budget,
    load_dataset,
    open_dataset,
    open_lazy,
    open_source,
)
from .data.dataset import from_layout, to_layout
from .distributed import World
from .errors import VaekitError, option
from .evaluation import evaluate as evaluate_model
from .images import save_grid, save_pairs
from .models import build_model
from .models.base import LatentModel
from .runfolder import CONFIG, RECONSTRUCTIONS, SAMPLES, STATE, RunFolder, RunLock, resume_hint
from .training import Trainer, resolve_device

BINARIZE_SEED = 2016  # the one fixed binarisation of evaluation data
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

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, model={self.config.model.model!r}, data={self.config.data.spec!r})"

    # -- data -----------------------------------------------------------------------------
    def dataset(self, data=None, lazy: bool | None = None) -> Dataset | LazyDataset:
        """The dataset for ``data``, checked against the model's input shape, in model units.

        With ``data=None``: the run's validation split (or its training data when it had none).
        ``lazy=True`` reads a spec's samples only as they are used (bounded memory); by default
        that is done for the run's own data when training had to stream it.
        """
        image_size = self.config.data.image_size
        if data is None:
            if self.config.data.spec == ARRAY_SPEC:
                raise VaekitError("this run was trained on an in-memory array, which the run folder does "
                                  "not hold; pass the data to use")
            if lazy is None:
                lazy = self.config.data.storage == "stream"
            spec = self.config.data.spec
            full = open_lazy(spec, image_size) if lazy else load_dataset(spec, image_size)
            train, val = full.split(self.config.data.val_fraction, self.config.train.seed)
            ds = val if val is not None else train
        elif lazy and isinstance(data, (str, os.PathLike)):
            ds = open_lazy(str(data), image_size)
        else:
            ds = as_dataset(data, image_size, name="input")
        ds = _checked(ds, self.config)
        if self.model.n_classes and ds.y is not None and int(ds.y.max()) >= self.model.n_classes:
            raise VaekitError(f"{ds.name} has labels up to {int(ds.y.max())}, but the model knows classes 0 to "
                              f"{self.model.n_classes - 1}")
        if self.config.train.binarize:  # evaluate on one fixed draw, as the literature does
            ds = ds.binarized(BINARIZE_SEED)
        return ds

    def chunks(self, ds, fn, batch_size: int = 4096):
        """(start, ``fn(x, y)`` as a NumPy array) over a dataset from :meth:`dataset`, chunk by
        chunk in order (y: labels for a conditional model, else None): bounded memory for any size."""
        with torch.no_grad():
            for start, x in ds.chunks(batch_size):
                y = ds.labels(slice(start, start + len(x)), self.model)
                yield start, fn(x.to(self.device), None if y is None else y.to(self.device)).cpu().numpy()

    def _batches(self, data, fn, batch_size: int = 1024) -> np.ndarray:
        """``fn(x, y)`` over the data in batches, concatenated."""
        return np.concatenate([out for _, out in self.chunks(self.dataset(data), fn, batch_size)])

    def _label_tensor(self, label: int | None, n: int) -> torch.Tensor | None:
        """Labels for generating with a conditional model: ``label`` for all, or each class in turn."""
        classes = self.model.n_classes
        if not classes:
            if label is not None:
                raise VaekitError(f"{option('label')} needs a conditional model; train with {option('model', 'cvae')}")
            return None
        if label is None:
            return torch.arange(n, device=self.device) % classes
        if not 0 <= label < classes:
            raise VaekitError(f"{option('label', label)} is not a class of this model; use 0 to {classes - 1}")
        return torch.full((n,), label, device=self.device)

    def to_data_units(self, x) -> np.ndarray:
        """Model-space values (N, C, H, W) or (N, D) back in the data's own layout and units
        (a standardised table is scaled back)."""
        x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
        cfg = self.config.data
        if cfg.mean is not None:
            x = x * np.asarray(cfg.std, np.float32) + np.asarray(cfg.mean, np.float32)
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
        return self.to_data_units(self._batches(data, self.model.reconstruct))

    def denoise(self, data) -> np.ndarray:
        """Clean copies of noisy ``data``: the reconstruction of a model trained with ``noise``
        (corrupted input, clean target). Returns the data layout."""
        return self.reconstruct(data)

    def sample(self, n: int = 64, seed: int = 0, temperature: float = 1.0, label: int | None = None) -> np.ndarray:
        """``n`` new samples from the prior, in the data layout; a conditional model draws
        class ``label`` (default: each class in turn), from where that class's codes lie
        (:meth:`~vaekit.models.VAE.fit_class_codes`)."""
        if n < 1:
            raise VaekitError(f"the number of samples must be at least 1, got {n}")
        y = self._label_tensor(label, n)
        g = torch.Generator(device=self.device).manual_seed(seed)
        return self.to_data_units(self.model.sample(n, generator=g, temperature=temperature, y=y).cpu().numpy())

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
        return evaluate_model(self.model, self.dataset(data), iw_samples=iw_samples, seed=seed)

    def metrics(self) -> list[dict]:
        return RunFolder(self.path).metrics() if self.path else []


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points (T, D) on the line from a to b at fractions t (T,)."""
    return a + t[:, None] * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points (T, D) on the arc from a to b (spherical linear interpolation)."""
    na, nb = a.norm(), b.norm()
    cos = torch.dot(a / na.clamp_min(1e-12), b / nb.clamp_min(1e-12)).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:  # (nearly) the same direction: the line is the arc
        return lerp(a, b, t)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


INTERPOLATIONS = {"lerp": lerp, "slerp": slerp}


def _describe_shape(shape: tuple[int, ...], layout: str) -> str:
    if layout == "gray":
        return f"{shape[1]}x{shape[2]} grayscale images"
    if layout == "channel-last":
        return f"{shape[1]}x{shape[2]}x{shape[0]} images"
    return f"{shape[0]} features" if len(shape) == 1 else str(shape)


def in_model_units(ds: Dataset, config: RunConfig) -> Dataset:
    """``ds`` standardised with the run's training statistics, if the run standardises (and
    ``ds`` is not already)."""
    if config.data.mean is None or ds.is_standardized:
        return ds
    return ds.standardized(config.data.mean, config.data.std)


def standardization(dataset: Dataset, config: RunConfig) -> tuple[list[float], list[float]] | None:
    """Mean and std of the training split's features, for a table that needs standardising."""
    lo, hi = dataset.value_range()
    if dataset.kind != "tabular" or not config.data.standardize or (lo >= 0 and hi <= 1):
        return None
    train, _ = dataset.split(config.data.val_fraction, config.train.seed)
    mean, std = train.feature_stats()
    return mean.tolist(), std.tolist()


def check_shape(ds: Dataset, config: RunConfig) -> None:
    """Data for a trained model must have the shape it was trained on."""
    expected = tuple(config.model.input_shape)
    if ds.sample_shape != expected:
        raise VaekitError(f"{ds.name}: samples are {_describe_shape(ds.sample_shape, ds.layout)} but the model "
                          f"was trained on {_describe_shape(expected, config.data.layout)}; give data like "
                          "the training data")


def default_out(model: str, spec: str) -> Path:
    name = Path(spec.rstrip("/\\")).stem if any(c in spec for c in "/\\.") else spec
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "data"
    return Path("runs") / f"{model}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def write_pictures(run: Run, folder: RunFolder, data: Dataset) -> None:
    """``reconstructions.png`` (inputs above outputs) and ``samples.png`` (64 prior samples)."""
    if data.kind != "image":
        return  # tabular data has no picture; its report shows per-feature errors instead
    layout = run.config.data.layout
    shown = data.subset(torch.arange(min(32, len(data))))
    save_pairs(folder.file(RECONSTRUCTIONS), shown.batch().numpy(), from_layout(run.reconstruct(shown), layout))
    if run.model.generative:
        save_grid(folder.file(SAMPLES), from_layout(run.sample(64, seed=0), layout), ncol=run.model.n_classes or None)


def _tensorboard(folder: RunFolder):
    """A SummaryWriter into RUN/tensorboard (TensorBoard is imported only when asked for)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise VaekitError(f"{option('tensorboard')} needs the tensorboard package; pip install tensorboard") from None
    return SummaryWriter(log_dir=str(folder.file("tensorboard")))


def _log_pictures(board, folder: RunFolder, step: int) -> None:
    from PIL import Image

    for name in (RECONSTRUCTIONS, SAMPLES):
        if folder.file(name).exists():
            picture = np.asarray(Image.open(folder.file(name)).convert("RGB"))
            board.add_image(name.removesuffix(".png"), picture, step, dataformats="HWC")
    board.close()


def _open(config: RunConfig, array, world: World) -> tuple[Dataset | LazyDataset, RunConfig]:
    """The training data: an array as given, a spec in memory where it fits the memory budget and
    streamed otherwise; the config records which and why."""
    if array is not None:
        dataset, reason = as_dataset(array, config.data.image_size, ARRAY_SPEC), "in memory: an array passed in"
    else:
        budget = config.train.memory_budget or default_memory_budget(world.local_size)
        dataset, reason = open_dataset(config.data.spec, config.data.image_size, budget)
    storage = "stream" if isinstance(dataset, LazyDataset) else "memory"
    if storage == "stream" and config.train.binarize == "fixed":
        raise VaekitError(f"{option('binarize', 'fixed')} needs the data in memory, but it is {reason}; use "
                          f"{option('binarize', 'dynamic')} or a larger {option('memory_budget')}")
    if config.train.progress:
        print(f"vaekit: data {reason}", file=sys.stderr)
    return dataset, replace(config, data=replace(config.data, storage=storage, storage_reason=reason))


def _reopen(config: RunConfig, array=None) -> Dataset | LazyDataset:
    """The training data as ``config`` describes it, in model units (for the ranks that did not
    prepare it)."""
    if array is not None:
        dataset = as_dataset(array, config.data.image_size, ARRAY_SPEC)
    else:
        source = open_source(config.data.spec, config.data.image_size)
        dataset = LazyDataset(source) if config.data.storage == "stream" else source.load()
    return _checked(dataset, config)


def _checked(dataset, config: RunConfig):
    """Data like the run's training data (else a clear error), in the model's units."""
    check_shape(dataset, config)
    return in_model_units(dataset, config)


def _prepare(config: RunConfig, array, world: World) -> tuple[RunConfig, Dataset | LazyDataset]:
    """Open the data and fill in what the config takes from it (shape, layout, likelihood, storage)."""
    dataset, config = _open(config, array, world)
    if config.train.binarize:
        dataset.check_binarizable()  # before a folder is made
    stats = standardization(dataset, config)
    if stats is not None:
        config = replace(config, data=replace(config.data, mean=stats[0], std=stats[1]))
        dataset = in_model_units(dataset, config)
    likelihood = likelihoods.choose(config.model.likelihood, dataset.value_range())
    n_classes = 0
    if config.model.model == "cvae":
        n_classes = int(dataset.require_labels().max()) + 1
    model = replace(config.model, input_shape=dataset.sample_shape, likelihood=likelihood, n_classes=n_classes)
    data_cfg = replace(config.data, layout=dataset.layout,
                       columns=list(dataset.columns) if dataset.columns else None)
    return replace(config, model=model, data=data_cfg), dataset


def _fit(config: RunConfig, dataset, path: Path, state: dict | None, world: World, device: torch.device,
         report: bool = True) -> Run:
    """Train on every rank; rank 0 alone writes the run folder (checkpoints, metrics, pictures)."""
    torch.manual_seed(config.train.seed)
    model = build_model(config.model)
    if config.train.binarize == "fixed":
        dataset = dataset.binarized(config.train.seed)
    train_data, val_data = dataset.split(config.data.val_fraction, config.train.seed)
    if config.train.binarize == "dynamic" and val_data is not None:
        val_data = val_data.binarized(BINARIZE_SEED)

    folder = RunFolder(path)
    board = _tensorboard(folder) if config.train.tensorboard and world.is_main else None

    def on_epoch(metrics: dict, trainer: Trainer, improved: bool) -> None:
        if not world.is_main:
            return
        if improved:
            folder.save_weights(trainer.model, config)
        folder.save_state(trainer.state_dict())
        folder.append_metrics(metrics)
        if board is not None:
            for key in ("train_loss", "val_loss", "recon", "kl", "val_recon", "val_kl", "kl_weight", "samples_per_s"):
                if metrics.get(key) is not None:
                    board.add_scalar(key, metrics[key], metrics["epoch"])

    trainer = Trainer(model, config.train, device, on_epoch=on_epoch, world=world, run_folder=folder.path)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.fit(train_data, val_data)
    # The best epoch's weights, which rank 0 saved; the other ranks may not see its disk.
    best = world.on_main(lambda: folder.load_weights(model) or model.state_dict())
    if not world.is_main:
        model.load_state_dict(best)
    run = Run(model, config, folder.path, device)
    if not world.is_main:
        return run
    if model.n_classes:  # where each class's codes lie, for sampling; saved with the weights
        model.eval().fit_class_codes(_labelled_batches(train_data, model, device))
        folder.save_weights(model, config)
    write_pictures(run, folder, val_data if val_data is not None else train_data)
    if board is not None:
        _log_pictures(board, folder, len(run.metrics()))
    if report and config.data.spec != ARRAY_SPEC:  # the report shows the validation data, which it reloads
        from .report import write_run_report

        write_run_report(run)
    return run


def _labelled_batches(data, model, device: torch.device, size: int = 1024):
    for start in range(0, len(data), size):
        rows = slice(start, start + size)
        yield data.batch(rows).to(device), data.labels(rows, model).to(device)


def _devices(config: RunConfig) -> tuple[World, torch.device]:
    """Join torchrun's process group if this process is one of several; this rank's device."""
    device = resolve_device(config.train.device)
    world = distributed.join(config.train.dist_timeout)
    return world, distributed.device_for(device, world)


def train(data=None, *, out=None, resume=None, report: bool = True, **options) -> Run:
    """Train a model and write its run folder; returns the trained :class:`Run`.

    ``data`` is a spec (default ``'mnist-5k'``) or an array. Options are the fields of
    :class:`~vaekit.config.ModelConfig`, :class:`~vaekit.config.DataConfig` and
    :class:`~vaekit.config.TrainConfig` (``model``, ``latent_dim``, ``epochs``, ``lr`` ...).
    ``resume`` continues an earlier run folder (``epochs`` may be raised). ``report=False``
    skips writing ``report.html`` (``vaekit report`` writes it later).

    Started by torchrun, every process calls this; they train one model together with
    DistributedDataParallel and rank 0 writes the run folder.
    """
    if resume is not None:
        if out is not None:
            raise VaekitError(f"{option('out')} cannot go with {option('resume')}: a run continues in its own "
                              f"folder, {resume}; drop {option('out')}")
        return _resume(resume, data=data, report=report, **options)
    groups = {cls: {k: v for k, v in options.items() if k in cls.__dataclass_fields__}
              for cls in (ModelConfig, DataConfig, TrainConfig)}
    unknown = set(options) - set().union(*map(set, groups.values()))
    if unknown:
        raise VaekitError(f"unknown option(s) {', '.join(sorted(unknown))}")
    spec = data if isinstance(data, (str, os.PathLike)) else ("mnist-5k" if data is None else ARRAY_SPEC)
    check_resizable(spec, groups[DataConfig].get("image_size"))
    spec = absolute_spec(spec)  # the run folder then finds its data from any working directory
    config = RunConfig(model=ModelConfig(**denoiser_defaults(groups[ModelConfig], groups[TrainConfig].get("noise"))),
                       data=DataConfig(spec=str(spec), **groups[DataConfig]),
                       train=TrainConfig(**groups[TrainConfig]))
    config.validate()
    config.check_options_apply()
    world, device = _devices(config)
    config = replace(config, train=replace(config.train, world_size=world.size,
                                           progress=config.train.progress and world.is_main))
    array = None if isinstance(data, (str, os.PathLike)) or data is None else data
    prepared = {}

    def setup():
        cfg, prepared["data"] = _prepare(config, array, world)
        folder = RunFolder.create(out if out is not None else default_out(cfg.model.model, cfg.data.spec))
        prepared["lock"] = RunLock(folder.path)
        distributed.resume_hint = resume_hint(folder.path, 0)
        folder.save_config(cfg)
        return cfg, folder.path

    try:
        config, path = world.on_main(setup)
        dataset = world.agree(lambda: prepared["data"] if world.is_main else _reopen(config, array))
        return _fit(config, dataset, path, None, world, device, report=report)
    finally:
        if "lock" in prepared:
            prepared["lock"].release()


RESUMABLE = ("epochs", "patience", "time_budget", "device", "precision", "progress", "compile", "memory_budget",
             "workers", "dist_timeout")


def _resume(run_dir, data=None, report: bool = True, **options) -> Run:
    fixed = sorted(set(options) - set(RESUMABLE))
    if fixed or data is not None:
        raise VaekitError(f"{option('resume')} continues {run_dir} as configured; only {', '.join(RESUMABLE)} may "
                          f"change (got {', '.join(fixed or ['data'])})")
    TrainConfig(**options).validate()  # before joining, which uses dist_timeout
    world = distributed.join(options.get("dist_timeout", distributed.DEFAULT_TIMEOUT))
    prepared = {}

    def setup():
        folder = RunFolder.open(run_dir)
        prepared["lock"] = RunLock(folder.path)
        config = RunConfig.load(folder.file(CONFIG))
        config = replace(config, train=replace(config.train, **options, world_size=world.size))
        config.validate()
        # A run stopped before its first checkpoint has nothing to continue: it starts from the beginning.
        state = folder.load_state() if folder.file(STATE).exists() or folder.metrics() else None
        if state is None:
            if config.train.progress:
                print(f"vaekit: {run_dir} has no checkpoint yet; training it from the first epoch", file=sys.stderr)
        elif state["stopped_early"]:
            raise VaekitError(f"{run_dir} stopped early (validation loss no longer improved); start a new run "
                              "to train more")
        elif state["epoch"] >= config.train.epochs:
            raise VaekitError(f"{run_dir} already trained {state['epoch']} epochs; pass {option('epochs')} "
                              f"greater than {state['epoch']} to train on")
        if config.data.spec == ARRAY_SPEC:
            raise VaekitError(f"{run_dir} was trained on an in-memory array, which the run folder does not "
                              "hold; start a new run")
        dataset, config = _open(config, None, world)
        prepared["data"] = _checked(dataset, config)
        folder.save_config(config)
        folder.keep_metrics_through(0 if state is None else state["epoch"])
        return config, state, folder.path

    try:
        config, state, path = world.on_main(setup)
        world, device = _devices(config)
        config = replace(config, train=replace(config.train, progress=config.train.progress and world.is_main))
        dataset = world.agree(lambda: prepared["data"] if world.is_main else _reopen(config))
        return _fit(config, dataset, path, state, world, device, report=report)
    finally:
        if "lock" in prepared:
            prepared["lock"].release()


def load(run_dir, device: str = "auto") -> Run:
    """The trained model of a run folder, ready to encode, reconstruct, sample and evaluate."""
    folder = RunFolder.open(run_dir)
    config = RunConfig.load(folder.file(CONFIG))
    try:
        model = build_model(config.model)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise VaekitError(f"{folder.file(CONFIG)} describes no buildable model ({e}); retrain the run") from None
    folder.load_weights(model)
    return Run(model, config, folder.path, distributed.device_for(resolve_device(device), distributed.current()))
