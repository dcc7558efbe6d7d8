"""What every vaekit model shares: the shape of one sample, the code size, the likelihood,
and the networks' architecture (``mlp`` or ``conv``)."""
from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from .. import likelihoods
from ..errors import VaekitError, option
from .conv import ConvDecoder, ConvEncoder
from .mlp import mlp


class LatentModel(nn.Module):
    """Base of the AE and the VAE. Shapes: x is (N, *input_shape); codes are (N, latent_dim)."""

    def __init__(self, input_shape: Sequence[int], latent_dim: int, likelihood: str):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.likelihood_name = likelihood
        self.likelihood = likelihoods.build(likelihood, self.input_shape)  # p(x|z); may hold parameters


def encoder_body(arch: str, input_shape: tuple[int, ...], hidden_dims: Sequence[int]) -> tuple[nn.Module, int]:
    """x (N, *input_shape) -> features (N, F); returns the network and F."""
    if arch == "conv":
        if len(input_shape) != 3:
            raise VaekitError(f"{option('arch', 'conv')} needs images, but samples have shape {input_shape}; "
                              f"use {option('arch', 'mlp')}")
        enc = ConvEncoder(input_shape, hidden_dims)
        return enc, enc.out_features
    # No hidden widths: linear maps (with a Gaussian likelihood, probabilistic PCA).
    n_in = math.prod(input_shape)
    return nn.Sequential(_reshape(nn.Flatten(), input_shape), mlp([n_in, *hidden_dims], final_activation=True)), \
        (hidden_dims[-1] if hidden_dims else n_in)


def decoder_net(arch: str, latent_dim: int, input_shape: tuple[int, ...], hidden_dims: Sequence[int]) -> nn.Module:
    """z (N, latent_dim) -> raw parameters (N, *input_shape)."""
    if arch == "conv":
        return ConvDecoder(latent_dim, input_shape, hidden_dims)
    return nn.Sequential(mlp([latent_dim, *reversed(hidden_dims), math.prod(input_shape)], final_activation=False),
                         _reshape(nn.Unflatten(1, input_shape), input_shape))


def _reshape(module: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """``module``, or nothing to do where samples are already flat (tables): a reshape is an
    extra step in every backward pass. Both have no weights, so the layer indices (and saved
    models) are the same either way."""
    return module if len(input_shape) > 1 else nn.Identity()
