"""Model classes and the factory that builds one from its config."""
from __future__ import annotations

from ..priors import build_prior, fitted_priors, gmm_components, sampling_default
from .ae import AE, AEOutput
from .base import LatentModel, PointMass
from .hvae import HVAE
from .vae import IWAE, VAE, VAEOutput
from .vqvae import VQVAE

__all__ = ["AE", "AEOutput", "HVAE", "IWAE", "LatentModel", "PointMass", "VAE", "VAEOutput", "VQVAE", "attach_priors",
           "build_model"]


def build_model(cfg, priors: bool = True) -> LatentModel:
    """The model a :class:`vaekit.config.ModelConfig` (with input_shape and likelihood resolved)
    describes, with the priors its config fits after training (``priors=False``: the networks
    alone, what training optimises and checkpoints)."""
    model = _networks(cfg)
    return attach_priors(model, cfg) if priors else model


def attach_priors(model: LatentModel, cfg) -> LatentModel:
    """Give ``model`` the (unfitted) priors its config fits after training, and its default."""
    for kind in fitted_priors(cfg):
        model.priors[kind] = build_prior(kind, model, cfg.n_classes or gmm_components(cfg.latent_dim))
    model.default_prior = sampling_default(cfg)
    model.prior_chosen = cfg.prior is not None  # a run made since priors are fitted after training
    return model


def _networks(cfg) -> LatentModel:
    common = dict(input_shape=cfg.input_shape, latent_dim=cfg.latent_dim, hidden_dims=cfg.hidden_dims,
                  likelihood=cfg.likelihood, arch=cfg.arch)
    if cfg.model == "vqvae":
        return VQVAE(**common)
    common["blocks"] = cfg.blocks  # a table's column kinds (vqvae takes images)
    if cfg.model == "iwae":
        return IWAE(**common, k=cfg.k)
    if cfg.model == "cvae":
        return VAE(**common, n_classes=cfg.n_classes)
    if cfg.model == "hvae":
        return HVAE(**common)
    return {"ae": AE, "vae": VAE}[cfg.model](**common)
