"""Priors fitted after training: densities over codes to draw new samples from.

A VAE is trained to match its codes to N(0, I), but never does: the codes of real data fill
only part of that ball, and a draw from N(0, I) often lands where no training code lies
and decodes to a blur between digits. Fitting a density to the training data's codes
after training and drawing from it instead (ex-post density estimation, Ghosh et al.,
2020; the two-stage VAE, Dai & Wipf, 2019; Pythae's samplers) keeps samples where the
decoder has learnt to draw. It also makes a plain autoencoder a generator.

- ``normal``: N(0, I), the VAE's own prior (an AE has none);
- ``gmm``: a full-covariance Gaussian mixture (:class:`GaussianMixturePrior`). A conditional
  model's class Gaussians are the same mechanism with one component per class, which the
  label picks;
- ``flow``: a RealNVP normalising flow (:class:`FlowPrior`).

Each prior is a module of the model (its tensors are saved with the weights), so ``sample``,
``serve``, the explorer and the ONNX export all draw from the same fitted density.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

from .config import PRIORS
from .errors import VaekitError, option

DEFAULT_PRIOR = "gmm"   # what new runs sample from (bench/generation.py)
GMM_COMPONENTS = 64     # mixture components, where there are codes enough (mixture_size)
GMM_VALUES = 1 << 22    # the most covariance entries a mixture stores (16 MB in float32)
MAX_FIT_CODES = 10_000  # codes a prior is fitted on (a random subset of larger data)
CODES_PER_COMPONENT = 5  # the fewest codes a mixture component gets per row of its covariance
FLOW_CODES_PER_DIM = 10  # the fewest codes per dimension a flow's couplings are trained on
# An autoregressive prior's training: about 30 passes over the codes, 200 to 3,000 steps of 64
# grids, at a peak learning rate of 3e-3 (ar_steps). On MNIST's 7 x 7 grids (7,200 digits) a
# width of 64 and two blocks reached the held-out likelihood of width 96 (63.8 nats) in the
# same 75 s, and 600 steps of width 128 and three blocks reached 69.9 nats, with samples at
# FID 216 against 110 (sample quality measured as bench/generation.py does).
AR_EPOCHS, AR_MIN_STEPS, AR_MAX_STEPS, AR_BATCH = 30, 200, 3000, 64
AR_LR = 3e-3


class GaussianMixturePrior(nn.Module):
    """A mixture of ``components`` full-covariance Gaussians over codes of ``latent_dim``.

    Unconditional: fitted by EM (scikit-learn's GaussianMixture) with as many components as
    the codes support (:func:`mixture_size`). Conditional (labels given): one
    component per class, its mean and covariance those of the class's codes, and
    ``sample`` draws component y for label y.
    """

    def __init__(self, latent_dim: int, components: int):
        super().__init__()
        self.register_buffer("loc", torch.zeros(components, latent_dim))
        self.register_buffer("scale_tril", torch.eye(latent_dim).repeat(components, 1, 1))
        self.register_buffer("log_weight", torch.full((components,), -math.log(components)))

    @property
    def components(self) -> int:
        return len(self.loc)

    @torch.no_grad()
    def fit(self, codes: torch.Tensor, labels: torch.Tensor | None = None, seed: int = 0) -> GaussianMixturePrior:
        codes = codes.double().cpu()
        d = codes.shape[1]
        if labels is not None:
            self._fit_classes(codes, labels.long().cpu())
            return self
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits

        x = codes.numpy()
        if len(x) < 2:  # one code says nothing of the spread: a unit Gaussian around it
            self._set(codes[:1], torch.eye(d, dtype=torch.float64)[None], torch.zeros(1, dtype=torch.float64))
            return self
        # One thread: EM's many small products run 8 times faster than with two threads per
        # pool fighting over the cores (measured on 7,200 codes of 20 dimensions).
        k = mixture_size(len(x), d, self.components)
        with threadpool_limits(1):
            gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-6, random_state=seed, max_iter=200).fit(x)
        self._set(torch.from_numpy(gm.means_), torch.linalg.cholesky(torch.from_numpy(gm.covariances_)),
                  torch.from_numpy(np.log(gm.weights_)))
        return self

    def _fit_classes(self, codes: torch.Tensor, y: torch.Tensor) -> None:
        """Each class's component: the mean and covariance of its codes; a class absent from
        the data keeps N(0, I). The weights are the classes' shares.

        A conditional encoder leaves some of the class in z (the class shows in x, and removing
        it gains the KL term little), so codes drawn from N(0, I) often fall where another
        class's codes lie and the decoder draws that class whatever label it is given. Drawing
        from each class's own codes keeps samples in their class. Adding the mean posterior
        variance (the whole aggregate posterior) widens each Gaussian by about a tenth and costs
        class fidelity: on MNIST samples were read as their digit 94% of the time against 97%
        (bench/cvae.py)."""
        c, d = self.components, codes.shape[1]
        count = torch.zeros(c, dtype=torch.float64).index_add_(0, y, torch.ones_like(y, dtype=torch.float64))
        total = torch.zeros(c, d, dtype=torch.float64).index_add_(0, y, codes)
        outer = torch.zeros(c, d, d, dtype=torch.float64).index_add_(0, y, codes[:, :, None] * codes[:, None, :])
        seen = count > 0
        n = count[seen][:, None]
        mean = total[seen] / n
        cov = outer[seen] / n[..., None] - mean[:, :, None] * mean[:, None, :]
        cov = 0.5 * (cov + cov.transpose(1, 2)) + 1e-6 * torch.eye(d, dtype=torch.float64)
        loc, tril = self.loc.double().clone(), self.scale_tril.double().clone()
        loc[seen], tril[seen] = mean, torch.linalg.cholesky(cov)
        self._set(loc, tril, torch.log(count.clamp_min(1) / count.sum().clamp_min(1)))

    def _set(self, loc, tril, log_weight) -> None:
        """Hold these components only (no padding: a saved model keeps what was fitted)."""
        dtype = self.loc.dtype
        self.loc, self.scale_tril, self.log_weight = loc.to(dtype), tril.to(dtype), log_weight.to(dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fitted mixture has as many components as the codes supported: take the saved sizes.
        for name in ("loc", "scale_tril", "log_weight"):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(saved, dtype=getattr(self, name).dtype))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def sample(self, n: int, generator=None, temperature: float = 1.0,
               component: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` codes (n, latent_dim): a component by its weight (or ``component``), then a draw
        from it with its spread times ``temperature``."""
        if component is None:
            component = torch.multinomial(self.log_weight.exp(), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.loc.shape[1], generator=generator, device=self.loc.device, dtype=self.loc.dtype)
        return self.transform(eps * temperature, component)

    def transform(self, eps: torch.Tensor, component: torch.Tensor) -> torch.Tensor:
        """Standard-normal draws ``eps`` (n, d) as draws from the components ``component`` (n,)."""
        return self.loc[component] + (self.scale_tril[component] @ eps.unsqueeze(-1)).squeeze(-1)

    def pick(self, uniform: torch.Tensor) -> torch.Tensor:
        """The component for each uniform draw in [0, 1) (n,), by the weights' cumulative sum:
        sampling without a random-number call, so an exported graph can do it."""
        edges = torch.cumsum(self.log_weight.exp(), 0)[:-1]
        return (uniform[:, None] >= edges[None, :]).sum(1)  # at most the last component, even for 1.0


def mixture_size(n: int, d: int, most: int) -> int:
    """Components for ``n`` codes of ``d`` dimensions: ``most``, or fewer where each would get
    under :data:`CODES_PER_COMPONENT` codes per parameter row of its covariance.

    More components follow the codes more closely and sample better. On the MNIST codes of
    an AE (7,200 of 20 dimensions, bench/generation.py), FID 116, 97 and 86 with 16, 32 and
    64 components at the same recall (0.62-0.65), and 148, 134 and 125 for a VAE's; choosing
    the count by the held-out likelihood of the codes settled on 16, and cost 10 s more."""
    return max(1, min(most, n // (CODES_PER_COMPONENT * (d + 1))))


class _Coupling(nn.Module):
    """One affine coupling layer: the dimensions off ``mask`` are scaled and shifted by
    functions of those on it (Dinh et al., 2017); tanh keeps each log-scale within +-3."""

    def __init__(self, mask: torch.Tensor, hidden: int):
        super().__init__()
        d = len(mask)
        self.register_buffer("mask", mask)
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2 * d))
        nn.init.zeros_(self.net[-1].weight)  # starts as the identity
        nn.init.zeros_(self.net[-1].bias)

    def _params(self, kept: torch.Tensor):
        log_scale, shift = self.net(kept).chunk(2, -1)
        free = 1 - self.mask
        return 3 * torch.tanh(log_scale / 3) * free, shift * free

    def forward(self, x):  # data -> base; returns y and log|det|
        log_scale, shift = self._params(x * self.mask)
        return x * torch.exp(log_scale) + shift, log_scale.sum(-1)

    def inverse(self, y):
        log_scale, shift = self._params(y * self.mask)
        return (y - shift) * torch.exp(-log_scale)


@contextlib.contextmanager
def _denormals_flushed():
    """Tiny floats as zeros while a flow trains: gradients that decay into subnormal numbers
    slowed Adam's steps 15-fold on the CPU."""
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)


