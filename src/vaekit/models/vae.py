"""The variational autoencoder: q(z|x) = N(loc, scale^2), p(z) = N(0, I), p(x|z) from the decoder."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from .. import likelihoods
from .mlp import mlp


@dataclass
class VAEOutput:
    posterior: Distribution   # q(z|x), batch (N,), event (latent_dim,)
    z: torch.Tensor           # (N, latent_dim), a reparameterised draw from the posterior
    likelihood: Distribution  # p(x|z), batch (N,), event = input_shape


class VAE(nn.Module):
    """MLP VAE; the defaults are the classic 784-400-20 model with a Bernoulli output.

    Shapes: x is (N, *input_shape); codes are (N, latent_dim).
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 20,
                 hidden_dims: Sequence[int] = (400,), likelihood: str = "bernoulli"):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.likelihood_name = likelihood
        n_in = math.prod(self.input_shape)
        self.encoder = mlp([n_in, *hidden_dims], final_activation=True)
        # One layer for both heads (loc and log-variance): the same maths as two, one kernel.
        self.posterior_head = nn.Linear(hidden_dims[-1], 2 * latent_dim)
        self.decoder = mlp([latent_dim, *reversed(hidden_dims), n_in], final_activation=False)

    def posterior_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loc, log-variance) of q(z|x), each (N, latent_dim)."""
        loc, logvar = self.posterior_head(self.encoder(x.flatten(1))).chunk(2, dim=-1)
        return loc, logvar

    def encode(self, x: torch.Tensor) -> Independent:
        loc, logvar = self.posterior_params(x)
        return Independent(Normal(loc, torch.exp(0.5 * logvar), validate_args=False), 1)

    def decode(self, z: torch.Tensor) -> Independent:
        params = self.decoder(z).unflatten(1, self.input_shape)
        return likelihoods.from_params(self.likelihood_name, params)

    def prior(self) -> Independent:
        p = next(self.parameters())
        zeros = torch.zeros(self.latent_dim, device=p.device, dtype=p.dtype)
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        posterior = self.encode(x)
        z = posterior.rsample()
        return VAEOutput(posterior=posterior, z=z, likelihood=self.decode(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction: the likelihood mean at the posterior mean."""
        return self.decode(self.encode(x).mean).mean

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """``n`` new samples: z ~ N(0, T^2 I), decoded to the likelihood mean."""
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        return self.decode(temperature * z).mean

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior means (N, latent_dim)."""
        return self.encode(x).mean
