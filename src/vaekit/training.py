"""The one trainer: seeded loop over in-memory tensors, validation, early stopping, checkpoints.

The hot loop takes each batch by indexing the dataset tensor (already on the device), so
there is no per-item Python work; one fused Adam step updates all parameters.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import torch

from .config import TrainConfig
from .data import Dataset
from .errors import VaekitError
from .noise import Noise, parse_noise
from .models import IWAE
from .objectives import KLWeights, loss_terms


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaekitError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise VaekitError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
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


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one update for all parameters) where the device has it."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


VALIDATION_NOISE_SEED = 12345  # the same corruptions every epoch, so validation losses compare


@torch.no_grad()
def mean_terms(model, data: Dataset, batch_size: int = 1024, noise: Noise | None = None) -> dict[str, float]:
    """Average loss terms over a whole dataset, in eval mode (inputs corrupted by ``noise``)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64)
    generator = torch.Generator(device=data.x.device).manual_seed(VALIDATION_NOISE_SEED)
    for start in range(0, len(data), batch_size):
        x = data.batch(slice(start, start + batch_size))
        noisy = noise.apply(x, generator, clip=data.kind == "image") if noise is not None else x
        t = loss_terms(model, noisy, x, y=data.labels(slice(start, start + batch_size), model))
        sums += torch.stack([t.loss.sum(), t.recon.sum(), t.kl.sum()]).double().cpu()
    model.train(was_training)
    loss, recon, kl = (sums / len(data)).tolist()
    return {"loss": loss, "recon": recon, "kl": kl}


@dataclass
class TrainState:
    """What resuming needs beyond the config: where training stopped and how it was going."""

    epoch: int = 0                  # epochs completed
    seconds: float = 0.0            # training time so far (the budget counts this)
    best_loss: float = math.inf     # best validation (or training) loss so far
    bad_epochs: int = 0             # epochs since the best
    stopped_early: bool = False


