"""Observation models p(x | z), as small modules owned by the model.

The decoder returns raw parameters; a likelihood turns them into

- ``distribution(params)``: a ``torch.distributions`` object over whole samples
  (``Independent``, so ``log_prob`` sums over every data dimension), for users;
- ``log_prob(params, x)``: the same log-likelihood per sample from fused kernels (BCE with
  logits), for training, where the distribution objects' Python overhead is a measurable
  share of each step. Tests check that the two agree. ``params`` may have leading dimensions
  that ``x`` (N, *sample) lacks, such as K draws (K, N, *sample): the result is then (K, N);
- ``mean(params)``: E[x|z], the reconstruction a user sees.

A table with binary or categorical columns has each column's own likelihood
(:class:`MixedLikelihood`). A table's missing cells (NaN) are left out of the log-likelihood, and a row's sum over its
observed cells is scaled to the table's width (:func:`full_row`).

Names: ``bernoulli`` (logits; the classic choice for data in [0, 1]), ``gaussian`` (unit
scale: -log p is half the squared error plus a constant), ``gaussian-learned`` (one learned
scale per data dimension, so noisy dimensions count less; suits standardised tables),
``continuous-bernoulli`` (the correctly normalised density for grey levels in [0, 1];
Loaiza-Ganem and Cunningham, 2019), ``laplace-learned`` (heavier tails than the Gaussian's,
a learned scale per dimension).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, ContinuousBernoulli, Independent, Laplace, Normal

NAMES = ("bernoulli", "continuous-bernoulli", "gaussian", "gaussian-learned", "laplace-learned")
UNIT_INTERVAL = ("bernoulli", "continuous-bernoulli")  # need data in [0, 1]
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_2 = math.log(2.0)
LOG_SCALE_MIN = -5.0  # a learned scale never drops below e^-5 of the data's unit, so no dimension can collapse


def observed(x: torch.Tensor) -> torch.Tensor | None:
    """Which cells of a table batch ``x`` (N, D) hold a value, where any is missing (NaN); None
    where none is, and for images, which have no missing cells."""
    if x.dim() != 2 or x.is_meta:  # (the memory estimate's shapes: as if nothing were missing)
        return None
    if torch.compiler.is_compiling():  # traced (an ONNX export, torch.compile): the masked path, whatever x holds
        return ~torch.isnan(x)
    missing = torch.isnan(x)
    return ~missing if bool(missing.any()) else None


def full_row(total: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """A sum over a row's observed cells, ``total`` (..., N), scaled to the row's full width: the
    observed cells' mean term times the number of columns. Rows with different numbers of missing
    cells then score on one scale (an unremarkable row with half its cells missing is not half as
    unlikely as a whole one), as if each missing cell were as likely as the row's others."""
    return total * (seen.shape[-1] / seen.sum(-1).clamp_min(1))


