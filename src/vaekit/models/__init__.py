"""Model classes and the factory that builds one from its config."""
from __future__ import annotations

from .ae import AE, AEOutput
from .base import LatentModel, PointMass
from .vae import IWAE, VAE, VAEOutput

__all__ = ["AE", "AEOutput", "IWAE", "LatentModel", "PointMass", "VAE", "VAEOutput", "build_model"]


def build_model(cfg) -> LatentModel:
    """The model a :class:`vaekit.config.ModelConfig` (with input_shape and likelihood resolved) describes."""
    common = dict(input_shape=cfg.input_shape, latent_dim=cfg.latent_dim, hidden_dims=cfg.hidden_dims,
                  likelihood=cfg.likelihood, arch=cfg.arch)
    if cfg.model == "iwae":
        return IWAE(**common, k=cfg.k)
    if cfg.model == "cvae":
        return VAE(**common, n_classes=cfg.n_classes)
    return {"ae": AE, "vae": VAE}[cfg.model](**common)