class FlowPrior(nn.Module):
    """A RealNVP flow over codes: the codes standardised, then ``layers`` affine couplings
    with alternating masks, onto N(0, I). Sampling runs it backwards from N(0, T^2 I)."""

    def __init__(self, latent_dim: int, layers: int = 6, hidden: int = 64):
        super().__init__()
        self.register_buffer("center", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))
        alternate = (torch.arange(latent_dim) % 2).float()
        self.couplings = nn.ModuleList(_Coupling((alternate if i % 2 else 1 - alternate).clone(), hidden)
                                       for i in range(layers))
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        x = (z - self.center) / self.scale
        log_det = -torch.log(self.scale).sum().expand(len(z))
        for layer in self.couplings:
            x, ld = layer(x)
            log_det = log_det + ld
        return -0.5 * (x.pow(2).sum(-1) + self.latent_dim * math.log(2 * math.pi)) + log_det

    def transform(self, eps: torch.Tensor) -> torch.Tensor:
        """Base draws (n, d) to codes."""
        x = eps
        for layer in reversed(self.couplings):
            x = layer.inverse(x)
        return x * self.scale + self.center

    def sample(self, n: int, generator=None, temperature: float = 1.0, component=None) -> torch.Tensor:
        eps = torch.randn(n, self.latent_dim, generator=generator, device=self.center.device,
                          dtype=self.center.dtype)
        return self.transform(eps * temperature)

    def fit(self, codes: torch.Tensor, labels=None, seed: int = 0, steps: int = 2000,
            batch_size: int = 256) -> FlowPrior:
        """Maximum likelihood on the codes with Adam, keeping the weights that give a held-out
        tenth of them the highest likelihood. With fewer than :data:`FLOW_CODES_PER_DIM` codes
        per dimension the couplings stay the identity (a diagonal Gaussian over the codes)."""
        codes = codes.float().cpu()
        d = codes.shape[1]
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(codes), generator=g)
        cut = max(1, len(codes) // 10)
        held, fit = codes[order[:cut]], codes[order[cut:]] if len(codes) > 1 else codes
        with torch.no_grad():
            self.center.copy_(fit.mean(0))
            self.scale.copy_(fit.std(0).nan_to_num(1.0).clamp_min(1e-3) if len(fit) > 1 else torch.ones_like(
                self.scale))
        if len(fit) < FLOW_CODES_PER_DIM * (d + 1):
            # Too few codes to learn a flow from: couplings trained on them magnify noise by up to
            # e^18 (a 2-row table drew codes of 1e5). Keep them the identity: a diagonal Gaussian.
            return self.eval()
        self.train()
        with torch.random.fork_rng(), torch.enable_grad(), _denormals_flushed():
            torch.manual_seed(seed)
            opt = torch.optim.Adam(self.parameters(), lr=1e-3)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
            best, best_state = -math.inf, None
            for step in range(steps):
                idx = torch.randint(len(fit), (min(batch_size, len(fit)),), generator=g)
                loss = -self.log_prob(fit[idx]).mean()
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.parameters(), 10.0)
                opt.step()
                sched.step()
                if (step + 1) % 250 == 0 or step + 1 == steps:
                    with torch.no_grad():
                        ll = self.log_prob(held).mean().item()
                    if ll > best:
                        best, best_state = ll, {k: v.clone() for k, v in self.state_dict().items()}
        if best_state is not None:
            self.load_state_dict(best_state)
        return self.eval()


