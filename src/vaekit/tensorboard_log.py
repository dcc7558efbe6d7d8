"""TensorBoard logging of a run (``--tensorboard``): scalars each epoch, pictures at the end."""
from __future__ import annotations

import numpy as np

from .errors import VaekitError, option
from .runfolder import RECONSTRUCTIONS, SAMPLES, RunFolder


def open_board(folder: RunFolder):
    """A SummaryWriter into RUN/tensorboard (TensorBoard is imported only when asked for)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise VaekitError(f"{option('tensorboard')} needs the tensorboard package; pip install tensorboard") from None
    return SummaryWriter(log_dir=str(folder.file("tensorboard")))


def log_scalars(board, metrics: dict) -> None:
    """One epoch's losses, KL weight and speed, written out at once (a killed run loses none that
    its metrics.jsonl holds)."""
    for key in ("train_loss", "val_loss", "recon", "kl", "val_recon", "val_kl", "kl_weight", "samples_per_s"):
        if metrics.get(key) is not None:
            board.add_scalar(key, metrics[key], metrics["epoch"])
    board.flush()


def log_missing(board, folder: RunFolder) -> None:
    """The epochs of metrics.jsonl that the board lacks: a resumed run stopped between an epoch's
    metrics line (or the line its checkpoint restores) and that epoch's scalars."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    logged = EventAccumulator(str(folder.file("tensorboard")), size_guidance={SCALARS: 0}).Reload()
    steps = {e.step for e in logged.Scalars("train_loss")} if "train_loss" in logged.Tags()[SCALARS] else set()
    for metrics in folder.metrics():
        if metrics["epoch"] not in steps:
            log_scalars(board, metrics)


def log_pictures(board, folder: RunFolder, step: int) -> None:
    """The run's pictures, and the end of logging."""
    from PIL import Image

    for name in (RECONSTRUCTIONS, SAMPLES):
        if folder.file(name).exists():
            picture = np.asarray(Image.open(folder.file(name)).convert("RGB"))
            board.add_image(name.removesuffix(".png"), picture, step, dataformats="HWC")
    board.close()