class Trainer:
    """Trains ``model`` on a dataset; after each epoch ``on_epoch(metrics, state, improved)`` runs.

    The run folder hooks into ``on_epoch`` to append metrics and checkpoint, so the trainer
    itself writes no files.
    """

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, device: torch.device, on_epoch=None):
        self.model = model.to(device)
        self.cfg = cfg
        self.device = device
        self.optimizer = make_optimizer(self.model, cfg.lr)
        self.generator = torch.Generator(device="cpu").manual_seed(cfg.seed)  # shuffling
        self.noise = parse_noise(cfg.noise)
        self.noise_generator = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        self.state = TrainState()
        self.on_epoch = on_epoch
        self.bf16 = resolve_precision(cfg.precision, device) == "bf16"
        # What the loss calls: the model, or its compiled forward pass. (IWAE's objective does
        # not go through forward, so there is nothing to compile.)
        self.forward_model = self.model
        if cfg.compile and not isinstance(self.model, IWAE):
            self.forward_model = torch.compile(self.model)

    # -- checkpointing ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "shuffle_rng": self.generator.get_state(), "noise_rng": self.noise_generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "epoch": self.state.epoch, "best_loss": self.state.best_loss,
                "bad_epochs": self.state.bad_epochs, "stopped_early": self.state.stopped_early,
                "seconds": self.state.seconds}

    def load_state_dict(self, d: dict) -> None:
        self.model.load_state_dict(d["model"])
        self.optimizer.load_state_dict(d["optimizer"])
        self.generator.set_state(d["shuffle_rng"])
        self.noise_generator.set_state(d["noise_rng"])
        torch.set_rng_state(d["torch_rng"])
        if self.device.type == "cuda" and d["cuda_rng"]:
            torch.cuda.set_rng_state_all(d["cuda_rng"])
        self.state = TrainState(epoch=d["epoch"], best_loss=d["best_loss"], bad_epochs=d["bad_epochs"],
                                stopped_early=d["stopped_early"], seconds=d.get("seconds", 0.0))

    # -- the loop -------------------------------------------------------------------------------
    def kl_weights(self, epochs_done: float) -> KLWeights:
        """beta, scaled by the linear warm-up over the first ``kl_warmup`` epochs."""
        cfg = self.cfg
        ramp = min(1.0, epochs_done / cfg.kl_warmup) if cfg.kl_warmup > 0 else 1.0
        return KLWeights(beta=cfg.beta * ramp, free_bits=cfg.free_bits)

    def _loss(self, noisy, x, weights, y):
        if self.forward_model is self.model:
            return loss_terms(self.model, noisy, x, weights, y=y)
        try:
            return loss_terms(self.forward_model, noisy, x, weights, y=y)
        except Exception as e:  # no compiler here, or an unsupported operation: train eagerly
            print(f"vaekit: --compile unavailable ({type(e).__name__}); training without it", file=sys.stderr)
            self.forward_model = self.model
            return loss_terms(self.model, noisy, x, weights, y=y)

    def train_epoch(self, data: Dataset, progress) -> dict[str, float]:
        model, opt, n = self.model, self.optimizer, len(data)
        clip = data.kind == "image"
        model.train()
        order = torch.randperm(n, generator=self.generator).to(self.device)
        sums = torch.zeros(3, device=self.device)
        kl_dims = None
        steps = -(-n // self.cfg.batch_size)
        for step, start in enumerate(range(0, n, self.cfg.batch_size)):
            index = order[start:start + self.cfg.batch_size]
            x = data.batch(index)
            if self.cfg.binarize == "dynamic":
                x = torch.bernoulli(x, generator=self.noise_generator)
            noisy = x if self.noise is None else self.noise.apply(x, self.noise_generator, clip)
            weights = self.kl_weights(self.state.epoch + step / steps)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                terms = self._loss(noisy, x, weights, data.labels(index, model))
            loss = terms.loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                sums += torch.stack([terms.loss.sum(), terms.recon.sum(), terms.kl.sum()])
                if terms.kl_per_dim is not None:
                    kl_dims = terms.kl_per_dim.sum(0) + (0 if kl_dims is None else kl_dims)
            if progress is not None:
                progress.update(x.shape[0])
                if step % 10 == 0:
                    progress.set_postfix(loss=f"{loss.item():.2f}", refresh=False)
        loss, recon, kl = (sums / n).tolist()
        if not math.isfinite(loss):
            raise VaekitError(f"training diverged (loss {loss}); lower --lr (now {self.cfg.lr}) or check "
                              "the data's scale")
        return {"loss": loss, "recon": recon, "kl": kl,
                "kl_per_dim": None if kl_dims is None else (kl_dims / n).tolist()}

    def fit(self, train: Dataset, val: Dataset | None) -> TrainState:
        from tqdm.auto import tqdm

        train, val = train.resident(self.device), (val.resident(self.device) if val is not None else None)
        cfg = self.cfg
        while (self.state.epoch < cfg.epochs and not self.state.stopped_early
               and (cfg.time_budget is None or self.state.seconds < cfg.time_budget)):
            epoch = self.state.epoch + 1
            # disable=None: a live bar on a terminal, none in logs (the per-epoch line stays)
            bar = tqdm(total=len(train), unit="sample", leave=False, file=sys.stderr, disable=None,
                       desc=f"epoch {epoch}/{cfg.epochs}") if cfg.progress else None
            t0 = time.perf_counter()
            tr = self.train_epoch(train, bar)
            seconds = time.perf_counter() - t0
            self.state.seconds += seconds
            if bar is not None:
                bar.close()
            va = mean_terms(self.model, val, noise=self.noise) if val is not None else None
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
                       "seconds": seconds, "samples_per_s": len(train) / seconds,
                       "device": str(self.device), "precision": "bf16" if self.bf16 else "fp32"}
            if cfg.progress:
                val_text = f"  val {va['loss']:.2f}" if va else ""
                tqdm.write(f"epoch {epoch}/{cfg.epochs}  train {tr['loss']:.2f}{val_text}  "
                           f"({metrics['samples_per_s']:,.0f} samples/s)"
                           + ("  early stop" if self.state.stopped_early else ""), file=sys.stderr)
            if self.on_epoch is not None:
                self.on_epoch(metrics, self, improved)
        return self.state
