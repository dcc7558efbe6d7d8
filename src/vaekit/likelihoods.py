"""Observation models p(x | z): the decoder returns raw parameters, and these give

- ``distribution(name, params)``: a ``torch.distributions`` object over whole samples
  (``Independent``, so ``log_prob`` sums over every data dimension), for users;
- ``log_prob(name, params, x)``: the same log-likelihood per sample from a fused kernel
  (BCE with logits), for the training loop, where the distribution objects' Python
  overhead is a measurable share of each step. Tests check that the two agree.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal

NAMES = ("bernoulli", "gaussian")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def distribution(name: str, params: torch.Tensor) -> Independent:
    """p(x|z) for a batch: batch shape (N,), event shape = one sample's shape."""
    event_dims = params.dim() - 1
    if name == "bernoulli":
        # Bernoulli from logits, also for grey levels in [0, 1] as the classic VAE does;
        # validate_args=False because the support check would reject grey levels.
        return Independent(Bernoulli(logits=params, validate_args=False), event_dims)
    # Gaussian with unit scale: -log p is half the squared error plus a constant.
    return Independent(Normal(params, torch.ones_like(params), validate_args=False), event_dims)


def log_prob(name: str, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) per sample (N,), equal to ``distribution(name, params).log_prob(x)``."""
    if name == "bernoulli":
        per_dim = -F.binary_cross_entropy_with_logits(params, x, reduction="none")
    else:
        per_dim = -0.5 * (x - params).pow(2) - _HALF_LOG_2PI
    return per_dim.flatten(1).sum(1)


def mean(name: str, params: torch.Tensor) -> torch.Tensor:
    """E[x|z]: the reconstruction a user sees."""
    return torch.sigmoid(params) if name == "bernoulli" else params


def choose(name: str, value_range: tuple[float, float]) -> str:
    """Resolve 'auto': Bernoulli for data in [0, 1] (the classic choice), else Gaussian."""
    from .errors import VaekitError

    lo, hi = value_range
    in_unit = lo >= 0.0 and hi <= 1.0
    if name == "auto":
        return "bernoulli" if in_unit else "gaussian"
    if name == "bernoulli" and not in_unit:
        raise VaekitError(f"the Bernoulli likelihood needs data in [0, 1] but the data spans "
                          f"[{lo:.3g}, {hi:.3g}]; use --likelihood gaussian or scale the data")
    return name
