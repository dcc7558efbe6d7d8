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


def principal_axes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The codes' mean, their principal directions (rows, most spread first) and their standard
    deviation along each: a point ``p`` of the projection is the code ``mean + p @ directions``."""
    mean = codes.mean(0)
    _, s, vt = np.linalg.svd(codes - mean, full_matrices=False)
    return mean, vt, s / np.sqrt(max(len(codes) - 1, 1))


def project_2d(codes: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """Codes (N, D) -> (N, 2) points and axis name: as they are for D <= 2, else PCA or t-SNE."""
    if codes.shape[1] == 1:
        return np.column_stack([codes[:, 0], np.zeros(len(codes))]), "z"
    if codes.shape[1] == 2:
        return codes, "z"
    if len(codes) < 3:  # too few points to fit a projection to: the first two dimensions
        return codes[:, :2], "z"
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(codes) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, random_state=seed).fit_transform(codes), "t-SNE"
    mean, directions, _ = principal_axes(codes)
    return (codes - mean) @ directions[:2].T, "PC"


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


def latent_map(points: np.ndarray, labels, axis: str, manifold: np.ndarray | None):
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
    return fig


def save(fig, path: Path, dpi: int = 110) -> Path:
    from .atomic import atomic_write

    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi))
    finally:
        _pyplot().close(fig)
    return Path(path)


def to_png_bytes(fig, dpi: int = 90) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    _pyplot().close(fig)
    return buffer.getvalue()


def loss_curves(metrics: list[dict]):
    """Training and validation loss, reconstruction and KL per epoch, side by side."""
    plt = _pyplot()
    epochs = [m["epoch"] for m in metrics]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (key, title) in zip(axes, [("loss", "loss (training objective)"), ("recon", "reconstruction"),
                                       ("kl", "KL")]):
        train_key = "train_loss" if key == "loss" else key
        ax.plot(epochs, [m[train_key] for m in metrics], label="train", color="tab:blue")
        val = [m.get(f"val_{key}") for m in metrics]
        if any(v is not None for v in val):
            ax.plot(epochs, val, label="validation", color="tab:orange")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per sample")
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def kl_heatmap(metrics: list[dict]):
    """KL per latent dimension (columns) over epochs (rows): collapsed dimensions stay dark."""
    rows = [m["kl_per_dim"] for m in metrics if m.get("kl_per_dim")]
    plt = _pyplot()
    kl = np.asarray(rows)
    fig, ax = plt.subplots(figsize=(min(13, 2 + 0.35 * kl.shape[1]), 3.2))
    image = ax.imshow(kl.T, aspect="auto", cmap="magma", origin="lower",
                      extent=(0.5, len(rows) + 0.5, -0.5, kl.shape[1] - 0.5))
    ax.set_xlabel("epoch")
    ax.set_ylabel("latent dimension")
    ax.set_title("KL per latent dimension (nats)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def feature_errors(errors: np.ndarray, names) -> object:
    """Mean squared reconstruction error per feature (tabular data)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(min(13, 2 + 0.4 * len(errors)), 3.5))
    ax.bar(range(len(errors)), errors, color="tab:blue")
    ax.set_xticks(range(len(errors)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("mean squared error")
    ax.set_title("reconstruction error per feature")
    fig.tight_layout()
    return fig


def score_histogram(scores: np.ndarray, threshold: float, labels: np.ndarray | None = None):
    """Anomaly scores with the threshold; normal and anomalous apart when labels are known."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    bins = np.histogram_bin_edges(scores, bins=50)
    if labels is None:
        ax.hist(scores, bins=bins, color="tab:blue", alpha=0.8)
    else:
        ax.hist(scores[labels == 0], bins=bins, color="tab:blue", alpha=0.7, label="normal")
        ax.hist(scores[labels == 1], bins=bins, color="tab:red", alpha=0.7, label="anomaly")
        ax.legend(frameon=False)
    ax.axvline(threshold, color="black", linestyle="--", label="threshold")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("count")
    ax.set_title("scores and threshold")
    fig.tight_layout()
    return fig


def roc_pr(labels: np.ndarray, scores: np.ndarray):
    """ROC and precision-recall curves with their areas."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    fpr, tpr, _ = roc_curve(labels, scores)
    a.plot(fpr, tpr, color="tab:blue")
    a.plot([0, 1], [0, 1], color="grey", linestyle=":")
    a.set_title(f"ROC (AUROC {roc_auc_score(labels, scores):.3f})")
    a.set_xlabel("false positive rate")
    a.set_ylabel("true positive rate")
    precision, recall, _ = precision_recall_curve(labels, scores)
    b.plot(recall, precision, color="tab:red")
    b.axhline(labels.mean(), color="grey", linestyle=":")
    b.set_title(f"precision-recall (AUPRC {average_precision_score(labels, scores):.3f})")
    b.set_xlabel("recall")
    b.set_ylabel("precision")
    fig.tight_layout()
    return fig
