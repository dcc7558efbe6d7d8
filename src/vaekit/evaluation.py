"""Metrics of a trained model on a dataset, per sample and in nats unless named otherwise."""
from __future__ import annotations

import math

import numpy as np
import torch

from .data import Dataset
from .likelihoods import MixedLikelihood
from .objectives import iw_nll, loss_terms

ACTIVE_UNIT_VARIANCE = 0.01  # a latent dimension is active if its posterior mean varies this much


@torch.no_grad()
def evaluate(model, data: Dataset, batch_size: int = 1024, iw_samples: int | None = None,
             seed: int = 0) -> dict:
    """Negative ELBO and its terms, bits per dimension, MSE, PSNR, active units, and IW-NLL; for a
    table with binary or categorical columns, MSE and PSNR over its numbers and the share of its
    other cells reconstructed as another level (``category_error``).

    Sampling (one z per sample for the ELBO, ``iw_samples`` for the IW bound) is seeded,
    so the same call gives the same numbers.
    """
    model.eval()
    device = next(model.parameters()).device
    n, dims = len(data), math.prod(data.sample_shape)
    sums = {"neg_elbo": 0.0, "recon": 0.0, "kl": 0.0, "sq_err": 0.0, "cells": 0, "iw_nll": 0.0}
    codes, kl_dims = [], 0.0
    generator = torch.Generator(device=device).manual_seed(seed + 1)  # importance draws
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, n, batch_size):
            x = data.batch(slice(start, start + batch_size)).to(device)
            y = data.labels(slice(start, start + batch_size), model)
            y = None if y is None else y.to(device)
            terms = loss_terms(model, x, y=y)
            # recon + kl: the honest negative ELBO, whatever bound the model trains on
            sums["neg_elbo"] += (terms.recon + terms.kl).sum().item()
            if terms.kl_per_dim is not None:
                kl_dims = kl_dims + terms.kl_per_dim.sum(0).double().cpu()
            sums["recon"] += terms.recon.sum().item()
            sums["kl"] += terms.kl.sum().item()
            recon = model.reconstruct(x, y)
            mixed = isinstance(model.likelihood, MixedLikelihood)  # a table with categories
            numbers = model.likelihood.continuous_columns if mixed else slice(None)
            error = (recon - x)[..., numbers].pow(2)  # a table's missing cells: NaN, left out
            sums["sq_err"] += error.nansum().item()
            sums["cells"] += (~torch.isnan(error)).sum().item()
            if mixed:
                wrong, seen = category_errors(model.likelihood, recon, x)
                sums["wrong"] = sums.get("wrong", 0) + wrong
                sums["categories"] = sums.get("categories", 0) + seen
            codes.append(model.codes(x, y).cpu())
            if iw_samples and model.generative:
                sums["iw_nll"] += iw_nll(model, x, iw_samples, generator=generator, y=y).sum().item()
    mse = sums["sq_err"] / max(sums["cells"], 1)  # per observed value
    lo, hi = data.value_range()
    peak = max(hi - lo, 1e-12) if (lo < 0 or hi > 1) else 1.0
    code_var = torch.cat(codes).double().var(dim=0) if n > 1 else torch.zeros(1)
    is_vae = model.generative
    metrics = {
        "n": n,
        "neg_elbo": sums["neg_elbo"] / n if is_vae else None,
        "recon": sums["recon"] / n,
        "kl": sums["kl"] / n if is_vae else None,
        "bits_per_dim": sums["neg_elbo"] / n / (dims * math.log(2)) if is_vae else None,
        "mse": mse,
        "psnr": 10 * math.log10(peak ** 2 / mse) if mse > 0 else math.inf,
        "active_units": int((code_var > ACTIVE_UNIT_VARIANCE).sum()),
        "kl_per_dim": (kl_dims / n).tolist() if is_vae else None,
    }
    if "categories" in sums:  # mse and psnr are over its numbers; this over its binary and categorical cells
        metrics["category_error"] = sums["wrong"] / max(sums["categories"], 1)
    metrics.update(model.code_metrics(torch.cat(codes)) if n else {})
    if iw_samples and is_vae:
        metrics["iw_nll"] = sums["iw_nll"] / n
        metrics["iw_samples"] = iw_samples
    return metrics


def category_errors(likelihood, recon: torch.Tensor, x: torch.Tensor) -> tuple[int, int]:
    """(wrong, observed) binary and categorical cells of a mixed table's reconstruction: a cell is
    wrong where the most likely level is not the one observed."""
    wrong = seen = 0
    for start, stop in likelihood.groups:
        given = ~torch.isnan(x[:, start])
        wrong += (recon[given, start:stop].argmax(1) != x[given, start:stop].argmax(1)).sum().item()
        seen += int(given.sum())
    if likelihood.binary_columns:
        b = likelihood.binary_columns
        given = ~torch.isnan(x[:, b])
        wrong += ((recon[:, b] >= 0.5) != (x[:, b] >= 0.5))[given].sum().item()
        seen += int(given.sum())
    return wrong, seen


def psnr(clean: np.ndarray, other: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, computed per sample and averaged (the usual
    convention in denoising papers); arrays (N, ...) in the same layout."""
    mse = ((np.asarray(clean, np.float64) - np.asarray(other, np.float64)) ** 2).reshape(len(clean), -1).mean(1)
    return float(np.mean(10 * np.log10(data_range ** 2 / np.maximum(mse, 1e-12))))


def ssim(clean: np.ndarray, other: np.ndarray, data_range: float = 1.0) -> float | None:
    """Mean structural similarity of images (N, H, W) or (N, H, W, C); None for tables."""
    from skimage.metrics import structural_similarity

    if clean.ndim not in (3, 4) or min(clean.shape[1:3]) < 7:
        return None  # SSIM's 7x7 window needs images at least that large
    channel_axis = -1 if clean.ndim == 4 else None
    return float(np.mean([structural_similarity(a, b, data_range=data_range, channel_axis=channel_axis)
                          for a, b in zip(np.asarray(clean, np.float64), np.asarray(other, np.float64))]))


def denoising_metrics(clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray) -> dict:
    """PSNR and SSIM of the noisy input and of the denoised output against the clean data."""
    m = {"n": len(clean), "psnr_noisy": psnr(clean, noisy), "psnr_denoised": psnr(clean, denoised),
         "ssim_noisy": ssim(clean, noisy), "ssim_denoised": ssim(clean, denoised)}
    m["psnr_gain"] = m["psnr_denoised"] - m["psnr_noisy"]
    return m
