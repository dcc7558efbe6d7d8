"""Training objectives as pure functions returning named per-sample terms.

Units: nats per sample, summed over the data dimensions and averaged over the batch,
as in the classic VAE loss (BCE summed over pixels + KL).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .models import AE, AEOutput, VAE, VAEOutput


@dataclass
class LossTerms:
    """Per-sample terms, each of shape (N,); ``loss`` is what training minimises."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor

    def mean(self) -> dict[str, torch.Tensor]:
        return {"loss": self.loss.mean(), "recon": self.recon.mean(), "kl": self.kl.mean()}


def kl_to_standard_normal(loc: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(loc, exp(logvar)) || N(0, I)) per sample (N,), in closed form.

    Equal to ``kl_divergence(posterior, prior)`` (tested); written out once here because the
    generic version costs several extra kernels per training step.
    """
    return 0.5 * (loc.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def neg_elbo(x: torch.Tensor, out: VAEOutput) -> LossTerms:
    """-ELBO = -log p(x|z) + KL(q(z|x) || N(0, I)), one z per sample.

    Computed in fp32 even when the network ran in bf16 (``.float()`` is free otherwise).
    """
    recon = -out.observation.log_prob(out.params.float(), x)
    kl = kl_to_standard_normal(out.loc.float(), out.logvar.float())
    return LossTerms(loss=recon + kl, recon=recon, kl=kl)


def squared_error(x: torch.Tensor, out: AEOutput) -> LossTerms:
    """Squared error summed over the data dimensions, per sample."""
    recon = (out.reconstruction.float() - x).pow(2).flatten(1).sum(1)
    return LossTerms(loss=recon, recon=recon, kl=torch.zeros_like(recon))


def loss_terms(model: AE | VAE, x: torch.Tensor, target: torch.Tensor | None = None) -> LossTerms:
    """The model's own objective on a batch; ``target`` (default ``x``) is what the output
    should be: the clean data when ``x`` is a corrupted copy (denoising)."""
    out = model(x)
    target = x if target is None else target
    if isinstance(out, VAEOutput):
        return neg_elbo(target, out)
    return squared_error(target, out)


def iw_nll(model: VAE, x: torch.Tensor, k: int, chunk: int = 256) -> torch.Tensor:
    """Importance-weighted estimate of -log p(x), per sample (N,), with ``k`` posterior draws.

    -log (1/k) sum_i p(x, z_i) / q(z_i | x), computed with log-sum-exp; the draws are
    taken ``chunk`` at a time so large k fits in memory.
    """
    posterior = model.encode(x)
    prior = model.prior()
    log_w = []
    for start in range(0, k, chunk):
        z = posterior.sample((min(chunk, k - start),))         # (k', N, latent)
        params = model.decoder_params(z.flatten(0, 1))
        log_px = model.likelihood.log_prob(params, x.repeat(z.shape[0], *([1] * (x.dim() - 1))))
        log_w.append(log_px.view(z.shape[:2]) + prior.log_prob(z) - posterior.log_prob(z))
    return -(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))
