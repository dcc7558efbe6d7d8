"""Training a run folder, from data spec to trained :class:`~vaekit.run.Run`: opening and
preparing the data, training on every rank (rank 0 writes the folder), resuming, and the
pictures and report at the end. ``train`` is the entry point; ``vaekit.train`` is this.
"""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from . import distributed, likelihoods
from .config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    denoiser_defaults,
    hvae_defaults,
    table_schedule,
    vqvae_options,
)
from .data import (
    Dataset,
    LazyDataset,
    absolute_spec,
    as_dataset,
    check_resizable,
    default_memory_budget,
    is_image_folder,
    open_dataset,
    open_source,
)
from .data.dataset import TABULAR, from_layout
from .distributed import World
from .errors import VaekitError, option
from .footprint import EVAL_ROWS, check_fits, estimate
from .images import save_grid, save_pairs
from .models import attach_priors, build_model
from .models.vqvae import vqvae_code_size
from .priors import default_prior, fit_priors, fitted_priors
from .run import ARRAY_SPEC, BINARIZE_SEED, Run
from .runfolder import (
    CONFIG,
    RECONSTRUCTIONS,
    SAMPLES,
    STATE,
    RunFolder,
    RunLock,
    finish_hint,
    foreign_state,
    resume_hint,
)
from .tensorboard_log import log_missing, log_pictures, log_scalars, open_board
from .training import Trainer, resolve_device
from .units import checked, in_model_units, standardization


def default_out(model: str, spec: str) -> Path:
    name = Path(spec.rstrip("/\\")).stem if any(c in spec for c in "/\\.") else spec
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "data"
    return Path("runs") / f"{model}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def write_pictures(run: Run, folder: RunFolder, data: Dataset) -> None:
    """``reconstructions.png`` (inputs above outputs) and ``samples.png`` (64 samples from the run's prior)."""
    if data.kind != "image":
        return  # tabular data has no picture; its report shows per-feature errors instead
    layout = run.config.data.layout
    shown = data.subset(torch.arange(min(32, len(data))))
    save_pairs(folder.file(RECONSTRUCTIONS), shown.batch().numpy(), from_layout(run.reconstruct(shown), layout))
    if run.can_sample:
        save_grid(folder.file(SAMPLES), from_layout(run.sample(64, seed=0), layout), ncol=run.model.n_classes or None)


def _open(config: RunConfig, array, world: World) -> tuple[Dataset | LazyDataset, RunConfig]:
    """The training data: an array as given, a spec in memory where it fits the memory budget and
    streamed otherwise; the config records which and why."""
    if array is not None:
        dataset = as_dataset(array, config.data.image_size, ARRAY_SPEC, column_types=config.data.column_types)
        reason = "in memory: an array passed in"
    else:
        budget = config.train.memory_budget or default_memory_budget(world.local_size)
        dataset, reason = open_dataset(config.data.spec, config.data.image_size, budget, config.data.column_types)
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
    schema = config.data.table_schema()
    if array is not None:
        dataset = as_dataset(array, config.data.image_size, ARRAY_SPEC, schema, config.data.column_types)
    else:
        source = open_source(config.data.spec, config.data.image_size, schema, config.data.column_types)
        dataset = LazyDataset(source) if config.data.storage == "stream" else source.load()
    return checked(dataset, config)


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
    code = {"latent_dim": vqvae_code_size(dataset.sample_shape, config.model.hidden_dims)} \
        if config.model.model == "vqvae" else {}
    schema = dataset.schema
    model = replace(config.model, input_shape=dataset.sample_shape, likelihood=likelihood, n_classes=n_classes,
                    prior=config.model.prior or default_prior(config.model.model),
                    blocks=schema.blocks() if schema is not None else (), **code)
    data_cfg = replace(config.data, layout=dataset.layout, schema=schema.to_json() if schema is not None else None,
                       columns=list(dataset.columns) if dataset.columns else None,
                       class_names=list(dataset.class_names) if dataset.class_names else None)
    return replace(config, model=model, data=data_cfg), dataset


def _fit(config: RunConfig, dataset, path: Path, state: dict | None, world: World, device: torch.device,
         report: bool = True) -> Run:
    """Train on every rank; rank 0 alone writes the run folder (checkpoints, metrics, pictures)."""
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, priors=False)
    if config.train.binarize == "fixed":
        dataset = dataset.binarized(config.train.seed)
    train_data, val_data = dataset.split(config.data.val_fraction, config.train.seed)
    if config.train.binarize == "dynamic" and val_data is not None:
        val_data = val_data.binarized(BINARIZE_SEED)

    folder = RunFolder(path)
    board = open_board(folder) if config.train.tensorboard and world.is_main else None
    if board is not None and state is not None:
        log_missing(board, folder)

    def on_epoch(metrics: dict, trainer: Trainer, improved: bool) -> None:
        if not world.is_main:
            return
        if improved:
            folder.save_weights(trainer.model, config)
        folder.save_epoch(trainer.state_dict(), metrics)
        if board is not None:
            log_scalars(board, metrics)

    rows = estimate(config.model, _batch(config, len(train_data))).rows(EVAL_ROWS)  # validated and encoded at a time
    trainer = Trainer(model, config.train, device, on_epoch=on_epoch, world=world, run_folder=folder.path,
                      eval_rows=rows)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.fit(train_data, val_data)
    distributed.resume_hint = finish_hint(folder.path)  # if stopped from here on
    # The best epoch's weights, which rank 0 saved; the other ranks may not see its disk.
    best = world.on_main(lambda: folder.load_weights(model) or model.state_dict())
    if not world.is_main:
        model.load_state_dict(best)
    # Densities over the codes, to sample from (vaekit.priors): every rank fits the same ones
    # (same data, same seed) so that each returns a Run that samples alike; rank 0 saves them.
    if fitted_priors(config.model):
        fit_priors(attach_priors(model, config.model).to(device), train_data, seed=config.train.seed,
                   batch_size=rows, progress=config.train.progress)
        if world.is_main:
            folder.save_weights(model, config)
    run = Run(model, config, folder.path, device)
    if not world.is_main:
        return run
    write_pictures(run, folder, val_data if val_data is not None else train_data)
    if board is not None:
        log_pictures(board, folder, len(run.metrics()))
    if report and config.data.spec != ARRAY_SPEC:  # the report shows the validation data, which it reloads
        from .report import write_run_report

        write_run_report(run)
    return run


