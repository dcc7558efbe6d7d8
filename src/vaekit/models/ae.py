"""The deterministic autoencoder: z = E(x), x_hat = D(z), trained on squared error."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..objectives import squared_error
from .base import LatentModel, PointMass, decoder_net, encoder_body


@dataclass
class AEOutput:
    z: torch.Tensor               # (N, latent_dim)
    reconstruction: torch.Tensor  # (N, *input_shape)


class AE(LatentModel):
    """Autoencoder with the same networks as the VAE (MLP or conv); its code and output are
    point masses (:class:`~vaekit.models.base.PointMass`), and it has no prior to sample.

    With ``likelihood='bernoulli'`` (data in [0, 1]) the output goes through a sigmoid so
    reconstructions stay in range; with 'gaussian' it is unbounded.
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 20,
                 hidden_dims: Sequence[int] = (400,), likelihood: str = "bernoulli", arch: str = "mlp"):
        super().__init__(input_shape, latent_dim, likelihood)
        body, features = encoder_body(arch, self.input_shape, hidden_dims)
        self.encoder = nn.Sequential(body, nn.Linear(features, latent_dim))
        self.decoder = decoder_net(arch, latent_dim, self.input_shape, hidden_dims)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> PointMass:
        return PointMass(self.encoder(x))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> PointMass:
        return PointMass(self.likelihood.mean(self.decoder(z)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        z = self.encoder(x)
        return AEOutput(z=z, reconstruction=self.likelihood.mean(self.decoder(z)))

    def objective(self, x, target=None, weights=None, y=None, forward=None):
        """Squared error summed over the data dimensions (no KL term: ``weights`` do not apply)."""
        return squared_error(x if target is None else target, (forward or self)(x, y))
