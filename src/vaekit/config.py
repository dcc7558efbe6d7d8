"""Configuration dataclasses, one per concern, serialised to a run's ``config.json``.

``config.json`` holds everything needed to rebuild the model and re-create the data
split, so every command works from the run folder alone.
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

from .errors import VaekitError, option

MODELS = ("ae", "vae", "iwae", "cvae", "hvae", "vqvae")
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("auto", "bernoulli", "continuous-bernoulli", "gaussian", "gaussian-learned", "laplace-learned")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")
PRIORS = ("normal", "gmm", "flow", "autoregressive")  # what new samples are drawn from (vaekit.priors)


def check_prior(name: str | None) -> None:
    """One line for a prior that is not one of :data:`PRIORS` (None: the run's own)."""
    if name is not None and name not in PRIORS:
        raise VaekitError(f"unknown {option('prior')} {name!r}; choose one of {', '.join(PRIORS)}")


SEED_MAX = 2 ** 63 - 1  # the largest seed every generator vaekit seeds (torch's, NumPy's) takes


def check_seed(seed, name: str = "seed") -> None:
    """One line for a seed that is not a whole number in [0, :data:`SEED_MAX`]."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= SEED_MAX:
        raise VaekitError(f"{option(name)} must be a whole number from 0 to 2**63 - 1 ({SEED_MAX}), got {seed!r}")


def check_types(cfg) -> None:
    """Each number-valued option holds a number of its kind (a bool is neither): one clear line
    instead of a TypeError from deep inside."""
    for f in dataclasses.fields(cfg):
        value, kind = getattr(cfg, f.name), str(f.type)
        if value is None and "None" in kind:
            continue
        if kind.startswith("bool"):
            ok, what = isinstance(value, bool) or (isinstance(value, numbers.Integral) and value in (0, 1)), \
                "True or False"
        elif kind.startswith("int"):
            ok, what = isinstance(value, numbers.Integral) and not isinstance(value, bool), "a whole number"
        elif kind.startswith("float"):
            ok, what = isinstance(value, numbers.Real) and not isinstance(value, bool), "a number"
        elif kind.startswith("tuple[int"):
            ok = not isinstance(value, str) and all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
            what = "whole numbers such as (400,) or (512, 256)"
        else:
            continue
        if not ok:
            raise VaekitError(f"{option(f.name)} must be {what}, got {value!r}")


@dataclass
class DataConfig:
    spec: str = "mnist-5k"
    val_fraction: float = 0.1
    image_size: tuple[int, int] | None = None  # resize every image to (H, W)
    # Tables with values outside [0, 1] are standardised (mean 0, std 1 per feature, from the
    # training split); tables in [0, 1] and images are modelled as they are.
    standardize: bool = True
    # Columns whose kind the user declares ({"zip": "categorical"}): see vaekit.data.schema.
    column_types: dict[str, str] | None = None
    # Filled in from the data: how the user's files hold samples, tabular column names, class
    # names, and the standardisation statistics (None when the data is used as it is).
    layout: str = ""
    columns: list[str] | None = None
    class_names: list[str] | None = None  # where the labels were names (subfolders, label text): what they index
    # A table with binary or categorical columns: each column's kind and levels, which every
    # later read of a table applies (None: numbers alone, or images).
    schema: list[dict] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    # How training held the data: "memory" (one tensor, the fast path) or "stream" (read in
    # windows by DataLoader workers), and why (its size against the memory budget).
    storage: str = ""
    storage_reason: str = ""

    def __post_init__(self):
        if self.image_size is not None:
            self.image_size = tuple(self.image_size)

    def table_schema(self):
        """The recorded :class:`~vaekit.data.schema.Schema` (None: numbers alone, or images)."""
        from .data.schema import Schema

        return None if self.schema is None else Schema.from_json(self.schema)

    def validate(self) -> None:
        check_types(self)
        if self.column_types is not None:
            from .data.schema import KINDS

            if not isinstance(self.column_types, dict) or any(v not in KINDS for v in self.column_types.values()):
                raise VaekitError(f"{option('column_types')} must map column names to one of {', '.join(KINDS)}, "
                                  f"such as {{'zip': 'categorical'}}; got {self.column_types!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise VaekitError(f"{option('val_fraction')} must be in [0, 1), got {self.val_fraction}")


@dataclass
class ModelConfig:
    model: str = "vae"
    arch: str | None = None  # "mlp", or "conv"; None: conv for a VQ-VAE (whose code is a grid), else mlp
    latent_dim: int = 20
    hidden_dims: tuple[int, ...] | None = None  # MLP widths (default 400) or conv channels (32, 64)
    likelihood: str = "auto"
    k: int = 5  # importance samples per data point for the IWAE objective
    # Filled in from the data: the shape of one sample, channel-first for images, and the
    # number of classes a conditional model (cvae) conditions on.
    input_shape: tuple[int, ...] = ()
    n_classes: int = 0
    # A table with binary or categorical columns: its model columns as (kind, width) runs, each
    # kind with its own likelihood (vaekit.likelihoods.MixedLikelihood); empty otherwise.
    blocks: tuple[tuple[str, int], ...] = ()
    # The prior new samples are drawn from (vaekit.priors): "normal", "gmm" or "flow"; a
    # Gaussian mixture is fitted to the codes after every training, a flow when chosen.
    # None: not chosen, which a new run resolves to DEFAULT_PRIOR; a run made before
    # priors were fitted has None.
    prior: str | None = None

    def __post_init__(self):  # JSON and callers may give lists
        if self.arch is None:
            self.arch = "conv" if self.model == "vqvae" else "mlp"
        if self.hidden_dims is None:
            self.hidden_dims = (32, 64) if self.arch == "conv" else (400,)
        if not isinstance(self.hidden_dims, str):  # a string is refused whole by validate()
            self.hidden_dims = tuple(self.hidden_dims)
        self.input_shape = tuple(self.input_shape)
        self.blocks = tuple((str(kind), int(width)) for kind, width in self.blocks)

    def validate(self) -> None:
        check_types(self)
        if self.model not in MODELS:
            raise VaekitError(f"unknown {option('model')} {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.arch not in ARCHS:
            raise VaekitError(f"unknown {option('arch')} {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.likelihood not in LIKELIHOODS:
            raise VaekitError(
                f"unknown {option('likelihood')} {self.likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
        if self.k < 1:
            raise VaekitError(f"{option('k')} must be at least 1, got {self.k}")
        check_prior(self.prior)
        if self.prior == "normal" and self.model == "ae":
            raise VaekitError(f"{option('prior', 'normal')} cannot apply to {option('model', 'ae')}: a plain "
                              "autoencoder has no N(0, I) prior; leave it out (the default, gmm, fits one to its "
                              "codes)")
        if self.model == "vqvae":
            if self.arch != "conv":
                raise VaekitError(f"{option('model', 'vqvae')} is convolutional (its code is a grid of image "
                                  f"features); leave out {option('arch', self.arch)}")
            if self.prior == "normal":
                raise VaekitError(f"{option('prior', 'normal')} cannot apply to {option('model', 'vqvae')}: its "
                                  "code is a grid of discrete symbols with no N(0, I) prior; leave it out (the "
                                  "default, autoregressive, is fitted to the training codes)")
        elif self.prior == "autoregressive":
            raise VaekitError(f"{option('prior', 'autoregressive')} is a prior over a VQ-VAE's grid of symbols; "
                              f"train {option('model', 'vqvae')}, or choose gmm or flow")
        if self.latent_dim < 1:
            raise VaekitError(f"{option('latent_dim')} must be at least 1, got {self.latent_dim}")
        if any(h < 1 for h in self.hidden_dims) or (self.arch == "conv" and not self.hidden_dims):
            raise VaekitError(
                f"{option('hidden_dims')} must be positive widths such as 400 or 512,256, got {self.hidden_dims}")


# What a run trained to denoise (``noise`` given) gets where the model and code size are not
# given: a deterministic autoencoder with a 64-d code, the classic denoising autoencoder. On
# MNIST at sigma 0.5 (bench/denoise.py, 20 epochs, PSNR) the AE passes detail a VAE's noisy
# code loses, and gains from a wider code where the VAE does not:
#   conv: AE 18.01 (z20), 19.47 (z64), 19.63 (z128) dB; VAE 18.14, 18.21, 17.47 dB
#   mlp:  AE 17.09, 17.62, 17.76 dB; VAE 16.31, 16.16, 15.96 dB
DENOISER_MODEL, DENOISER_LATENT_DIM = "ae", 64


def denoiser_defaults(model_options: dict, noise) -> dict:
    """``model_options`` with the denoiser's model and code size where a denoising run
    (``noise`` given) leaves them out; unchanged otherwise."""
    if not noise:
        return model_options
    model = model_options.get("model") or DENOISER_MODEL
    latent = model_options.get("latent_dim") or (DENOISER_LATENT_DIM if model == DENOISER_MODEL else None)
    return {**model_options, "model": model, **({"latent_dim": latent} if latent else {})}


def vqvae_options(model_options: dict) -> None:
    """A VQ-VAE's code size follows from the images and the conv widths: refuse one given."""
    if model_options.get("model") == "vqvae" and model_options.get("latent_dim") is not None:
        raise VaekitError(f"{option('latent_dim')} cannot apply to {option('model', 'vqvae')}: its code is one "
                          f"vector of a few channels per position of the grid its conv blocks leave (7 x 7 for "
                          f"28 x 28 images); set the grid with {option('hidden_dims')} (one halving per width), "
                          f"or leave it out")


# A hierarchical VAE's KL warm-up where none is given: epochs over which the KL weight rises
# from 0 (two thirds of the epochs where there are fewer than 30). Without it the upper layer
# collapses before the lower one has learnt anything to pass up (Sønderby et al., 2016). On
# MNIST (8,000 digits, 30 epochs, IW-NLL of 2,000 held out, bench/generation.py): no warm-up
# 113.8 nats (3 of 20 dimensions active), 10 epochs 108.7, 20 epochs 108.05, against the
# VAE's 108.5 (and 109.5 for a VAE given the same 20 epochs of warm-up).
HVAE_KL_WARMUP = 20.0


def hvae_defaults(model_options: dict, train_options: dict) -> dict:
    """``train_options`` with the hierarchical VAE's KL warm-up where it is left out."""
    if model_options.get("model") != "hvae" or "kl_warmup" in train_options:
        return train_options
    epochs = train_options.get("epochs") or TrainConfig.epochs
    return {**train_options, "kl_warmup": min(HVAE_KL_WARMUP, 2 * epochs / 3)}


# A table's training where epochs and patience are not given, counted in optimisation steps, not
# epochs: 50 epochs of a 400-row table are 150 steps, and a patience of 10 epochs stopped it after
# as few as 22 epochs (60 steps), its code barely used. At least TABLE_STEPS steps (so at least
# 50 epochs, at most TABLE_MOST_EPOCHS), and a patience of at least TABLE_PATIENCE_STEPS steps (10
# epochs where those are more); the weights of the best validation epoch are kept as always.
# Imputation error (bench/impute.py, RMSE in column sds, 10% / 30% of cells removed, seed 0),
# epoch-counted defaults -> these: diabetes 0.876 -> 0.773 / 0.841 -> 0.786, breast_cancer 0.483 ->
# 0.381 / 0.549 -> 0.483, wine 0.797 -> 0.640 / 0.867 -> 0.782, Boston 0.744 -> 0.682 / 0.790 ->
# 0.687; adult and diamonds (5,000 rows, past 2,000 steps in 56 epochs) within 0.004. Twice the
# steps and patience gave the same errors to three digits: the best epoch came within 2,000.
TABLE_STEPS, TABLE_PATIENCE_STEPS, TABLE_MOST_EPOCHS = 2000, 500, 2000


def table_schedule(train: TrainConfig, rows: int, val_fraction: float, given) -> TrainConfig:
    """``train`` with a table's epochs and patience counted in steps (see TABLE_STEPS) where
    they are not ``given`` (the options the user set)."""
    val = int(round(rows * val_fraction))  # as Dataset.split_indices holds out
    per_epoch = math.ceil(max(1, rows - val) / train.batch_size)
    changes = {}
    if "epochs" not in given:
        changes["epochs"] = int(min(TABLE_MOST_EPOCHS, max(train.epochs, math.ceil(TABLE_STEPS / per_epoch))))
    if "patience" not in given and train.patience is not None:
        changes["patience"] = int(max(train.patience, math.ceil(TABLE_PATIENCE_STEPS / per_epoch)))
    return dataclasses.replace(train, **changes)


# Training options that weight or shape the KL term of the ELBO, and the models whose objective
# has no such term (so the options would be silently ignored).
KL_OPTIONS = ("beta", "kl_warmup", "free_bits")
NO_KL_WEIGHT = {"ae": "an autoencoder's loss is the reconstruction error alone, with no KL term",
                "vqvae": "a VQ-VAE's loss is the reconstruction's negative log-likelihood alone, with no KL term",
                "iwae": "the importance-weighted bound has no separate KL term to weight"}


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    patience: int | None = 10  # epochs without validation improvement before stopping
    time_budget: float | None = None  # seconds of training, after which the epoch under way is the last
    device: str = "auto"
    precision: str = "auto"  # bf16 mixed precision where the hardware has it natively
    noise: str | None = None  # denoising: corrupt inputs with this spec (see vaekit.noise)
    beta: float = 1.0         # KL weight (beta-VAE)
    kl_warmup: float = 0.0    # epochs over which the KL weight rises linearly from 0 to beta
    free_bits: float = 0.0    # nats per latent dimension the KL term does not penalise
    binarize: str | None = None  # "dynamic": a fresh Bernoulli draw of each image per use; "fixed": one draw
    progress: bool = True
    tensorboard: bool = False  # also log scalars and image grids to RUN/tensorboard
    compile: bool = False  # torch.compile the model's forward pass (falls back to eager if it cannot)
    memory_budget: int | None = None  # bytes of data held in memory; larger data streams (None: a quarter of free)
    workers: int | None = None  # DataLoader workers reading streamed data (None: chosen for the source)
    dist_timeout: float = 300.0  # seconds a process waits for the others under torchrun before giving up
    world_size: int = 1  # processes that trained (the last session, under torchrun); filled in
    trim: float | None = None  # learn from each batch's rows within this Tukey fence of their losses (None: all)
    lr_fan_in: int | None = None  # weights with more inputs than this learn at lr * sqrt(lr_fan_in / inputs)

    def validate(self) -> None:
        check_types(self)
        check_seed(self.seed)
        if self.epochs < 1:
            raise VaekitError(f"{option('epochs')} must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise VaekitError(f"{option('batch_size')} must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise VaekitError(f"{option('lr')} must be positive, got {self.lr}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise VaekitError(f"{option('time_budget')} must be a positive number of seconds, got {self.time_budget}")
        if self.patience is not None and self.patience < 1:
            raise VaekitError(f"{option('patience')} must be at least 1, got {self.patience}")
        if self.device not in DEVICES:
            raise VaekitError(f"unknown {option('device')} {self.device!r}; choose one of {', '.join(DEVICES)}")
        from .noise import parse_noise

        if self.binarize not in (None, "dynamic", "fixed"):
            raise VaekitError(f"{option('binarize')} must be dynamic or fixed, got {self.binarize!r}")
        for name in KL_OPTIONS:
            if not getattr(self, name) >= 0:
                raise VaekitError(f"{option(name)} must be 0 or more, got {getattr(self, name)}")

        parse_noise(self.noise)
        if self.memory_budget is not None and not self.memory_budget > 0:
            raise VaekitError(f"{option('memory_budget')} must be a positive size such as 2G, got {self.memory_budget}")
        if self.workers is not None and self.workers < 0:
            raise VaekitError(f"{option('workers')} must be 0 or more, got {self.workers}")
        if not 0 < self.dist_timeout < math.inf:
            raise VaekitError(f"{option('dist_timeout')} must be a positive number of seconds, "
                              f"got {self.dist_timeout}")
        if self.precision not in PRECISIONS:
            raise VaekitError(f"unknown {option('precision')} {self.precision!r}; "
                              f"choose one of {', '.join(PRECISIONS)}")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        self.model.validate()
        self.data.validate()
        self.train.validate()

    def check_options_apply(self) -> None:
        """Refuse training options the model would silently ignore (checked when a run starts;
        a run folder written before this check still resumes)."""
        model, train = self.model.model, self.train
        if model not in NO_KL_WEIGHT:
            return
        given = [option(name, float(getattr(train, name))) for name in KL_OPTIONS
                 if getattr(train, name) != TrainConfig.__dataclass_fields__[name].default]
        if given:
            raise VaekitError(f"{' and '.join(given)} cannot apply to {option('model', model)}: {NO_KL_WEIGHT[model]}; "
                              f"leave {'them' if len(given) > 1 else 'it'} out, or train {option('model', 'vae')}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        def build(kind, values):
            names = {f.name for f in dataclasses.fields(kind)}
            return kind(**{k: v for k, v in values.items() if k in names})

        return cls(model=build(ModelConfig, d.get("model", {})),
                   data=build(DataConfig, d.get("data", {})),
                   train=build(TrainConfig, d.get("train", {})))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise VaekitError(f"{path} is missing: is {path.parent} a vaekit run folder?") from None
        except (json.JSONDecodeError, TypeError, AttributeError) as e:
            raise VaekitError(f"{path} is not a valid vaekit config ({e}); retrain the run") from None
