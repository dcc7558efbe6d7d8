"""Corruptions for denoising training: the model sees corrupted inputs, the loss the clean ones.

Specs: ``gaussian:SIGMA`` (add N(0, SIGMA^2)), ``salt-pepper:P`` (a share P of values set
to 0 or 1, half each), ``mask:P`` (a share P of values set to 0). Image data is clipped to
[0, 1] afterwards. Draws come from a seeded generator, fresh for every batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import VaekitError, option

KINDS = ("gaussian", "salt-pepper", "mask")


@dataclass(frozen=True)
class Noise:
    kind: str
    amount: float

    def __str__(self) -> str:
        return f"{self.kind}:{self.amount:g}"

    def apply(self, x: torch.Tensor, generator: torch.Generator, clip: bool) -> torch.Tensor:
        """A corrupted copy of ``x`` (any shape)."""
        if self.kind == "gaussian":
            noisy = x + self.amount * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        else:
            hit = torch.rand(x.shape, generator=generator, device=x.device) < self.amount
            if self.kind == "mask":
                fill = torch.zeros((), device=x.device, dtype=x.dtype)
            else:  # salt and pepper: 0 or 1 with equal odds
                fill = (torch.rand(x.shape, generator=generator, device=x.device) < 0.5).to(x.dtype)
            noisy = torch.where(hit, fill, x)
        return noisy.clamp_(0.0, 1.0) if clip else noisy


def parse_noise(spec: str | None) -> Noise | None:
    """'gaussian:0.5' -> Noise('gaussian', 0.5); None stays None."""
    if spec is None or spec == "":
        return None
    kind, sep, value = str(spec).partition(":")
    try:
        amount = float(value)
    except ValueError:
        amount = -1.0
    # not (0 <= amount < inf) refuses NaN as well: every comparison with NaN is false
    if kind not in KINDS or not sep or not 0 <= amount < math.inf or (kind != "gaussian" and amount > 1):
        raise VaekitError(f"{option('noise')} must look like gaussian:0.5, salt-pepper:0.2 or mask:0.3 (a finite "
                          f"sigma of 0 or more; a share in [0, 1] for the last two), got {spec!r}")
    return Noise(kind, amount)