def filled_in(x: torch.Tensor, seen: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """``x`` with its missing cells taken from ``like`` (detached): a finite stand-in whose terms
    are masked out, so that no NaN reaches a gradient."""
    return x if seen is None else torch.where(seen, x, like.detach())


def row_sum(terms: torch.Tensor, x: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:
    """Per-cell ``terms`` (..., N, *sample) summed per sample: over every cell, or (``seen``, a
    table with missing cells) over the observed ones, scaled to full width (:func:`full_row`)."""
    if seen is None:
        return _per_sample(terms, x)
    return full_row(terms.masked_fill(~seen, 0.0).sum(-1), seen)


class BernoulliLikelihood(nn.Module):
    name = "bernoulli"

    def distribution(self, params: torch.Tensor) -> Independent:
        # validate_args=False: the support check would reject grey levels in [0, 1].
        return Independent(Bernoulli(logits=params, validate_args=False), params.dim() - 1)

    def cell_log_prob(self, params: torch.Tensor, x: torch.Tensor, constants: bool = True) -> torch.Tensor:
        """log p of each cell (every term depends on x: ``constants`` changes nothing)."""
        return -F.binary_cross_entropy_with_logits(params, x.expand_as(params), reduction="none")

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        seen = observed(x)
        x = filled_in(x, seen, torch.sigmoid(params))
        return row_sum(self.cell_log_prob(params, x), x, seen)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


class ContinuousBernoulliLikelihood(nn.Module):
    name = "continuous-bernoulli"

    def distribution(self, params: torch.Tensor) -> Independent:
        return Independent(ContinuousBernoulli(logits=params, validate_args=False), params.dim() - 1)

    def cell_log_prob(self, params: torch.Tensor, x: torch.Tensor, constants: bool = True) -> torch.Tensor:
        """log p of each cell: the Bernoulli term plus the log normaliser, which torch computes
        stably near 1/2 (it depends on the parameters, so ``constants`` changes nothing)."""
        return ContinuousBernoulli(logits=params, validate_args=False).log_prob(x)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        seen = observed(x)
        x = filled_in(x, seen, torch.sigmoid(params))
        return row_sum(self.cell_log_prob(params, x), x, seen)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return ContinuousBernoulli(logits=params, validate_args=False).mean


class GaussianLikelihood(nn.Module):
    """N(params, scale^2) per dimension; scale fixed at 1, or learned per dimension."""

    def __init__(self, shape: tuple[int, ...], learn_scale: bool = False):
        super().__init__()
        self.name = "gaussian-learned" if learn_scale else "gaussian"
        self.log_scale = nn.Parameter(torch.zeros(shape)) if learn_scale else None

    def _log_scale(self, params: torch.Tensor) -> torch.Tensor:
        if self.log_scale is None:
            return torch.zeros((), device=params.device, dtype=params.dtype)
        return self.log_scale.clamp_min(LOG_SCALE_MIN)

    def distribution(self, params: torch.Tensor) -> Independent:
        scale = self._log_scale(params).exp().expand_as(params)
        return Independent(Normal(params, scale, validate_args=False), params.dim() - 1)

    def cell_log_prob(self, params: torch.Tensor, x: torch.Tensor, constants: bool = True) -> torch.Tensor:
        """log p of each cell; without ``constants``, minus half the squared error in units of the
        scale alone (what an autoencoder's score counts)."""
        log_scale = self._log_scale(params)
        half_square = -0.5 * ((x - params) * torch.exp(-log_scale)).pow(2)
        return half_square - log_scale - _HALF_LOG_2PI if constants else half_square

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_scale = self._log_scale(params)
        seen = observed(x)
        if seen is not None:  # a table with missing cells: its observed cells' terms, to full width
            x = filled_in(x, seen, params)  # (a zero error where missing)
            normaliser = seen.to(log_scale.dtype) @ (log_scale.expand(seen.shape[1:]) + _HALF_LOG_2PI)
            sq = ((x - params) * torch.exp(-log_scale)).pow(2).sum(-1)
            return full_row(-0.5 * sq - normaliser, seen)
        # The terms that do not depend on x are summed once, not added to every value: on wide
        # rows each full-size operation costs more than the matrix products of a small batch.
        normaliser = log_scale.expand(x.shape[1:]).sum() + x[0].numel() * _HALF_LOG_2PI
        return -0.5 * _per_sample(((x - params) * torch.exp(-log_scale)).pow(2), x) - normaliser

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params


class LaplaceLikelihood(nn.Module):
    """Laplace(params, scale) per dimension, one learned scale per dimension, floored as the
    Gaussian's: heavier tails, so a value far off costs in proportion to its distance rather
    than to its square."""

    name = "laplace-learned"

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(shape))

    def cell_log_prob(self, params: torch.Tensor, x: torch.Tensor, constants: bool = True) -> torch.Tensor:
        """log p of each cell; without ``constants``, the absolute error in units of the scale."""
        log_scale = self.log_scale.clamp_min(LOG_SCALE_MIN)
        error = -(x - params).abs() * torch.exp(-log_scale)
        return error - log_scale - _LOG_2 if constants else error

    def distribution(self, params: torch.Tensor) -> Independent:
        scale = self.log_scale.clamp_min(LOG_SCALE_MIN).exp().expand_as(params)
        return Independent(Laplace(params, scale, validate_args=False), params.dim() - 1)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        seen = observed(x)
        x = filled_in(x, seen, params)
        return row_sum(self.cell_log_prob(params, x), x, seen)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params


class MixedLikelihood(nn.Module):
    """A table whose columns are of several kinds (:mod:`vaekit.data.schema`), each column with the
    likelihood of its kind: ``continuous`` columns the table's own (``name``: a Gaussian with a
    learned scale, or a Bernoulli-type one for columns in [0, 1]), ``binary`` columns a Bernoulli
    (logits), each ``categorical`` column a softmax over its one-hot model columns.

    ``log_prob`` is the sum over the table's columns (a categorical column counts once, however
    many levels it has), so a row's missing cells scale its sum by columns (:func:`full_row`).
    """

    def __init__(self, blocks, name: str):
        super().__init__()
        self.blocks = tuple((str(k), int(w)) for k, w in blocks)
        self.name = name
        self.continuous_columns, self.binary_columns, self.groups = [], [], []
        at = 0
        for kind, width in self.blocks:
            if kind == "categorical":
                self.groups.append((at, at + width))
            else:
                (self.continuous_columns if kind == "continuous" else self.binary_columns).extend(range(at, at + width))
            at += width
        self.n_columns = len(self.continuous_columns) + len(self.binary_columns) + len(self.groups)
        self.inner = build(name, (len(self.continuous_columns),)) if self.continuous_columns else None

    @property
    def log_scale(self) -> torch.Tensor | None:
        """The continuous columns' learned log scales (None where not learned)."""
        return getattr(self.inner, "log_scale", None)

    def distribution(self, params: torch.Tensor) -> MixedDistribution:
        return MixedDistribution(self, params)

    def column_terms(self, params: torch.Tensor, x: torch.Tensor, continuous: str = "density"):
        """Per-column log-likelihoods (..., N, columns) and which columns are observed ((N,
        columns), or None where nothing is missing). ``continuous``: the continuous columns'
        terms: their log density (``density``), or minus half their squared error, at unit scale
        (``unit``: an autoencoder's training loss) or in units of the learned scales (``scaled``:
        its anomaly score), without the terms that do not depend on x."""
        seen_cells = observed(x)
        x = filled_in(x, seen_cells, self.mean(params))
        terms, seen = [], []
        if self.continuous_columns:
            i = self.continuous_columns
            terms.append(self._continuous(params[..., i], x[..., i], continuous))
            seen.append(None if seen_cells is None else seen_cells[..., i])
        if self.binary_columns:
            i = self.binary_columns
            p = params[..., i]
            terms.append(-F.binary_cross_entropy_with_logits(p, x[..., i].expand_as(p), reduction="none"))
            seen.append(None if seen_cells is None else seen_cells[..., i])
        for start, stop in self.groups:
            log_p = torch.log_softmax(params[..., start:stop], dim=-1)
            terms.append((log_p * x[..., start:stop]).sum(-1, keepdim=True))
            seen.append(None if seen_cells is None else seen_cells[..., start:start + 1])
        return torch.cat(terms, -1), (None if seen_cells is None else torch.cat(seen, -1))

    def _continuous(self, params, x, continuous: str) -> torch.Tensor:
        if continuous == "unit":
            return -0.5 * (x - params).pow(2)
        return self.inner.cell_log_prob(params, x, constants=continuous == "density")

    def log_prob(self, params: torch.Tensor, x: torch.Tensor, continuous: str = "density") -> torch.Tensor:
        """The sum of :meth:`column_terms` per row (scaled to the full width where cells are missing)."""
        terms, seen = self.column_terms(params, x, continuous)
        if seen is None:
            return terms.sum(-1)
        return full_row(terms.masked_fill(~seen, 0.0).sum(-1), seen)

    def seen_share(self, x: torch.Tensor) -> torch.Tensor:
        """The share of each row's columns that are observed (N,)."""
        seen = ~torch.isnan(x)
        starts = self.continuous_columns + self.binary_columns + [start for start, _ in self.groups]
        return seen[..., starts].sum(-1) / self.n_columns

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x|z]: continuous columns' means, binary columns' probabilities of 1, each categorical
        column's probabilities of its levels."""
        out = params.clone()
        if self.continuous_columns and self.inner is not None and not isinstance(self.inner, GaussianLikelihood):
            out[..., self.continuous_columns] = self.inner.mean(params[..., self.continuous_columns])
        if self.binary_columns:
            out[..., self.binary_columns] = torch.sigmoid(params[..., self.binary_columns])
        for start, stop in self.groups:
            out[..., start:stop] = torch.softmax(params[..., start:stop], dim=-1)
        return out