def _unfinished(folder: RunFolder, config: RunConfig) -> bool:
    """Whether a run that trained all its epochs stopped before the end of training: its priors
    fitted and saved, its pictures drawn (the report is optional, ``report=False``)."""
    if not folder.file(RECONSTRUCTIONS).exists():
        return True
    kinds = fitted_priors(config.model)
    if not kinds:
        return False
    model = build_model(config.model)
    try:
        folder.load_weights(model)
    except VaekitError:
        return True
    return model.unfinished or set(model.priors) != set(kinds)


def _check_fits(config: RunConfig, device: torch.device, world: World, rows: int) -> None:
    """Refuse a run whose training would not fit this device's free memory (vaekit.footprint);
    ``rows``: the data's, which bound a batch."""
    folder = Path(config.data.spec).expanduser()
    check_fits(config.model, _batch(config, rows), device, world.local_size,
               image_folder=folder.is_dir() and is_image_folder(folder))


def _batch(config: RunConfig, rows: int) -> int:
    """The largest batch training takes from ``rows`` rows: a batch size past them takes them all."""
    return max(1, min(config.train.batch_size, rows))


def _fits(model, weights: dict) -> bool:
    try:
        model.load_state_dict(weights)
    except (RuntimeError, ValueError, KeyError, TypeError):
        return False
    return True


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
    vqvae_options(groups[ModelConfig])
    config = RunConfig(model=ModelConfig(**denoiser_defaults(groups[ModelConfig], groups[TrainConfig].get("noise"))),
                       data=DataConfig(spec=str(spec), **groups[DataConfig]),
                       train=TrainConfig(**hvae_defaults(groups[ModelConfig], groups[TrainConfig])))
    config.validate()
    config.check_options_apply()
    world, device = _devices(config)
    config = replace(config, train=replace(config.train, world_size=world.size,
                                           progress=config.train.progress and world.is_main))
    array = None if isinstance(data, (str, os.PathLike)) or data is None else data
    prepared = {}

    def setup():
        cfg, prepared["data"] = _prepare(config, array, world)
        if cfg.data.layout == TABULAR:  # a table's epochs and patience where not given: counted in steps
            cfg = replace(cfg, train=table_schedule(cfg.train, len(prepared["data"]), cfg.data.val_fraction,
                                                    groups[TrainConfig]))
        _check_fits(cfg, device, world, len(prepared["data"]))  # before a folder is made
        folder = RunFolder.create(out if out is not None else default_out(cfg.model.model, cfg.data.spec))
        prepared["lock"] = RunLock(folder.path)
        prepared["lock"].clear_temporaries(folder.path)  # of a run trained anew into its folder
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
        prepared["lock"].clear_temporaries(folder.path)
        config = RunConfig.load(folder.file(CONFIG))
        config = replace(config, train=replace(config.train, **options, world_size=world.size))
        config.validate()
        # a device this machine lacks, or too little memory on it: refused before config.json changes
        rows = len(open_source(config.data.spec, config.data.image_size)) if config.data.spec != ARRAY_SPEC else 1
        _check_fits(config, resolve_device(config.train.device), world, rows)
        # A run stopped before its first checkpoint has nothing to continue: it starts from the beginning.
        state = folder.load_state() if folder.file(STATE).exists() or folder.metrics() else None
        if state is not None and not _fits(build_model(config.model, priors=False), state["model"]):  # before any write
            raise foreign_state(folder.file(STATE))
        # the metrics lines of the checkpoint's epochs: a run stopped between its last checkpoint
        # and its metrics line gets the line back, even where it has nothing left to train
        folder.restore_metrics(state)
        if state is None:
            if config.train.progress:
                print(f"vaekit: {run_dir} has no checkpoint yet; training it from the first epoch", file=sys.stderr)
        elif (state["stopped_early"] or state["epoch"] >= config.train.epochs) and not _unfinished(folder, config):
            if state["stopped_early"]:
                raise VaekitError(f"{run_dir} stopped early (validation loss no longer improved); start a new run "
                                  "to train more")
            raise VaekitError(f"{run_dir} already trained {state['epoch']} epochs; pass {option('epochs')} "
                              f"greater than {state['epoch']} to train on")
        # else: trained, but stopped before its priors or pictures were written: finished below
        if config.data.spec == ARRAY_SPEC:
            raise VaekitError(f"{run_dir} was trained on an in-memory array, which the run folder does not "
                              "hold; start a new run")
        dataset, config = _open(config, None, world)
        prepared["data"] = checked(dataset, config)
        folder.save_config(config)
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
