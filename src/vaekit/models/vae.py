"""The variational autoencoder: q(z|x) = N(loc, scale^2), p(z) = N(0, I), p(x|z) from the decoder."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Independent, Normal

from ..errors import VaekitError
from ..objectives import HONEST, iw_bound_terms, neg_elbo
from .base import LatentModel, decoder_net, encoder_body

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


def gaussian(loc: torch.Tensor, scale: torch.Tensor) -> Independent:
    """A diagonal Gaussian over the last dimension."""
    return Independent(Normal(loc, scale, validate_args=False), 1)


@dataclass
class VAEOutput:
    """One pass: the posterior's moments, the draw z, and the decoder's raw parameters.

    ``posterior`` and ``likelihood`` are the matching distributions, built on first use
    (the training loss works from the raw tensors; see :mod:`vaekit.objectives`).
    """

    loc: torch.Tensor       # (N, latent_dim)
    logvar: torch.Tensor    # (N, latent_dim)
    z: torch.Tensor         # (N, latent_dim), a reparameterised draw from q(z|x)
    params: torch.Tensor    # (N, *input_shape), decoder output (logits for Bernoulli)
    observation: nn.Module  # the model's likelihood module, which turns params into p(x|z)

    @cached_property
    def posterior(self) -> Independent:
        return gaussian(self.loc, torch.exp(0.5 * self.logvar))

    @cached_property
    def likelihood(self) -> Independent:
        return self.observation.distribution(self.params)


class VAE(LatentModel):
    """VAE with MLP or conv networks; the defaults are the classic 784-400-20 MLP with a
    Bernoulli output. Trained on the negative ELBO, one posterior draw per sample.

    Shapes: x is (N, *input_shape); codes are (N, latent_dim).
    """

    generative = True

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 20,
                 hidden_dims: Sequence[int] = (400,), likelihood: str = "bernoulli", arch: str = "mlp",
                 n_classes: int = 0, blocks=()):
        super().__init__(input_shape, latent_dim, likelihood, blocks)
        self.n_classes = n_classes  # > 0: a conditional VAE, q(z|x,y) and p(x|z,y) (labels one-hot)
        self.encoder, features = encoder_body(arch, self.input_shape, hidden_dims)
        # One layer for both heads (loc and log-variance): the same maths as two, one kernel.
        self.posterior_head = nn.Linear(features + n_classes, 2 * latent_dim)
        self.decoder = decoder_net(arch, latent_dim + n_classes, self.input_shape, hidden_dims)

    def _with_labels(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if not self.n_classes:
            return h
        if y is None:
            raise VaekitError("this conditional model needs a label for each input; give labelled data")
        return torch.cat([h, F.one_hot(y.long(), self.n_classes).to(h.dtype)], dim=-1)

    def posterior_params(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loc, log-variance) of q(z|x[, y]), each (N, latent_dim)."""
        loc, logvar = self.posterior_head(self._with_labels(self.encoder(x), y)).chunk(2, dim=-1)
        # Bounded so that exp() cannot overflow on inputs far from the training data (an
        # anomaly can be 1e3 standard deviations out); the range is far wider than training uses.
        return loc, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def decoder_params(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Raw parameters of p(x|z[, y]), (N, *input_shape)."""
        return self.decoder(self._with_labels(z, y))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """q(z|x) as a distribution: batch (N,), event (latent_dim,)."""
        loc, logvar = self.posterior_params(x, y)
        return gaussian(loc, torch.exp(0.5 * logvar))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """p(x|z) as a distribution: batch (N,), event = input_shape."""
        return self.likelihood.distribution(self.decoder_params(z, y))

    def prior(self) -> Independent:
        p = next(self.parameters())
        zeros = torch.zeros(self.latent_dim, device=p.device, dtype=p.dtype)
        return gaussian(zeros, torch.ones_like(zeros))

    def objective(self, x, target=None, weights=HONEST, y=None, forward=None):
        """-ELBO with ``weights`` on the KL term (beta, warm-up, free bits); the reported terms stay honest."""
        return neg_elbo(x if target is None else target, (forward or self)(x, y), weights or HONEST)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        loc, logvar = self.posterior_params(x, y)
        z = loc + torch.randn_like(loc) * torch.exp(0.5 * logvar)  # reparameterised draw
        return VAEOutput(loc=loc, logvar=logvar, z=z, params=self.decoder_params(z, y),
                         observation=self.likelihood)

    def decode_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's mean at ``z`` (without building the distribution)."""
        return self.likelihood.mean(self.decoder_params(z, y))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic reconstruction: the likelihood mean at the posterior mean."""
        return self.decode_mean(self.posterior_params(x, y)[0], y)

    def codes(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior means (N, latent_dim)."""
        return self.posterior_params(x, y)[0]

    @torch.no_grad()
    def impute(self, x: torch.Tensor, draws: int = 100, generator: torch.Generator | None = None,
               rounds: int = 0, y: torch.Tensor | None = None) -> torch.Tensor:
        """A table batch ``x`` (N, D) with its missing cells filled by E[x_missing | x_observed],
        estimated by self-normalised importance sampling over ``draws`` posterior draws (MIWAE's
        imputation, Mattei and Frellsen, 2019): each draw's decoded mean weighted by
        p(x_observed | z) p(z) / q(z | x), q seeing the missing cells as 0. Observed cells are
        kept as they are."""
        from ..likelihoods import observed
        from ..objectives import log_weights

        seen = observed(x)
        if seen is None:
            return x.clone()
        loc, logvar = self.posterior_params(x, y)
        eps = torch.randn((draws, *loc.shape), generator=generator, device=loc.device, dtype=loc.dtype)
        log_px, log_w = log_weights(self, x, loc, logvar, eps, y)
        # log p(x_obs|z) comes scaled to the row's full width (likelihoods.full_row); weights need it as is
        share = self.likelihood.seen_share(x) if hasattr(self.likelihood, "seen_share") else \
            seen.sum(-1) / seen.shape[-1]
        weights = torch.softmax(log_w - log_px * (1 - share), dim=0)  # (draws, N)
        z = loc + torch.exp(0.5 * logvar) * eps
        means = self.decode_mean(z.flatten(0, 1), None if y is None else y.repeat(draws))
        means = means.view(draws, *x.shape)
        return torch.where(seen, x, (weights[..., None] * means).sum(0))


class IWAE(VAE):
    """A VAE trained on the importance-weighted bound with ``k`` draws per sample
    (Burda et al., 2016): the same networks, a tighter objective."""

    def __init__(self, *args, k: int = 5, **kwargs):
        super().__init__(*args, **kwargs)
        self.k = k

    def objective(self, x, target=None, weights=None, y=None, forward=None):
        """The importance-weighted bound with ``k`` draws; it has no KL term for ``weights`` to
        weight, and does not go through ``forward`` (so there is nothing to compile)."""
        return iw_bound_terms(self, x, x if target is None else target)
