"""What every vaekit model shares: one contract (encode and decode to distributions, its own
training objective, sampling where it has a prior), the shape of one sample, the code size,
the likelihood, and the networks' architecture (``mlp`` or ``conv``)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .. import likelihoods
from ..errors import VaekitError, option
from .conv import ConvDecoder, ConvEncoder
from .mlp import mlp

IMPUTE_ROUNDS = 5  # reconstruct-and-fill passes of a model that has no posterior to weigh


class PointMass:
    """A distribution with all its mass on one value: what a deterministic autoencoder's
    encoder and decoder give, so it answers what a Gaussian's callers ask (``mean``,
    ``mode``, ``stddev``, ``sample``) with that value and no spread."""

    def __init__(self, value: torch.Tensor):
        self.value = value

    @property
    def mean(self) -> torch.Tensor:
        return self.value

    mode = mean

    @property
    def stddev(self) -> torch.Tensor:
        return torch.zeros_like(self.value)

    def sample(self, sample_shape=()) -> torch.Tensor:
        return self.value.expand(*sample_shape, *self.value.shape)

    rsample = sample


class LatentModel(nn.Module):
    """The contract every vaekit model keeps, so no caller needs to ask which model it holds.

    - ``encode(x, y=None)``: q(z|x) as a distribution over codes (an AE's: a :class:`PointMass`);
    - ``decode(z, y=None)``: p(x|z) as a distribution over samples (its ``mean`` is the output);
    - ``objective(x, target, weights, y)``: the model's own training loss, as per-sample
      :class:`~vaekit.objectives.LossTerms`;
    - ``codes`` and ``reconstruct``: the means of those, deterministic;
    - ``sample(n, ..., prior=None)``: new samples, from N(0, I) where the model has that
      prior (``generative``) or from a density fitted to its codes after training
      (``priors``, see :mod:`vaekit.priors`); ``generative`` models also have a KL term and
      an ELBO to report.

    ``y`` is the labels a conditional model (``n_classes`` > 0) needs; others ignore it.
    Shapes: x is (N, *input_shape); codes are (N, latent_dim).
    """

    generative = False  # an N(0, I) prior to sample from, and a negative ELBO among the metrics
    n_classes = 0
    default_prior = "normal"  # what sample() draws from when not told (set from the config by build_model)
    prior_chosen = False  # its config chose a prior (runs made since priors are fitted after training)
    unfinished = False    # its weights were saved before training fitted its priors (see priors.saved_priors)
    kind_name = "a plain autoencoder"  # what messages call a model without an N(0, I) prior

    def __init__(self, input_shape: Sequence[int], latent_dim: int, likelihood: str, blocks=()):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.likelihood_name = likelihood
        self.likelihood = likelihoods.build(likelihood, self.input_shape, blocks)  # p(x|z); may hold parameters
        # Densities over codes fitted after training ("gmm", "flow"); empty while training, so
        # the optimiser and DDP see only the networks (see build_model).
        self.priors = nn.ModuleDict()

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None):
        raise NotImplementedError

    def objective(self, x: torch.Tensor, target: torch.Tensor | None = None, weights=None,
                  y: torch.Tensor | None = None, forward=None):
        """Per-sample loss terms on a batch. ``target`` (default ``x``) is what the output should
        be (the clean data when ``x`` is corrupted); ``weights`` how the KL term enters the loss
        (:class:`~vaekit.objectives.KLWeights`); ``forward`` the module to run in place of the
        model's own forward pass (the model compiled by ``torch.compile``)."""
        raise NotImplementedError

    def codes(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The code of each input (the posterior mean), (N, latent_dim)."""
        return self.encode(x, y).mean

    def decode_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The output for each code: the mean of p(x|z), (N, *input_shape)."""
        return self.decode(z, y).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The output for each input, deterministic: the decoder's mean at the code's."""
        return self.decode_mean(self.codes(x, y), y)

    @torch.no_grad()
    def impute(self, x: torch.Tensor, draws: int = 100, generator: torch.Generator | None = None,
               rounds: int = IMPUTE_ROUNDS, y: torch.Tensor | None = None) -> torch.Tensor:
        """A table batch ``x`` (N, D) with its missing cells (NaN) filled, its observed cells as
        they are. Here: reconstruct, put the reconstruction in the missing cells, and again
        (``rounds`` times), as for any autoencoder; a VAE weighs its posterior draws instead
        (:meth:`vaekit.models.VAE.impute`)."""
        seen, filled = ~torch.isnan(x), x  # (the encoder takes the missing cells as 0: ZeroFilled)
        for _ in range(rounds):
            filled = torch.where(seen, x, self.reconstruct(filled, y))
        return filled

    def reconstruction_error(self, x: torch.Tensor) -> torch.Tensor:
        """Squared error of :meth:`reconstruct` per sample (N,), summed over the data dimensions."""
        return (self.reconstruct(x) - x).pow(2).flatten(1).sum(1)

    def code_metrics(self, codes: torch.Tensor) -> dict:
        """Figures of the codes (N, latent_dim) of a dataset that only this kind of model has
        (a VQ-VAE's codebook use); none by default."""
        return {}

    @property
    def sampling_priors(self) -> tuple[str, ...]:
        """The priors ``sample`` can draw from: N(0, I) for a generative model, then the fitted ones."""
        return ("normal",) * self.generative + tuple(self.priors)

    def draw_codes(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
                   y: torch.Tensor | None = None, prior: str | None = None) -> torch.Tensor:
        """``n`` codes (n, latent_dim) from ``prior`` (default: :attr:`default_prior`), each
        draw's spread times ``temperature``. A conditional model's ``gmm`` is its classes'
        Gaussians: label y draws from class y's."""
        prior = prior or self.default_prior
        if prior not in self.sampling_priors:
            raise VaekitError(self._no_prior(prior))
        if self.n_classes and y is None:
            raise VaekitError("this conditional model samples a class; give a label for each sample")
        if prior == "normal":
            p = next(self.parameters())
            return self.from_noise(temperature * torch.randn(n, self.noise_dim, generator=generator, device=p.device,
                                                             dtype=p.dtype))
        component = y.long() if self.n_classes and prior == "gmm" else None
        return self.priors[prior].sample(n, generator=generator, temperature=temperature, component=component)

    def _no_prior(self, prior: str) -> str:
        if self.unfinished:
            return (f"this run's training stopped before its priors were fitted; finish it with "
                    f"{option('resume')} (the run folder), then sample")
        if not self.sampling_priors:
            return (f"this autoencoder was trained before vaekit fitted priors to codes, so it has nothing to "
                    f"sample from; train it again, or train {option('model', 'vae')}")
        if prior == "normal":
            return f"{self.kind_name} has no N(0, I) prior; sample with {option('prior', self.default_prior)}"
        return (f"this run has no fitted {prior} prior; choose one of {', '.join(self.sampling_priors)}"
                + (f", or train with {option('prior', prior)}" if prior == "flow" else ""))

    @property
    def noise_dim(self) -> int:
        """Standard-normal numbers one draw from the model's own prior takes (:meth:`from_noise`)."""
        return self.latent_dim

    def from_noise(self, noise: torch.Tensor) -> torch.Tensor:
        """Codes from ``noise_dim`` standard-normal numbers each: N(0, I) is the noise itself."""
        return noise

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               y: torch.Tensor | None = None, prior: str | None = None) -> torch.Tensor:
        """``n`` new samples decoded to the likelihood mean, from codes drawn by :meth:`draw_codes`."""
        return self.decode_mean(self.draw_codes(n, generator, temperature, y, prior), y)


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
    first = nn.Flatten() if len(input_shape) > 1 else ZeroFilled()
    return nn.Sequential(first, mlp([n_in, *hidden_dims], final_activation=True)), \
        (hidden_dims[-1] if hidden_dims else n_in)


class ZeroFilled(nn.Module):
    """A table's missing cells (NaN) as 0, the training mean in standardised units: what the
    encoder sees of them, as in MIWAE (Mattei and Frellsen, 2019); the likelihood leaves them out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(torch.isnan(x), torch.zeros((), dtype=x.dtype, device=x.device), x)


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
