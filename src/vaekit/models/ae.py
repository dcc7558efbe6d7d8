"""The deterministic autoencoder: z = E(x), x_hat = D(z), trained on squared error."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import VaekitError, option
from .base import LatentModel, decoder_net, encoder_body


@dataclass
class AEOutput:
    z: torch.Tensor               # (N, latent_dim)
    reconstruction: torch.Tensor  # (N, *input_shape)


class AE(LatentModel):
    """Autoencoder with the same networks as the VAE (MLP or conv).

    With ``likelihood='bernoulli'`` (data in [0, 1]) the output goes through a sigmoid so
    reconstructions stay in range; with 'gaussian' it is unbounded.
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 20,
                 hidden_dims: Sequence[int] = (400,), likelihood: str = "bernoulli", arch: str = "mlp"):
        super().__init__(input_shape, latent_dim, likelihood)
        body, features = encoder_body(arch, self.input_shape, hidden_dims)
        self.encoder = nn.Sequential(body, nn.Linear(features, latent_dim))
        self.decoder = decoder_net(arch, latent_dim, self.input_shape, hidden_dims)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.likelihood.mean(self.decoder(z))

    n_classes = 0  # never conditional

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        z = self.encode(x)
        return AEOutput(z=z, reconstruction=self.decode(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, generator=None, temperature: float = 1.0, y=None) -> torch.Tensor:
        raise VaekitError(f"a plain autoencoder has no prior to sample from; train with {option('model', 'vae')}")

    def codes(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(x)
