"""Image grids as PNG files (Pillow; no plotting library needed for pictures of samples)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def grid(images: np.ndarray, ncol: int | None = None, pad: int = 2, min_cell: int = 28) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> one uint8 picture (rows x cols of cells) as (H', W', C).

    Small images (8x8 digits) are enlarged by a whole factor so each cell is at least
    ``min_cell`` pixels high, without smoothing.
    """
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    n, c, h, w = images.shape
    if ncol is None:  # 8 across for a few, a square-ish sheet for many
        ncol = max(8, int(np.ceil(np.sqrt(n))))
    scale = max(1, -(-min_cell // h))
    images = images.repeat(scale, axis=2).repeat(scale, axis=3)
    h, w = h * scale, w * scale
    ncol = max(1, min(ncol, n))
    nrow = -(-n // ncol)
    out = np.ones((c, nrow * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[:, y:y + h, x:x + w] = images[i]
    out = np.nan_to_num(out, nan=0.0)  # a diverged model's NaN pixels show black, not as a cast's garbage
    return (out.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)


def grid_image(images: np.ndarray, ncol: int | None = None, min_cell: int = 28):
    """:func:`grid` as a PIL image, greyscale or RGB."""
    from PIL import Image

    picture = grid(images, ncol, min_cell=min_cell)
    return Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture)


def grid_png(images: np.ndarray, ncol: int | None = None, min_cell: int = 28) -> bytes:
    """:func:`grid` as PNG bytes (for a page or an HTTP answer)."""
    buffer = io.BytesIO()
    grid_image(images, ncol, min_cell).save(buffer, format="PNG")
    return buffer.getvalue()


def save_grid(path: Path, images: np.ndarray, ncol: int | None = None) -> Path:
    from .atomic import atomic_write

    picture = grid_image(images, ncol)
    atomic_write(path, lambda tmp: picture.save(tmp))
    return Path(path)


def pairs(inputs: np.ndarray, outputs: np.ndarray, ncol: int = 8) -> np.ndarray:
    """(N, C, H, W) inputs and outputs interleaved by rows of ``ncol``: each row of inputs
    above the row of their outputs (reconstructions, denoised copies)."""
    rows = []
    for start in range(0, len(inputs), ncol):
        rows += [inputs[start:start + ncol], outputs[start:start + ncol]]
    return np.concatenate(rows)


def save_pairs(path: Path, inputs: np.ndarray, outputs: np.ndarray, ncol: int = 8) -> Path:
    return save_grid(path, pairs(inputs, outputs, ncol), ncol)
