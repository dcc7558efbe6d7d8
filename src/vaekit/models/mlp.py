"""Fully connected blocks shared by the AE and the VAE."""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(widths: Sequence[int], final_activation: bool) -> nn.Sequential:
    """Linear layers through ``widths`` with ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if final_activation or i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
