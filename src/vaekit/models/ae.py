"""The deterministic autoencoder: z = E(x), x_hat = D(z), trained on squared error."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..likelihoods import LOG_SCALE_MIN, MixedLikelihood
from ..objectives import LossTerms, masked_squares, squared_error
from .base import LatentModel, PointMass, decoder_net, encoder_body


@dataclass
class AEOutput:
    z: torch.Tensor               # (N, latent_dim)
    reconstruction: torch.Tensor  # (N, *input_shape)
    params: torch.Tensor | None = None  # the decoder's raw output (a mixed table's loss takes logits)


class AE(LatentModel):
    """Autoencoder with the same networks as the VAE (MLP or conv); its code and output are
    point masses (:class:`~vaekit.models.base.PointMass`), and it has no prior to sample.

    With ``likelihood='bernoulli'`` (data in [0, 1]) the output goes through a sigmoid so
    reconstructions stay in range; with 'gaussian' it is unbounded.
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 20,
                 hidden_dims: Sequence[int] = (400,), likelihood: str = "bernoulli", arch: str = "mlp",
                 blocks=()):
        super().__init__(input_shape, latent_dim, likelihood, blocks)
        body, features = encoder_body(arch, self.input_shape, hidden_dims)
        self.encoder = nn.Sequential(body, nn.Linear(features, latent_dim))
        self.decoder = decoder_net(arch, latent_dim, self.input_shape, hidden_dims)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> PointMass:
        return PointMass(self.encoder(x))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> PointMass:
        return PointMass(self.likelihood.mean(self.decoder(z)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        z = self.encoder(x)
        params = self.decoder(z)
        return AEOutput(z=z, reconstruction=self.likelihood.mean(params), params=params)

    def objective(self, x, target=None, weights=None, y=None, forward=None):
        """Squared error summed over the data dimensions (no KL term: ``weights`` do not apply);
        a table with binary and categorical columns adds twice their cross-entropy (each column's
        negative log-likelihood on the scale of half a squared error)."""
        target = x if target is None else target
        out = (forward or self)(x, y)
        if isinstance(self.likelihood, MixedLikelihood):
            recon = -2 * self.likelihood.log_prob(out.params.float(), target, continuous="unit")
            return LossTerms(loss=recon, recon=recon, kl=torch.zeros_like(recon))
        return squared_error(target, out)

    def reconstruction_error(self, x: torch.Tensor) -> torch.Tensor:
        """Squared error per sample (N,), each dimension's error in units of its residual scale
        (:meth:`fit_residual_scale`; 1 until fitted, and for a likelihood without a scale); a
        mixed table's binary and categorical columns add twice their cross-entropy."""
        if isinstance(self.likelihood, MixedLikelihood):
            return -2 * self.likelihood.log_prob(self.decoder(self.encoder(x)), x, continuous="scaled")
        log_scale = getattr(self.likelihood, "log_scale", None)
        return masked_squares(self.reconstruct(x), x, None if log_scale is None else torch.exp(log_scale))

    @torch.no_grad()
    def fit_residual_scale(self, x: torch.Tensor) -> None:
        """Set the scale of each dimension's Gaussian p(x|z) (a ``gaussian-learned`` likelihood,
        which squared-error training leaves untouched) to the spread of the residuals on ``x``
        (N, *input_shape): 1.4826 times their median absolute value, which is their standard
        deviation for normal residuals and is not widened by the few samples the model cannot
        reconstruct. A dimension reconstructed to within e^-5 keeps that floor."""
        log_scale = getattr(self.likelihood, "log_scale", None)
        if log_scale is None:
            return
        residuals = self.reconstruct(x) - x
        if isinstance(self.likelihood, MixedLikelihood):  # the scales of its continuous columns
            residuals = residuals[:, self.likelihood.continuous_columns]
        spread = residuals.abs().nanmedian(0).values * 1.4826  # (missing cells left out)
        log_scale.copy_(spread.clamp_min(math.exp(LOG_SCALE_MIN)).log())
