"""The deterministic autoencoder: z = E(x), x_hat = D(z), trained on squared error."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import VaekitError
from .base import LatentModel
from .mlp import mlp


@dataclass
class AEOutput:
    z: torch.Tensor               # (N, latent_dim)
    reconstruction: torch.Tensor  # (N, *input_shape)


class AE(LatentModel):
    """MLP autoencoder with the same widths as the VAE.

    With ``likelihood='bernoulli'`` (data in [0, 1]) the output goes through a sigmoid so
    reconstructions stay in range; with 'gaussian' it is unbounded.
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 20,
                 hidden_dims: Sequence[int] = (400,), likelihood: str = "bernoulli"):
        super().__init__(input_shape, latent_dim, likelihood)
        n_in = self.n_inputs
        self.encoder = mlp([n_in, *hidden_dims, latent_dim], final_activation=False)
        self.decoder = mlp([latent_dim, *reversed(hidden_dims), n_in], final_activation=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.likelihood.mean(self.decoder(z).unflatten(1, self.input_shape))

    def forward(self, x: torch.Tensor) -> AEOutput:
        z = self.encode(x)
        return AEOutput(z=z, reconstruction=self.decode(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, generator=None, temperature: float = 1.0) -> torch.Tensor:
        raise VaekitError("a plain autoencoder has no prior to sample from; train with --model vae")

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)
