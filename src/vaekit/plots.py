"""Figures drawn with matplotlib (non-interactive backend), one small function per figure.

Commands and the report reuse these; matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def project_2d(codes: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """Codes (N, D) -> (N, 2) points and axis name: as they are for D <= 2, else PCA or t-SNE."""
    if codes.shape[1] == 1:
        return np.column_stack([codes[:, 0], np.zeros(len(codes))]), "z"
    if codes.shape[1] == 2:
        return codes, "z"
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(codes) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, random_state=seed).fit_transform(codes), "t-SNE"
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(codes), "PC"


def latent_scatter(ax, points: np.ndarray, labels: np.ndarray | None, axis: str = "z") -> None:
    """Points coloured by label (a legend for up to 20 classes)."""
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.6, color="tab:blue", linewidths=0)
    else:
        classes = np.unique(labels)
        cmap = _pyplot().get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for k, c in enumerate(classes):
            mask = labels == c
            ax.scatter(points[mask, 0], points[mask, 1], s=8, alpha=0.7, color=cmap(k % cmap.N),
                       label=str(c), linewidths=0)
        if len(classes) <= 20:
            ax.legend(markerscale=3, fontsize=7, loc="best", frameon=False)
    ax.set_xlabel(f"{axis}1")
    ax.set_ylabel(f"{axis}2")
    ax.set_title("latent codes")


def manifold_image(decode, n: int = 15, span: float = 0.95, prior: bool = True, bounds=None) -> np.ndarray:
    """Decode a regular n x n grid of 2-D codes into one picture (H', W', C) in [0, 1].

    With a Gaussian prior the grid follows its quantiles (as in the classic Keras example),
    so every cell is equally likely a priori; else it spans ``bounds`` ((lo, hi) per axis).
    ``decode`` maps codes (n*n, 2) to images (n*n, C, H, W).
    """
    from scipy.stats import norm

    if prior:
        axis = norm.ppf(np.linspace(1 - span, span, n))
        xs, ys = axis, axis
    else:
        (x0, x1), (y0, y1) = bounds
        xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    zs = np.array([[x, y] for y in ys[::-1] for x in xs], dtype=np.float32)
    images = np.clip(decode(zs), 0, 1)
    _, c, h, w = images.shape
    grid = images.reshape(n, n, c, h, w).transpose(0, 3, 1, 4, 2).reshape(n * h, n * w, c)
    return grid


def save_latent_map(path: Path, points: np.ndarray, labels, axis: str, manifold: np.ndarray | None) -> Path:
    """The scatter, and beside it the manifold picture when there is one."""
    plt = _pyplot()
    panels = 2 if manifold is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 5.5), squeeze=False)
    latent_scatter(axes[0, 0], points, labels, axis)
    if manifold is not None:
        ax = axes[0, 1]
        ax.imshow(manifold[..., 0] if manifold.shape[-1] == 1 else manifold, cmap="gray", vmin=0, vmax=1)
        ax.set_title("decoded grid of codes")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
