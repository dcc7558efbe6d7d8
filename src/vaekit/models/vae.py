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
                 n_classes: int = 0):
        super().__init__(input_shape, latent_dim, likelihood)
        self.n_classes = n_classes  # > 0: a conditional VAE, q(z|x,y) and p(x|z,y) (labels one-hot)
        self.encoder, features = encoder_body(arch, self.input_shape, hidden_dims)
        # One layer for both heads (loc and log-variance): the same maths as two, one kernel.
        self.posterior_head = nn.Linear(features + n_classes, 2 * latent_dim)
        self.decoder = decoder_net(arch, latent_dim + n_classes, self.input_shape, hidden_dims)
        if n_classes:
            # Where each class's codes lie: a full-covariance Gaussian per class, N(0, I) until
            # fit_class_codes has seen the training data; conditional samples are drawn from it.
            self.register_buffer("class_loc", torch.zeros(n_classes, latent_dim))
            self.register_buffer("class_scale_tril", torch.eye(latent_dim).repeat(n_classes, 1, 1))

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

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               y: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` new samples decoded to the likelihood mean: z ~ N(0, T^2 I), or for a
        conditional model z from class ``y``'s Gaussian with its spread times T."""
        p = next(self.parameters())
        z = temperature * torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        if self.n_classes:
            if y is None:
                raise VaekitError("this conditional model samples a class; give a label for each sample")
            y = y.long()
            z = self.class_loc[y] + (self.class_scale_tril[y] @ z.unsqueeze(-1)).squeeze(-1)
        return self.decode_mean(z, y)

    @torch.no_grad()
    def fit_class_codes(self, batches) -> None:
        """Fit each class's Gaussian to the codes (posterior means) of ``batches`` of (x, y).

        The encoder leaves some of the class in z (the class shows in x, and removing it
        gains the KL term little), so codes drawn from N(0, I) often fall where another
        class's codes lie and the decoder draws that class whatever label it is given.
        Drawing from each class's own codes instead (ex-post density estimation, Ghosh et
        al., 2020) keeps samples in their class: a full-covariance Gaussian with the mean
        and covariance of the class's codes. Adding the mean posterior variance (the whole
        aggregate posterior) widens it by about a tenth and costs class fidelity: on MNIST
        samples were read as their digit 94% of the time against 97% (bench/cvae.py).
        A class absent from the data keeps N(0, I).
        """
        d, c = self.latent_dim, self.n_classes
        count = torch.zeros(c, dtype=torch.float64)
        total = torch.zeros(c, d, dtype=torch.float64)
        outer = torch.zeros(c, d, d, dtype=torch.float64)
        for x, y in batches:
            loc = self.posterior_params(x, y)[0].double().cpu()
            y = y.long().cpu()
            count.index_add_(0, y, torch.ones_like(y, dtype=torch.float64))
            total.index_add_(0, y, loc)
            outer.index_add_(0, y, loc[:, :, None] * loc[:, None, :])
        seen = count > 0
        n = count[seen][:, None]
        mean = total[seen] / n
        cov = outer[seen] / n[..., None] - mean[:, :, None] * mean[:, None, :]
        cov = 0.5 * (cov + cov.transpose(1, 2)) + 1e-6 * torch.eye(d, dtype=torch.float64)
        self.class_loc[seen] = mean.to(self.class_loc)
        self.class_scale_tril[seen] = torch.linalg.cholesky(cov).to(self.class_scale_tril)

    def codes(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior means (N, latent_dim)."""
        return self.posterior_params(x, y)[0]


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
