"""The one trainer: seeded loop, validation, early stopping, checkpoints, one process or many.

Where the data fits in memory the hot loop takes each batch by indexing the dataset tensor
(already on the device), so there is no per-item Python work; data larger than memory is
streamed in shuffled windows by DataLoader workers (see :mod:`vaekit.data.lazy`). One
fused Adam step updates all parameters; under torchrun, DistributedDataParallel averages
the gradients of the ranks first.
"""
from __future__ import annotations

import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .config import TrainConfig
from .data import LazyDataset, default_memory_budget, shard
from .data.lazy import Loading, loader_errors
from .distributed import SINGLE, World, lost_contact
from .errors import TrainingDiverged, VaekitError, option
from .noise import Noise, parse_noise
from .objectives import KLWeights, LossTerms, loss_terms, within_fence
from .runfolder import STATE, foreign_state, resume_hint


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.split(":")[0] == "cuda" and not torch.cuda.is_available():
        raise VaekitError(f"{option('device', name)}: no CUDA GPU is available here; use cpu or auto")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise VaekitError(f"{option('device', name)}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                          "numbered from 0")
    if name == "mps" and not torch.backends.mps.is_available():
        raise VaekitError(f"{option('device', 'mps')}: Apple's MPS backend is not available here; "
                          "use cpu or auto")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' trains in bf16 mixed precision where the hardware has native bf16 matmuls
    (CUDA GPUs that support it; CPUs with AVX512-BF16 or AMX), in fp32 elsewhere.

    Mixed precision runs the matmuls in bf16 and keeps weights, optimizer and loss in fp32;
    on the classic VAE it trains about 1.5x faster on such a CPU to the same test loss
    (bench/quality.py, bench/train_speed.py). Evaluation always runs in fp32.
    """
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        try:
            native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        except AttributeError:  # older torch without these probes: stay safe
            native = False
        return "bf16" if native else "fp32"
    return "fp32"


def make_optimizer(model: torch.nn.Module, lr: float, fan_in: int | None = None) -> torch.optim.Adam:
    """Adam with the fused kernel (one update for all parameters) where the device has it.

    With ``fan_in``, a weight with more inputs per output than that learns at
    lr * sqrt(fan_in / its inputs). Adam moves every weight by about lr a step, whatever its
    gradient's size, so a unit's input moves with the number of weights feeding it: a
    step that suits 64 inputs throws the first layer of a 1,000-column table far off (a VAE
    detector's loss then grew a thousandfold on 9 of 15 image-embedding sets at 5e-3, and
    on none at 1.26e-3 in the first layer alone; bench/anomaly_adbench.py).
    """
    groups = {}
    for p in model.parameters():
        inputs = p[0].numel() if p.dim() > 1 else 1
        scale = 1.0 if fan_in is None or inputs <= fan_in else math.sqrt(fan_in / inputs)
        groups.setdefault(scale, []).append(p)
    params = [{"params": ps, "lr": lr * scale} for scale, ps in groups.items()]
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr)


VALIDATION_NOISE_SEED = 12345  # the same corruptions every epoch, so validation losses compare


@torch.no_grad()
def mean_terms(model, data, batch_size: int = 1024, noise: Noise | None = None, world=SINGLE,
               trim: float | None = None) -> dict[str, float]:
    """Average loss terms over a whole dataset, in eval mode (inputs corrupted by ``noise``);
    under DDP each rank takes its share and the sums are added up. With ``trim``, over the rows
    within that fence of each chunk (:func:`~vaekit.objectives.within_fence`), as training counts them."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums = torch.zeros(4, dtype=torch.float64)
    generator = torch.Generator(device=device).manual_seed(VALIDATION_NOISE_SEED + world.rank)
    part = shard(data, world)
    for start, x in part.chunks(batch_size):
        x = x.to(device)
        noisy = noise.apply(x, generator, clip=data.kind == "image") if noise is not None else x
        y = part.labels(slice(start, start + len(x)), model)
        t = loss_terms(model, noisy, x, y=None if y is None else y.to(device))
        n = len(x)
        if trim is not None:
            keep = within_fence(t.loss, trim)
            t, n = t.kept(keep), keep.sum().item()
        sums[:3] += torch.stack([t.loss.sum(), t.recon.sum(), t.kl.sum()]).double().cpu()
        sums[3] += n
    model.train(was_training)
    loss, recon, kl, n = world.all_reduce(sums).tolist()
    n = max(n, 1.0)
    return {"loss": loss / n, "recon": recon / n, "kl": kl / n}


class Objective(torch.nn.Module):
    """The model's training loss as a module, so DistributedDataParallel can wrap it: every
    model's objective (the IWAE bound too) then runs through one forward pass.

    ``forward_model`` is what the loss calls: the model, or its compiled forward pass (the
    same parameters, so it is not registered a second time).
    """

    def __init__(self, model: torch.nn.Module, compiled=None):
        super().__init__()
        self.model = model
        self.__dict__["forward_model"] = compiled if compiled is not None else model

    def use_eager(self) -> None:
        self.__dict__["forward_model"] = self.model

    def forward(self, noisy, x, weights, y) -> dict:
        # A dict, not the LossTerms dataclass: DDP must see the output tensors (with static_graph
        # it hooks its first step's gradient reduction onto them).
        return vars(self.model.objective(noisy, x, weights, y, forward=self.forward_model))


@dataclass
class TrainState:
    """What resuming needs beyond the config: where training stopped and how it was going."""

    epoch: int = 0                  # epochs completed
    seconds: float = 0.0            # training time so far (the budget counts this)
    best_loss: float = math.inf     # best validation (or training) loss so far
    bad_epochs: int = 0             # epochs since the best
    stopped_early: bool = False
    initial_loss: float | None = None  # the first batch's loss, before any step: the yardstick of divergence


# Training has diverged when its loss rises this many times its starting size above the start
# (or is no longer a number): a loss that only ever falls when training works, grown a
# thousandfold, will not come back.
DIVERGED = 1e3
DIVERGENCE_EVERY = 20  # steps between checks within an epoch (one process; under torchrun, once an epoch)


class Trainer:
    """Trains ``model`` on a dataset; after each epoch ``on_epoch(metrics, state, improved)`` runs.

    The run folder hooks into ``on_epoch`` to append metrics and checkpoint, so the trainer
    itself writes no files. Under torchrun (``world`` of several processes) the model is
    wrapped in DistributedDataParallel: every rank takes its part of each global batch of
    ``cfg.batch_size``, gradients are averaged, and every rank ends each epoch with the same
    weights, metrics and decisions (early stopping, time budget); ``on_epoch`` runs on all.
    """

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, device: torch.device, on_epoch=None,
                 world: World = SINGLE, run_folder=None, eval_rows: int = 1024):
        self.model = model.to(device)
        self.eval_rows = eval_rows  # validation's chunk (vaekit.footprint.Footprint.rows)
        self.run_folder = run_folder  # where the checkpoints go, named in errors that say how to resume
        self.cfg = cfg
        self.device = device
        self.world = world
        self.optimizer = make_optimizer(self.model, cfg.lr, cfg.lr_fan_in)
        self.generator = torch.Generator(device="cpu").manual_seed(cfg.seed)  # shuffling: the same on every rank
        self.noise = parse_noise(cfg.noise)
        self.noise_generator = torch.Generator(device=device)
        self._seed_rank_streams(0)
        self.state = TrainState()
        self.reading = (cfg.memory_budget or 1 << 30, 0)  # memory budget and workers; set by fit
        self.on_epoch = on_epoch
        self.bf16 = resolve_precision(cfg.precision, device) == "bf16"
        # What the loss calls: the model, or its compiled forward pass (an objective that does
        # not go through forward, as the IWAE bound, leaves it unused).
        compiled = torch.compile(self.model) if cfg.compile else None
        self.objective = Objective(self.model, compiled)
        self.step_objective = self.objective
        if world.size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # static_graph: every step uses the same parameters, so DDP learns once which ones the loss
            # never touches (an AE keeps a likelihood scale it does not train) instead of failing on them.
            # Construction also broadcasts rank 0's weights.
            self.step_objective = DistributedDataParallel(self.objective, static_graph=True)

    def _seed_rank_streams(self, epoch: int) -> None:
        """Seeds of the draws that differ between ranks (posterior samples, noise, binarisation).

        Rank 0 keeps the single-process streams, so one process reproduces exactly; other
        ranks get their own, fresh after a resume (their states are not checkpointed).
        """
        rank, seed = self.world.rank, self.cfg.seed
        if rank == 0:
            self.noise_generator.manual_seed(seed + 1)
            return
        noise_seed, torch_seed = np.random.SeedSequence([seed, rank, epoch]).generate_state(2, np.uint64).tolist()
        self.noise_generator.manual_seed(noise_seed)
        torch.manual_seed(torch_seed)

    # -- checkpointing ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "shuffle_rng": self.generator.get_state(), "noise_rng": self.noise_generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "epoch": self.state.epoch, "best_loss": self.state.best_loss,
                "bad_epochs": self.state.bad_epochs, "stopped_early": self.state.stopped_early,
                "seconds": self.state.seconds, "initial_loss": self.state.initial_loss}

    def load_state_dict(self, d: dict) -> None:
        try:
            self.model.load_state_dict(d["model"])
            self.optimizer.load_state_dict(d["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError):  # a checkpoint of another model
            raise foreign_state(Path(self.run_folder or ".") / STATE) from None
        self.generator.set_state(d["shuffle_rng"])
        self.noise_generator.set_state(d["noise_rng"])
        torch.set_rng_state(d["torch_rng"])
        if self.device.type == "cuda" and d["cuda_rng"] and len(d["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(d["cuda_rng"])
        self.state = TrainState(epoch=d["epoch"], best_loss=d["best_loss"], bad_epochs=d["bad_epochs"],
                                stopped_early=d["stopped_early"], seconds=d.get("seconds", 0.0),
                                initial_loss=d.get("initial_loss"))
        if self.world.rank:  # the checkpoint holds rank 0's streams
            self._seed_rank_streams(self.state.epoch)

    # -- the loop -------------------------------------------------------------------------------
    def kl_weights(self, epochs_done: float) -> KLWeights:
        """beta, scaled by the linear warm-up over the first ``kl_warmup`` epochs."""
        cfg = self.cfg
        ramp = min(1.0, epochs_done / cfg.kl_warmup) if cfg.kl_warmup > 0 else 1.0
        return KLWeights(beta=cfg.beta * ramp, free_bits=cfg.free_bits)

    def _loss(self, noisy, x, weights, y):
        if self.objective.forward_model is self.model:
            return self.step_objective(noisy, x, weights, y)
        try:
            return self.step_objective(noisy, x, weights, y)
        except Exception as e:  # no compiler here, or an unsupported operation: train eagerly
            if self.world.is_main:
                print(f"vaekit: --compile unavailable ({type(e).__name__}); training without it", file=sys.stderr)
            self.objective.use_eager()
            return self.step_objective(noisy, x, weights, y)

    def train_epoch(self, data, progress) -> dict[str, float]:
        """One pass over ``data`` (this rank's part of every global batch); the returned sums
        are over all ranks."""
        model, opt, world, cfg = self.model, self.optimizer, self.world, self.cfg
        clip = data.kind == "image"
        if not model.training:  # (a walk over every submodule: not free when epochs are one step)
            model.train()
        loading = self.loading(data)
        order = data.epoch_order(self.generator, loading)
        # Per step the bookkeeping is a few tensor operations: a small model's step is only
        # ~40 of them, each costing microseconds of overhead, so every one saved shows.
        sums = torch.zeros(3, device=self.device)  # loss, recon, kl summed over samples
        first = None  # the first batch's summed loss and size, until the run has its initial loss
        count = 0  # samples seen
        learned = 0  # samples learned from (all but those past a trimming fence), a tensor when trimming
        kl_dims = None
        steps = -(-len(order) // loading.batch_size)
        weights = self.kl_weights(self.state.epoch)  # per step only while the KL weight ramps up
        ramping = 0 < cfg.kl_warmup and self.state.epoch < cfg.kl_warmup
        precision = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        batches = data.local_batches(order, loading, self.device, with_labels=bool(getattr(model, "n_classes", 0)))
        for step, (x, y, n_global) in enumerate(batches):
            if cfg.binarize == "dynamic":
                x = torch.bernoulli(x, generator=self.noise_generator)
            noisy = x if self.noise is None else self.noise.apply(x, self.noise_generator, clip)
            if ramping:
                weights = self.kl_weights(self.state.epoch + step / steps)
            with precision:
                terms = LossTerms(**self._loss(noisy, x, weights, y))
            if cfg.trim is None:
                kept = len(x)
            else:  # rows past the fence count for nothing (see objectives.within_fence)
                keep = within_fence(terms.loss, cfg.trim)
                terms, kept = terms.kept(keep), keep.sum().float()
            # This rank's sum over the global batch size, times the world size: DDP averages the
            # ranks' gradients, which then equal the gradient of the global batch's mean loss.
            loss = terms.loss.sum() / kept if world.size == 1 else terms.loss.sum() * (world.size / n_global)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            learned = learned + kept
            with torch.no_grad():
                if step == 0 and self.state.initial_loss is None:
                    first = torch.stack([terms.loss.sum(), torch.as_tensor(float(kept), device=self.device)])
                sums += torch.stack([terms.loss, terms.recon, terms.kl]).sum(1)
                if terms.kl_per_dim is not None:
                    kl_dims = terms.kl_per_dim.sum(0) if kl_dims is None else kl_dims.add_(terms.kl_per_dim.sum(0))
            count += len(x)
            if world.size == 1 and step % DIVERGENCE_EVERY == DIVERGENCE_EVERY - 1:  # one sync in so many steps
                if first is not None:
                    self.state.initial_loss, first = (first[0] / first[1]).item(), None
                self.check_diverged(sums[0].item() / max(float(learned), 1.0))
            if progress is not None:
                progress.update(len(x) * world.size)
                if step % 10 == 0:
                    progress.set_postfix(loss=f"{loss.item() / world.size:.2f}", refresh=False)
        sums = torch.cat([sums.double().cpu(), torch.tensor([float(learned), float(count)], dtype=torch.float64),
                          *([] if first is None else [first.double().cpu()])])
        if world.size > 1:
            sums = world.all_reduce(sums)
            if kl_dims is not None:
                kl_dims = world.all_reduce(kl_dims.double().cpu())
        loss, recon, kl, learned, count, *start = sums.tolist()
        if start:
            self.state.initial_loss = start[0] / max(start[1], 1.0)
        learned = max(learned, 1.0)
        self.check_diverged(loss / learned)
        return {"loss": loss / learned, "recon": recon / learned, "kl": kl / learned, "samples": count,
                "kl_per_dim": None if kl_dims is None else (kl_dims / learned).tolist()}

    def check_diverged(self, loss: float) -> None:
        """Stop with one clear line once the loss is no number or has grown far past its start;
        the epoch is not checkpointed, so the run keeps its last good one."""
        start = self.state.initial_loss
        if math.isfinite(loss) and (start is None or loss - start <= DIVERGED * max(abs(start), 1.0)):
            return
        hint = "" if self.run_folder is None else resume_hint(self.run_folder, self.state.epoch)
        grew = "" if start is None or not math.isfinite(loss) else f" from {start:.4g} at the start"
        what = f"the loss per sample is {loss:.4g}{grew}"
        raise TrainingDiverged(f"training diverged: {what}; lower {option('lr')} (now {self.cfg.lr:g}) or check the "
                               f"data's scale{hint}", what)

    def loading(self, data) -> Loading:
        """How this rank reads ``data`` (see :meth:`read_settings`)."""
        budget, workers = self.reading
        return Loading(batch_size=self.cfg.batch_size, rank=self.world.rank, world_size=self.world.size,
                       budget=budget, workers=workers if isinstance(data, LazyDataset) else 0,
                       timeout=self.cfg.dist_timeout)

    def read_settings(self, data) -> tuple[int, int]:
        """The memory budget and DataLoader workers for streamed data. Workers: as configured, else
        as many as pay off for the source (one for files, a few for image folders, whose decoding
        is the work), leaving a core for training. Every rank must cut the same windows, so
        under torchrun rank 0's values (its free memory, its cores) are used by all."""
        cfg, world = self.cfg, self.world
        budget = cfg.memory_budget or default_memory_budget(world.local_size)
        workers = 0
        if isinstance(data, LazyDataset):
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            spare = max(1, cpus // max(1, world.local_size) - 1)
            workers = cfg.workers if cfg.workers is not None else min(data.source.parallel_reads, spare)
        return world.broadcast((budget, workers))

    def fit(self, train, val) -> TrainState:
        from tqdm.auto import tqdm

        world = self.world
        cfg = self.cfg
        if cfg.batch_size < world.size or len(train) < world.size:
            raise VaekitError(f"{world.size} processes need at least one sample each of every batch, but "
                              f"{option('batch_size')} is {cfg.batch_size} and the training data has {len(train)} "
                              "samples; start fewer processes or use larger batches")
        train, val = train.resident(self.device), (val.resident(self.device) if val is not None else None)
        self.reading = self.read_settings(train)
        show = cfg.progress and world.is_main
        while (self.state.epoch < cfg.epochs and not self.state.stopped_early
               and (cfg.time_budget is None or self.state.seconds < cfg.time_budget)):
            epoch = self.state.epoch + 1
            # disable=None: a live bar on a terminal, none in logs (the per-epoch line stays)
            bar = tqdm(total=len(train), unit="sample", leave=False, file=sys.stderr, disable=None,
                       desc=f"epoch {epoch}/{cfg.epochs}") if show else None
            t0 = time.perf_counter()
            hint = "" if self.run_folder is None else resume_hint(self.run_folder, self.state.epoch)
            distributed.resume_hint = hint
            with lost_contact(world), loader_errors(hint):
                tr = self.train_epoch(train, bar)
                # every rank must see the same time, or they would disagree about the budget
                seconds = world.all_reduce(torch.tensor([time.perf_counter() - t0], dtype=torch.float64),
                                           op="max").item()
                self.state.seconds += seconds
                if bar is not None:
                    bar.close()
                va = (mean_terms(self.model, val, self.eval_rows, noise=self.noise, world=world, trim=cfg.trim)
                      if val is not None else None)
            watched = (va or tr)["loss"]
            improved = watched < self.state.best_loss
            if improved:
                self.state.best_loss, self.state.bad_epochs = watched, 0
            else:
                self.state.bad_epochs += 1
            self.state.epoch = epoch
            if val is not None and cfg.patience is not None and self.state.bad_epochs >= cfg.patience:
                self.state.stopped_early = True
            metrics = {"epoch": epoch, "train_loss": tr["loss"], "val_loss": va and va["loss"],
                       "recon": tr["recon"], "kl": tr["kl"], "kl_per_dim": tr["kl_per_dim"],
                       "kl_weight": self.kl_weights(epoch).beta,
                       "val_recon": va and va["recon"], "val_kl": va and va["kl"],
                       "seconds": seconds, "samples_per_s": tr["samples"] / seconds,
                       "device": str(self.device), "precision": "bf16" if self.bf16 else "fp32",
                       "world_size": world.size}
            if show:
                val_text = f"  val {va['loss']:.2f}" if va else ""
                tqdm.write(f"epoch {epoch}/{cfg.epochs}  train {tr['loss']:.2f}{val_text}  "
                           f"({metrics['samples_per_s']:,.0f} samples/s)"
                           + ("  early stop" if self.state.stopped_early else ""), file=sys.stderr)
            if self.on_epoch is not None:
                self.on_epoch(metrics, self, improved)
        return self.state
