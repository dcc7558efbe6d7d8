"""Training objectives as pure functions returning named per-sample terms.

Units: nats per sample, summed over the data dimensions and averaged over the batch,
as in the classic VAE loss (BCE summed over pixels + KL).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the models call these functions; they import this module, not the reverse
    from .models import IWAE, VAE, AEOutput, VAEOutput
    from .models.base import LatentModel


@dataclass
class LossTerms:
    """Per-sample terms, each of shape (N,); ``loss`` is what training minimises.

    ``recon`` and ``kl`` are always the honest terms of the negative ELBO (nats per sample),
    whatever weighting (beta, warm-up, free bits) or bound (IWAE) ``loss`` uses.
    """

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor | None = None  # (N, latent_dim) for latent-variable models

    def kept(self, keep: torch.Tensor) -> LossTerms:
        """The terms with the rows not in ``keep`` (N,) set to 0 (they add nothing to a sum,
        their gradients are 0, and a loss that is no number stays out)."""
        def zero_out(t):
            return None if t is None else torch.where(keep.view(-1, *[1] * (t.dim() - 1)), t, torch.zeros_like(t))

        return LossTerms(loss=zero_out(self.loss), recon=zero_out(self.recon), kl=zero_out(self.kl),
                         kl_per_dim=zero_out(self.kl_per_dim))


@dataclass(frozen=True)
class KLWeights:
    """How the KL term enters the training loss (never the reported terms)."""

    beta: float = 1.0       # weight of the KL term (beta-VAE; times the warm-up factor)
    free_bits: float = 0.0  # nats per latent dimension that are not penalised (Kingma et al., 2016)


HONEST = KLWeights()


FAR = 30.0  # within_fence's cap, in robust standard deviations above the median


def within_fence(loss: torch.Tensor, k: float) -> torch.Tensor:
    """Which rows of a batch to learn from, (N,) bool: all but those whose loss lies more than
    ``k`` interquartile ranges above the batch's upper quartile (Tukey's fence). Rows far from
    the rest (glitches, gross errors in the training data) then neither steer the gradient nor
    widen the likelihood's learned scales to fit them.

    Where a quarter of the batch or more is far off (a small batch with a few glitch rows), the
    upper quartile is one of them and the fence would keep them all; the median and its
    absolute deviation stay with the rest until half the batch is off, so the fence is never
    further than FAR robust standard deviations (1.4826 median absolute deviations) above the
    median. That is far enough not to bind otherwise: losses are skewed to the right, and a
    fence of 7.4 of them, Tukey's five interquartile ranges for normal losses, would already
    leave out twice the rows. A loss that is no number is kept, so that a model that broke
    shows as diverged instead of learning from no rows.
    """
    loss = loss.detach().float()
    at, weights = _quartile_weights(len(loss), loss.device)
    q1, median, q3 = weights @ loss.sort().values[at]  # NaN sorts last
    spread = (loss - median).abs().median()
    fence = torch.minimum(q3 + k * (q3 - q1), median + FAR * 1.4826 * spread)
    return ~(loss > fence)  # NaN is past no fence



@functools.lru_cache(maxsize=64)
def _quartile_weights(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions in n sorted values, and weights (3, positions) that interpolate the quartiles
    between them as ``torch.quantile`` does: worked out once per batch size, since this runs
    every training step and each of ``torch.quantile``'s operations shows. (No weight is 0,
    so a loss that overflowed to infinity two places off cannot make a quartile NaN.)"""
    parts = []
    for q in (0.25, 0.5, 0.75):
        position = q * (n - 1)
        low, frac = int(position), q * (n - 1) - int(position)
        parts.append([(low, 1.0 - frac)] + ([(low + 1, frac)] if frac > 0 else []))
    at = sorted({i for part in parts for i, _ in part})
    weights = torch.zeros(3, len(at))
    for row, part in enumerate(parts):
        for i, w in part:
            weights[row, at.index(i)] += w
    return torch.tensor(at, device=device), weights.to(device)


def kl_per_dim(loc: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(loc, exp(logvar)) || N(0, 1)) per sample and latent dimension (N, latent_dim).

    Summed over dimensions it equals ``kl_divergence(posterior, prior)`` (tested); written
    out once here because the generic version costs several extra kernels per step.
    """
    return 0.5 * (loc.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_to_standard_normal(loc: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per sample (N,)."""
    return kl_per_dim(loc, logvar).sum(-1)


def kl_penalty(kl_d: torch.Tensor, weights: KLWeights) -> torch.Tensor:
    """The KL part of the training loss per sample (N,).

    With free bits, a dimension whose batch-mean KL is under the allowance costs the
    allowance (a constant, so no gradient pushes it further towards collapse).
    """
    if weights.free_bits > 0:
        below = (kl_d.detach().mean(0) < weights.free_bits).expand_as(kl_d)
        kl_d = torch.where(below, torch.full_like(kl_d, weights.free_bits), kl_d)
    return weights.beta * kl_d.sum(-1)


