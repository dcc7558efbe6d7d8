"""What training a model will take in memory, worked out before anything is allocated.

The model is built on PyTorch's ``meta`` device, which gives every tensor its shape and no
storage, and one training step (forward and backward) runs there on a batch of the configured
size under a dispatch mode that counts the bytes of every tensor alive at once: the peak is
known at no cost for any model vaekit builds (an IWAE's k draws, a conv net's feature maps, a
VQ-VAE's prior included). :func:`check_fits` refuses in one line, before a run folder is made,
a model that the memory free on its device cannot hold: the kernel's out-of-memory killer is
never what stops vaekit.

The parts (``bench/footprint.py`` sets them beside measured peaks):

- weights: the parameters, their gradients and Adam's two moments;
- a training batch: the peak of one forward and backward pass, less the gradients;
- rows evaluated without gradients (validation, encoding, scoring): the peak of a forward pass
  per row, so that they go in chunks that take no more than a training batch;
- a VQ-VAE's autoregressive prior, fitted after training: its weights and one batch, the same way.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .errors import VaekitError, option

FLOAT = 4  # bytes: training runs in float32 (bf16 autocast only makes the activations smaller)
TRAINING_COPIES = 4  # each parameter, its gradient, and Adam's first and second moments
CHUNK_MEMORY = 256 << 20  # bytes a chunk of rows evaluated without gradients may always take
PROBE_ROWS = 64  # rows the forward pass without gradients is measured on, per row after
EVAL_ROWS = 1024  # the most rows validation and evaluation take at a time


@dataclass(frozen=True)
class Footprint:
    """Bytes that training a model needs at its peak, by part."""

    weights: int      # the networks' parameters, their gradients and the optimiser's state
    batch: int        # one training batch's activations and their gradients
    per_row: int      # one row's forward pass without gradients (validation, encoding, scoring)
    prior: int = 0    # fitting an autoregressive prior after training (a VQ-VAE's)

    def rows(self, most: int) -> int:
        """Rows to evaluate at a time (at most ``most``): as many as take no more memory than a
        training batch, or than :data:`CHUNK_MEMORY` where that is more, so that a model that
        trains also validates, encodes and scores (an IWAE's k draws count in its rows)."""
        return int(min(most, max(1, max(self.batch, CHUNK_MEMORY) // max(self.per_row, 1))))

    @property
    def evaluation(self) -> int:
        return self.per_row * self.rows(EVAL_ROWS)

    @property
    def total(self) -> int:
        return self.weights + max(self.batch, self.evaluation, self.prior)


class _LiveBytes(TorchDispatchMode):
    """The most bytes of tensor storage alive at once among the tensors operations make while
    this mode is on (a storage shared by views counts once; it is freed with its last tensor).

    A tensor autograd saves for the backward pass keeps its Python object (PyTorch preserves it
    while the tensor lives), so its finaliser runs when the tensor is freed. Views an operation
    makes of a parameter (a linear layer's transposed weight) count the parameter's storage once
    more: the estimate errs high by the weights, never low."""

    def __init__(self):
        super().__init__()
        self.live, self.peak, self.holders = 0, 0, {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._hold(t)
        return out

    def _hold(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        entry = self.holders.get(key)
        if entry is None:
            entry = self.holders[key] = [0, storage.nbytes()]
            self.live += entry[1]
            self.peak = max(self.peak, self.live)
        entry[0] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key) -> None:
        entry = self.holders[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.holders[key]


def _peak(run) -> int:
    """The peak bytes of the tensors ``run()`` makes (on the meta device: nothing is allocated)."""
    mode = _LiveBytes()
    with mode:
        run()
    return mode.peak


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters()) * FLOAT


def _zeros(shape: tuple[int, ...], n: int, n_classes: int, device="meta"):
    """A batch of ``n`` rows of zeros and, for a conditional model, labels: what a probe runs on."""
    x = torch.zeros(n, *shape, device=device)
    y = torch.zeros(n, dtype=torch.long, device=device) if n_classes else None
    return x, y


def estimate(model_cfg, batch_size: int) -> Footprint:
    """What training the model of a resolved :class:`~vaekit.config.ModelConfig` (input shape
    known) on batches of ``batch_size`` needs, without allocating it."""
    with torch.inference_mode(False), torch.enable_grad():  # asked from within evaluation, too
        return _estimate(model_cfg, batch_size)


def _estimate(model_cfg, batch_size: int) -> Footprint:
    from .models import build_model
    from .priors import AR_BATCH, AutoregressivePrior

    with torch.device("meta"):
        model = build_model(model_cfg, priors=False)
    shape, classes = tuple(model_cfg.input_shape), model_cfg.n_classes

    def step():
        x, y = _zeros(shape, batch_size, classes)
        model.objective(x, x, None, y).loss.sum().backward()

    def forward():
        x, y = _zeros(shape, PROBE_ROWS, classes)
        with torch.no_grad():
            model.objective(x, x, None, y)

    weights = _parameters(model)
    try:  # the step's peak holds the gradients, which the weights count
        batch, per_row = _peak(step), -(-_peak(forward) // PROBE_ROWS)
    except (RuntimeError, NotImplementedError):  # a step that asks for values (a model of someone else's):
        batch, per_row = 0, 0                     # its weights alone are known
    prior = 0
    if model_cfg.model == "vqvae":
        with torch.device("meta"):
            ar = AutoregressivePrior(model.positions, model.quantizer.level_counts)
        symbols = torch.zeros(AR_BATCH, model.positions, dtype=torch.long, device="meta")
        loss = lambda: torch.nn.functional.cross_entropy(ar.logits(symbols).transpose(1, 2), symbols)  # noqa: E731
        prior = _parameters(ar) * TRAINING_COPIES + _peak(lambda: loss().backward())
    return Footprint(weights * TRAINING_COPIES, max(0, batch - weights), per_row, prior)


def inference_rows(model: torch.nn.Module, model_cfg, batch_size: int, most: int) -> int:
    """Rows a trained ``model`` (of ``model_cfg``, trained on batches of ``batch_size``) takes at a
    time without gradients, at most ``most`` (see :meth:`Footprint.rows`).

    A few rows of zeros go through it first with its layers' outputs counted (every layer's, and
    the largest twice more for the loss's own: more than a pass without gradients holds at once).
    Where ``most`` rows take under :data:`CHUNK_MEMORY` so counted, as they do for most models,
    that is the answer; otherwise the estimate decides (it runs under a dispatch mode, whose first
    use imports a second's worth of torch, which training has paid for already)."""
    # real rows, on the model's device: two are enough to count
    x, y = _zeros(tuple(model_cfg.input_shape), 2, model_cfg.n_classes, next(model.parameters()).device)
    sizes: list[int] = []

    def count(_, __, output):
        sizes.extend(t.numel() * FLOAT for t in tree_leaves(output) if isinstance(t, torch.Tensor))

    hooks = [m.register_forward_hook(count) for m in model.modules() if not any(m.children())]
    try:
        with torch.no_grad():
            model.objective(x, x, None, y)
    finally:
        for hook in hooks:
            hook.remove()
    if (sum(sizes) + 2 * max(sizes, default=0)) * most <= CHUNK_MEMORY * len(x):
        return most
    return estimate(model_cfg, batch_size).rows(most)


def available(device: torch.device, processes: int = 1) -> int:
    """Bytes free now for one of ``processes`` training on this machine: the GPU's free memory,
    or the machine's available memory shared among them."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import psutil

    return psutil.virtual_memory().available // max(1, processes)


def check_fits(model_cfg, batch_size: int, device: torch.device, processes: int = 1,
               image_folder: bool = False) -> Footprint:
    """Refuse, in one line that says what to make smaller, a model (a resolved
    :class:`~vaekit.config.ModelConfig`) whose training on batches of ``batch_size`` would not fit
    the memory free on ``device`` for one of ``processes`` (``image_folder``: the data is one,
    which ``image_size`` resizes)."""
    from .data import format_size

    need, free = estimate(model_cfg, batch_size), available(device, processes)
    if need.total <= free:
        return need
    parts = {"its weights and optimiser state": need.weights, f"a batch of {batch_size}": need.batch,
             "its autoregressive prior": need.prior}
    detail = ", ".join(f"{name} {format_size(size)}" for name, size in parts.items() if size)
    where = "GPU memory" if device.type == "cuda" else "memory"
    raise VaekitError(f"training this model would need about {format_size(need.total)} of memory ({detail}), and "
                      f"{where} has {format_size(free)} free; use {_smaller(model_cfg, need, image_folder)}")


def _smaller(model_cfg, need: Footprint, image_folder: bool) -> str:
    """What to make smaller, the largest part first."""
    images = "" if len(model_cfg.input_shape) == 1 else \
        f" or smaller images ({option('image_size')})" if image_folder else " or smaller images"
    if need.prior > max(need.weights, need.batch):
        return f"smaller images or more {option('hidden_dims')} (each layer halves the grid the prior models)"
    if need.weights >= need.batch:
        return f"smaller {option('hidden_dims')}" + (images if model_cfg.arch == "mlp" else "")
    draws = f" or {option('k')}" if model_cfg.model == "iwae" else ""
    return f"a smaller {option('batch_size')}{draws}, smaller {option('hidden_dims')}{images}"