class _Block(nn.Module):
    """A pre-norm transformer block with causal self-attention."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, past: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """``x`` (n, t, width): the whole sequence (``past`` None, causal), or one new position
        after ``past``, the keys and values of those before it. Returns the output and the keys
        and values so far."""
        n, t, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        a = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=past is None)
        x = x + self.out(a.transpose(1, 2).reshape(n, t, width))
        return x + self.mlp(self.norm2(x)), (k, v)


class AutoregressivePrior(nn.Module):
    """A causal transformer over a VQ-VAE's grid of symbols in raster order: p(s) = prod_t
    p(s_t | s_<t), as the PixelCNN prior of van den Oord et al. (2017). Sampling draws one
    position at a time with each logit divided by the temperature (below 1: the likelier
    symbols, cleaner and less varied samples), from uniform draws by the cumulative
    probabilities, so an exported graph can do it too."""

    def __init__(self, positions: int, levels, width: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        from .models.vqvae import FSQ

        self.quantizer = FSQ(levels)
        self.positions, self.first = positions, self.quantizer.size  # the symbol before the first position
        self.embed = nn.Embedding(self.quantizer.size + 1, width)
        self.position = nn.Parameter(0.02 * torch.randn(positions, width))
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, self.quantizer.size)

    def logits(self, symbols: torch.Tensor) -> torch.Tensor:
        """Symbols (n, positions) -> each position's logits given the symbols before it (n, positions, size)."""
        tokens = torch.cat([torch.full_like(symbols[:, :1], self.first), symbols[:, :-1]], 1)
        h = self.embed(tokens) + self.position
        for block in self.blocks:
            h, _ = block(h)
        return self.head(self.norm(h))

    def log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p of each code's symbols (n,), in nats."""
        symbols = self.quantizer.grid_symbols(codes)
        return -nn.functional.cross_entropy(self.logits(symbols).transpose(1, 2), symbols, reduction="none").sum(1)

    def transform(self, uniform: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Uniform draws in [0, 1) (n, positions) -> codes (n, positions * channels), one position
        at a time, reusing the keys and values of the positions before."""
        token = torch.full_like(uniform[:, :1], self.first, dtype=torch.long)  # no len(): exports keep N dynamic
        past: list = [None] * len(self.blocks)
        drawn = []
        for t in range(self.positions):
            h = self.embed(token) + self.position[t]
            for i, block in enumerate(self.blocks):
                h, past[i] = block(h, past[i])
            logits = self.head(self.norm(h))[:, 0].float()
            # Shifted so the likeliest symbol's logit is 0 before dividing: a tiny temperature then
            # draws the likeliest symbol instead of overflowing into NaN.
            logits = (logits - logits.max(-1, keepdim=True).values) / temperature
            cdf = torch.softmax(logits, -1).cumsum(-1)
            token = (uniform[:, t:t + 1] >= cdf[:, :-1]).sum(1, keepdim=True)
            drawn.append(token)
        return self.quantizer.grid_codes(torch.cat(drawn, 1))

    def sample(self, n: int, generator=None, temperature: float = 1.0, component=None) -> torch.Tensor:
        device = self.position.device
        uniform = torch.rand(n, self.positions, generator=generator, device=device)
        return self.transform(uniform, temperature)

    def fit(self, codes: torch.Tensor, labels=None, seed: int = 0, batch_size: int = AR_BATCH,
            progress: bool = False) -> AutoregressivePrior:
        """Maximum likelihood on the codes' symbols with AdamW, keeping the weights that give a
        held-out tenth of them the highest likelihood (``progress``: a bar of the steps on stderr)."""
        import sys

        from tqdm.auto import tqdm

        device = self.position.device
        symbols = self.quantizer.grid_symbols(codes.to(device))
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(symbols), generator=g)
        cut = max(1, len(symbols) // 10)
        held, fit = symbols[order[:cut]], symbols[order[cut:]] if len(symbols) > 1 else symbols
        steps = ar_steps(len(symbols), batch_size)
        if progress:  # the one prior that takes a while: say so before the bar starts
            print(f"vaekit: fitting the autoregressive prior to the training codes ({steps:,} steps)", file=sys.stderr)
        self.train()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.enable_grad(), \
                _denormals_flushed():
            torch.manual_seed(seed)
            opt = torch.optim.AdamW(self.parameters(), lr=AR_LR, weight_decay=0.01)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, AR_LR, total_steps=steps, pct_start=0.05)
            best, best_state = -math.inf, None
            for step in tqdm(range(steps), desc="autoregressive prior", unit="step", leave=False, file=sys.stderr,
                             disable=None if progress else True):
                batch = fit[torch.randint(len(fit), (min(batch_size, len(fit)),), generator=g).to(device)]
                loss = nn.functional.cross_entropy(self.logits(batch).transpose(1, 2), batch)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.parameters(), 1.0)
                opt.step()
                sched.step()
                if (step + 1) % max(1, steps // 10) == 0 or step + 1 == steps:
                    self.eval()
                    with torch.no_grad():
                        ll = -nn.functional.cross_entropy(self.logits(held).transpose(1, 2), held).item()
                    self.train()
                    if ll > best:
                        best, best_state = ll, {k: v.clone() for k, v in self.state_dict().items()}
        if best_state is not None:
            self.load_state_dict(best_state)
        return self.eval()


def ar_steps(n: int, batch_size: int) -> int:
    """Optimisation steps of an autoregressive prior fitted to ``n`` grids (:data:`AR_EPOCHS` passes
    over them, within bounds)."""
    return int(min(AR_MAX_STEPS, max(AR_MIN_STEPS, AR_EPOCHS * n / batch_size)))


def build_prior(kind: str, model, components: int) -> nn.Module:
    """An unfitted prior ``kind`` over ``model``'s codes (``components``: a mixture's slots)."""
    if kind == "gmm":
        return GaussianMixturePrior(model.latent_dim, components)
    if kind == "flow":
        return FlowPrior(model.latent_dim)
    if kind == "autoregressive":
        return AutoregressivePrior(model.positions, model.quantizer.level_counts)
    raise VaekitError(f"unknown {option('prior')} {kind!r}; choose one of {', '.join(PRIORS)}")


def default_prior(model: str) -> str:
    """What a new run of ``model`` samples from unless told: a VQ-VAE's autoregressive prior over
    its symbols, otherwise the mixture (:data:`DEFAULT_PRIOR`)."""
    return "autoregressive" if model == "vqvae" else DEFAULT_PRIOR


def fitted_priors(cfg) -> tuple[str, ...]:
    """The priors a run of :class:`~vaekit.config.ModelConfig` ``cfg`` fits after training: a
    Gaussian mixture always (a few seconds; a VQ-VAE: its autoregressive prior instead), and the
    chosen prior. A run made
    before priors were fitted (``prior`` None) has a conditional model's class Gaussians only."""
    if cfg.prior is None:
        return ("gmm",) if cfg.n_classes else ()
    return tuple(dict.fromkeys(k for k in (default_prior(cfg.model), cfg.prior) if k != "normal"))