def neg_elbo(x: torch.Tensor, out: VAEOutput, weights: KLWeights = HONEST) -> LossTerms:
    """-ELBO = -log p(x|z) + KL(q(z|x) || N(0, I)), one z per sample.

    Computed in fp32 even when the network ran in bf16 (``.float()`` is free otherwise).
    """
    recon = -out.observation.log_prob(out.params.float(), x)
    kl_d = kl_per_dim(out.loc.float(), out.logvar.float())
    return LossTerms(loss=recon + kl_penalty(kl_d, weights), recon=recon, kl=kl_d.sum(-1), kl_per_dim=kl_d)


def squared_error(x: torch.Tensor, out: AEOutput) -> LossTerms:
    """Squared error summed over the data dimensions, per sample (a table's missing cells left
    out, the row's sum scaled to its full width: :func:`vaekit.likelihoods.full_row`)."""
    recon = masked_squares(out.reconstruction.float(), x)
    return LossTerms(loss=recon, recon=recon, kl=torch.zeros_like(recon))


def masked_squares(output: torch.Tensor, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Squared errors of ``output`` against ``x`` (divided by ``scale`` per dimension) summed per
    sample, a table's missing cells of ``x`` left out and its observed sum scaled to full width."""
    from .likelihoods import filled_in, observed, row_sum

    seen = observed(x)
    error = output - filled_in(x, seen, output)
    if scale is not None:
        error = error / scale
    return row_sum(error.pow(2), x, seen)


def log_weights(model: VAE, x: torch.Tensor, loc: torch.Tensor, logvar: torch.Tensor,
                eps: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Importance weights of K posterior draws z = loc + scale * eps, eps (K, N, latent) or (K, latent).

    Returns (log p(x|z), log p(x, z) - log q(z|x)), each (K, N). The prior and posterior
    densities are in closed form from eps, so one decoder pass serves both.
    """
    if eps.dim() == 2:
        eps = eps[:, None, :].expand(-1, loc.shape[0], -1)
    z = loc + torch.exp(0.5 * logvar) * eps
    k, n = z.shape[:2]
    params = model.decoder_params(z.flatten(0, 1), None if y is None else y.repeat(k))
    log_px = model.likelihood.log_prob(params.float().view(k, *x.shape), x)  # (K, N), x not copied K times
    log_pz = -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
    log_qz = -0.5 * (eps.pow(2) + _LOG_2PI + logvar).sum(-1)
    return log_px, log_px + log_pz - log_qz


_LOG_2PI = math.log(2 * math.pi)


def iw_bound_terms(model: IWAE, x_in: torch.Tensor, target: torch.Tensor) -> LossTerms:
    """IWAE objective: -log (1/k) sum_k w_k with k = model.k draws per sample (Burda et al., 2016)."""
    loc, logvar = model.posterior_params(x_in)
    loc, logvar = loc.float(), logvar.float()
    eps = torch.randn(model.k, *loc.shape, device=loc.device, dtype=loc.dtype)
    log_px, log_w = log_weights(model, target, loc, logvar, eps)
    kl_d = kl_per_dim(loc, logvar)
    loss = -(torch.logsumexp(log_w, dim=0) - math.log(model.k))
    return LossTerms(loss=loss, recon=-log_px.mean(0), kl=kl_d.sum(-1), kl_per_dim=kl_d)


def loss_terms(model: LatentModel, x: torch.Tensor, target: torch.Tensor | None = None,
               weights: KLWeights = HONEST, y: torch.Tensor | None = None) -> LossTerms:
    """The model's own objective on a batch (:meth:`~vaekit.models.base.LatentModel.objective`);
    ``target`` (default ``x``) is what the output should be: the clean data when ``x`` is a
    corrupted copy (denoising); ``y`` the labels a conditional model needs."""
    return model.objective(x, target, weights, y)


def iw_nll(model: VAE, x: torch.Tensor, k: int, chunk: int = 256,
           generator: torch.Generator | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
    """Importance-weighted estimate of -log p(x), per sample (N,), with ``k`` posterior draws.

    -log (1/k) sum_i p(x, z_i) / q(z_i | x), computed with log-sum-exp; the draws are
    taken ``chunk`` at a time so large k fits in memory. A model with its own importance
    weights (several stochastic layers: ``log_importance_weights``) gives them itself.
    """
    own = getattr(model, "log_importance_weights", None)
    if own is not None:
        log_w = [own(x, min(chunk, k - start), generator, y) for start in range(0, k, chunk)]
        return -(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))
    loc, logvar = model.posterior_params(x, y)
    log_w = []
    for start in range(0, k, chunk):
        eps = torch.randn(min(chunk, k - start), *loc.shape, generator=generator, device=loc.device)
        log_w.append(log_weights(model, x, loc, logvar, eps, y)[1])
    return -(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))
