"""What every vaekit model shares: the shape of one sample, the code size, the likelihood."""
from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from .. import likelihoods


class LatentModel(nn.Module):
    """Base of the AE and the VAE. Shapes: x is (N, *input_shape); codes are (N, latent_dim)."""

    def __init__(self, input_shape: Sequence[int], latent_dim: int, likelihood: str):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.likelihood_name = likelihood
        self.likelihood = likelihoods.build(likelihood, self.input_shape)  # p(x|z); may hold parameters

    @property
    def n_inputs(self) -> int:
        """Values in one sample, the width of an MLP's input and output layers."""
        return math.prod(self.input_shape)