class MixedDistribution:
    """p(x|z) of a :class:`MixedLikelihood`: what a caller of a distribution asks (``mean``,
    ``log_prob``, ``sample``), over a table's model columns."""

    def __init__(self, likelihood: MixedLikelihood, params: torch.Tensor):
        self.likelihood, self.params = likelihood, params

    @property
    def mean(self) -> torch.Tensor:
        return self.likelihood.mean(self.params)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.likelihood.log_prob(self.params, x)

    def sample(self, sample_shape=()) -> torch.Tensor:
        lik, params = self.likelihood, self.params.expand(*sample_shape, *self.params.shape)
        with torch.no_grad():
            out = lik.mean(params)
            if lik.continuous_columns:
                i = lik.continuous_columns
                out[..., i] = lik.inner.distribution(params[..., i]).sample()
            if lik.binary_columns:
                out[..., lik.binary_columns] = torch.bernoulli(out[..., lik.binary_columns])
            for start, stop in lik.groups:
                pick = torch.distributions.Categorical(probs=out[..., start:stop]).sample()
                out[..., start:stop] = F.one_hot(pick, stop - start).to(out.dtype)
        return out


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``values`` (..., N, *sample) summed over the sample's dimensions, those of ``x`` (N, *sample)."""
    return values.flatten(-(x.dim() - 1)).sum(-1) if x.dim() > 1 else values