def sampling_default(cfg) -> str:
    """The prior ``sample`` draws from unless told: the run's chosen one."""
    if cfg.prior is None:
        return "gmm" if cfg.n_classes else "normal"
    return cfg.prior


@torch.no_grad()
def fit_priors(model, data, seed: int = 0, batch_size: int = 1024, kinds=None, progress: bool = False) -> None:
    """Fit each of ``model.priors`` to the codes of ``data``, a dataset in model units (at most
    :data:`MAX_FIT_CODES` rows, a seeded random choice where there are more).

    The codes are one draw from q(z|x) per row: a sample of the aggregate posterior, the
    codes the decoder learnt to decode. Against the posterior means, on MNIST (8,000 digits,
    bench/generation.py) the mixture's samples covered more of the held-out digits (recall
    0.53 against 0.39) for a little more FID (146 against 141). A conditional model's class
    Gaussians take the means, which keep samples in their class (see
    :meth:`GaussianMixturePrior._fit_classes`). An AE's codes are points: draws are means.
    ``kinds``: fit only these of the model's priors (default: all); ``progress``: show how an
    autoregressive prior's training goes.
    """
    if not len(model.priors):
        return
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(len(data))
    if len(data) > MAX_FIT_CODES:
        rows = torch.randperm(len(data), generator=g)[:MAX_FIT_CODES].sort().values
    means, draws, labels = [], [], []
    for chunk in rows.split(batch_size):
        y = data.labels(chunk, model)
        y = None if y is None else y.to(device)
        q = model.encode(data.batch(chunk).to(device), y)
        means.append(q.mean.cpu())
        draws.append((q.mean + q.stddev * torch.randn(q.mean.shape, generator=g).to(device)).cpu())
        if y is not None:
            labels.append(y.cpu())
    means, draws = torch.cat(means), torch.cat(draws)
    labels = torch.cat(labels) if labels else None
    for kind, prior in model.priors.items():
        if kinds is not None and kind not in kinds:
            continue
        if kind == "gmm" and labels is not None:
            prior.fit(means, labels, seed=seed)
        elif kind == "autoregressive":  # the one that takes a while
            prior.fit(draws, seed=seed, progress=progress)
        else:
            prior.fit(draws, seed=seed)
        prior.to(device)


