"""Observation models p(x | z) as ``torch.distributions`` over whole samples.

The decoder returns raw parameters; these functions wrap them in an ``Independent``
distribution whose ``log_prob`` sums over every data dimension, so a sample of any
shape has one log-likelihood.
"""
from __future__ import annotations

import torch
from torch.distributions import Bernoulli, Independent, Normal

NAMES = ("bernoulli", "gaussian")


def bernoulli(logits: torch.Tensor) -> Independent:
    """Bernoulli from logits (stable BCE); also used for grey levels in [0, 1], as the classic VAE does."""
    # validate_args=False: the support check would reject grey levels, and it costs time per step.
    return Independent(Bernoulli(logits=logits, validate_args=False), logits.dim() - 1)


def gaussian(loc: torch.Tensor, scale: float = 1.0) -> Independent:
    """Gaussian with a fixed unit scale: -log p is half the squared error plus a constant."""
    return Independent(Normal(loc, torch.full_like(loc, scale), validate_args=False), loc.dim() - 1)


def from_params(name: str, params: torch.Tensor) -> Independent:
    return bernoulli(params) if name == "bernoulli" else gaussian(params)


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
