"""Train an AE or VAE and write a run folder (config, metrics, weights, pictures).

Defaults train the classic VAE (784-400-20, Bernoulli output) on the bundled mnist-5k.
"""
from __future__ import annotations

import argparse
import sys

from ..config import (
    ARCHS,
    DENOISER_LATENT_DIM,
    DENOISER_MODEL,
    DEVICES,
    LIKELIHOODS,
    MODELS,
    PRECISIONS,
    PRIORS,
    DataConfig,
    ModelConfig,
    TrainConfig,
)
from ._common import add_data, nonnegative_int, positive_int


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.replace(" ", "").split(",") if w)
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected widths such as 400 or 512,256, got {text!r}")
    return widths


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Defaults are None so that --resume can tell which options were given; the values (and
    # choices) shown are the configs' own.
    model, data, train = ModelConfig, DataConfig, TrainConfig
    add_data(p, default_help=f" (default: {data.spec})")
    p.add_argument("--model", choices=MODELS,
                   help=f"model type (default: {model.model}, or {DENOISER_MODEL} with --noise); cvae conditions "
                        "on the data's labels; hvae has two stochastic layers (a ladder VAE); vqvae (images) codes "
                        "each image as a grid of discrete symbols and samples through an autoregressive prior")
    p.add_argument("--k", type=positive_int, help=f"importance samples per input for --model iwae (default: {model.k})")
    p.add_argument("--beta", type=float, help=f"weight of the KL term, beta-VAE (default: {train.beta:g})")
    p.add_argument("--kl-warmup", type=float, metavar="EPOCHS",
                   help=f"raise the KL weight linearly from 0 to beta over this many epochs "
                        f"(default: {train.kl_warmup:g})")
    p.add_argument("--free-bits", type=float, metavar="NATS",
                   help=f"KL per latent dimension that is not penalised, against posterior collapse "
                        f"(default: {train.free_bits:g})")
    p.add_argument("--arch", choices=ARCHS,
                   help="mlp (the classic) or conv (convolutional, for images of any size); default: mlp (conv for "
                        "vqvae)")
    p.add_argument("--prior", choices=PRIORS,
                   help="what new samples are drawn from: normal is N(0, I); gmm a Gaussian mixture fitted to the "
                        "training codes after training (the default, fitted for every run); flow a normalising "
                        "flow fitted the same way (some seconds more); autoregressive a small transformer over a "
                        "vqvae's grid of symbols (its default)")
    p.add_argument("--epochs", type=positive_int, help=f"training epochs (default: {train.epochs})")
    p.add_argument("--batch-size", type=positive_int, help=f"samples per step (default: {train.batch_size})")
    p.add_argument("--lr", type=float, help=f"Adam learning rate (default: {train.lr:g})")
    p.add_argument("--latent-dim", type=positive_int,
                   help=f"size of the code z (default: {model.latent_dim}, or {DENOISER_LATENT_DIM} for the "
                        f"{DENOISER_MODEL} that --noise trains by default)")
    p.add_argument("--hidden-dims", type=_widths, metavar="W[,W...]",
                   help="hidden widths in encoder order: MLP layers (default 400) or conv channels "
                        "(default 32,64)")
    p.add_argument("--likelihood", choices=LIKELIHOODS,
                   help="p(x|z): auto is bernoulli for data in [0, 1] (the classic choice), gaussian-learned "
                        "(one learned scale per dimension) otherwise; gaussian has a unit scale; "
                        "continuous-bernoulli is normalised for grey levels")
    p.add_argument("--seed", type=int, help=f"seed for initialisation, split and shuffling (default: {train.seed})")
    p.add_argument("--val-fraction", type=_fraction,
                   help=f"share of the data held out for validation and early stopping (default: {data.val_fraction})")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="stop after the epoch in which this much training time has passed")
    p.add_argument("--patience", type=positive_int,
                   help=f"stop after this many epochs without validation improvement (default: {train.patience})")
    p.add_argument("--noise", metavar="SPEC",
                   help="train a denoiser: corrupt inputs with gaussian:SIGMA, salt-pepper:P or mask:P")
    p.add_argument("--binarize", choices=("dynamic", "fixed"),
                   help="train on Bernoulli draws of the grey levels: fresh each time (dynamic, as in the "
                        "literature) or once (fixed); evaluation uses one fixed draw")
    p.add_argument("--no-standardize", action="store_true",
                   help="model a table's values as they are (by default tables outside [0, 1] are standardised)")
    p.add_argument("--column-types", metavar="COL=KIND[,...]",
                   help="a table's column kinds where not what the data say: continuous, binary or categorical, "
                        "e.g. zip=categorical (numbers are continuous, text categorical, bools binary)")
    p.add_argument("--image-size", metavar="H[xW]", help="resize images of an image folder to this size")
    p.add_argument("--device", choices=DEVICES, help=f"where to train (default: {train.device})")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="bf16 mixed precision or fp32; auto uses bf16 where the hardware has it (default)")
    p.add_argument("--memory-budget", metavar="SIZE",
                   help="data up to this size (e.g. 2G) is held in memory, larger data is streamed from disk "
                        "(default: a quarter of the free memory, shared by the processes of this machine)")
    p.add_argument("--workers", type=nonnegative_int,
                   help="DataLoader worker processes reading streamed data (default: 1 for files, up to 4 for "
                        "image folders)")
    p.add_argument("--dist-timeout", type=float, metavar="SECONDS",
                   help=f"under torchrun, how long a process waits for the others before it gives up "
                        f"(default: {train.dist_timeout:g})")
    p.add_argument("--out", metavar="DIR", help="run folder to create (default: runs/<model>-<data>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue training an existing run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument("--no-report", action="store_true", help="skip report.html (vaekit report writes it later)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (a few seconds to start; falls back to eager where it cannot)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log scalars and pictures to RUN/tensorboard (needs the tensorboard package)")


OPTIONS = ("model", "k", "beta", "kl_warmup", "free_bits", "arch", "epochs", "batch_size", "lr", "latent_dim",
           "hidden_dims", "likelihood", "seed", "val_fraction", "patience", "time_budget", "device", "precision",
           "noise", "binarize", "workers", "dist_timeout", "prior")


def run(args: argparse.Namespace) -> int:
    from ..data import parse_image_size, parse_size
    from ..data.schema import parse_column_types
    from ..distributed import current
    from ..orchestrate import train

    options = {k: getattr(args, k) for k in OPTIONS if getattr(args, k) is not None}
    if args.memory_budget is not None:
        options["memory_budget"] = parse_size(args.memory_budget)
    if args.no_standardize:
        options["standardize"] = False
    if args.image_size is not None:
        options["image_size"] = parse_image_size(args.image_size)
    if args.column_types is not None:
        options["column_types"] = parse_column_types(args.column_types)
    options["progress"] = not args.quiet  # also on --resume: how this session shows itself
    for flag in ("tensorboard", "compile"):
        if getattr(args, flag):
            options[flag] = True
    result = train(args.data, out=args.out, resume=args.resume, report=not args.no_report, **options)
    if not current().is_main:
        return 0  # rank 0 reports for all
    rows = result.metrics()
    kind = "val" if rows[-1]["val_loss"] is not None else "train"
    best = min(rows, key=lambda r: r[f"{kind}_loss"])
    print(f"trained {result.config.model.model} on {result.config.data.spec} for {rows[-1]['epoch']} epochs; "
          f"kept epoch {best['epoch']}, {kind} loss {best[kind + '_loss']:.2f} nats/sample", file=sys.stderr)
    print(result.path)
    return 0