def gmm_components(latent_dim: int) -> int:
    """The mixture's component slots for codes of ``latent_dim``: :data:`GMM_COMPONENTS`, fewer
    where their full covariances would pass :data:`GMM_VALUES` entries (a 512-d code gets 16),
    so a saved model does not grow by hundreds of megabytes."""
    return max(1, min(GMM_COMPONENTS, GMM_VALUES // latent_dim ** 2))


def saved_priors(model, tensors: dict) -> dict:
    """A weights file's ``tensors`` as ``model`` takes them, its priors matched to what was saved.

    - A conditional model saved its classes' Gaussians as ``class_loc`` and ``class_scale_tril``
      before every prior was a module here; older ones had none, and those stay N(0, I), what
      such a model was trained with and sampled from.
    - Weights saved while training (a run stopped before it ended) have no priors yet: the
      model loses those it would have had (``unfinished``, so sampling says to finish the run
      with --resume) and a VAE samples from N(0, I).
    - The networks alone (what training and --resume build) take no priors from a finished run.
    """
    priors = model.priors
    if "gmm" in priors and model.n_classes and not model.prior_chosen:
        gmm = priors["gmm"]
        for old, new in (("class_loc", "loc"), ("class_scale_tril", "scale_tril"), (None, "log_weight")):
            key = f"priors.gmm.{new}"
            if key not in tensors:
                tensors[key] = tensors.pop(old) if old in tensors else getattr(gmm, new)
    tensors = {k: v for k, v in tensors.items() if not k.startswith("priors.") or k.split(".")[1] in priors}
    for kind in [k for k in priors if not any(key.startswith(f"priors.{k}.") for key in tensors)]:
        del priors[kind]
        model.unfinished = model.prior_chosen
    if model.default_prior not in model.sampling_priors and model.generative:
        model.default_prior = "normal"
    return tensors