def build(name: str, shape: tuple[int, ...], blocks=()) -> nn.Module:
    """The likelihood ``name`` over samples of ``shape``; a table of several column kinds
    (``blocks``, see :class:`MixedLikelihood`) takes ``name`` for its continuous columns."""
    if any(kind != "continuous" for kind, _ in blocks):
        return MixedLikelihood(blocks, name)
    if name == "bernoulli":
        return BernoulliLikelihood()
    if name == "continuous-bernoulli":
        return ContinuousBernoulliLikelihood()
    if name == "laplace-learned":
        return LaplaceLikelihood(tuple(shape))
    return GaussianLikelihood(tuple(shape), learn_scale=name == "gaussian-learned")


def choose(name: str, value_range: tuple[float, float]) -> str:
    """Resolve 'auto': Bernoulli for data in [0, 1] (the classic choice), else a Gaussian with a
    learned scale per dimension: with a fixed unit scale, standardised features are too noisy
    to be worth their KL cost and the posterior collapses (a 5-column table kept 2 active
    units and 0.5 MSE per feature; with learned scales 4 units and 0.05)."""
    from .errors import VaekitError, option

    lo, hi = value_range
    in_unit = lo >= 0.0 and hi <= 1.0
    if name == "auto":
        return "bernoulli" if in_unit else "gaussian-learned"
    if name in UNIT_INTERVAL and not in_unit:
        raise VaekitError(f"the {name} likelihood needs data in [0, 1] but the data spans "
                          f"[{lo:.3g}, {hi:.3g}]; use {option('likelihood', 'gaussian')} or scale the data")
    return name
