"""Convolutional encoder and decoder for images of any H x W x C.

Each encoder block halves the image (3x3 convolution, stride 2, rounding up); the decoder
doubles it back with 4x4 transposed convolutions and crops to the exact input size, so
odd and non-square sizes need no special case.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def _downsampled(size: int, blocks: int) -> int:
    for _ in range(blocks):
        size = (size + 1) // 2
    return size


class ConvEncoder(nn.Sequential):
    """(N, C, H, W) -> (N, features) with ``features = widths[-1] * h * w``."""

    def __init__(self, input_shape: Sequence[int], widths: Sequence[int]):
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Conv2d(c, width, 3, stride=2, padding=1), nn.ReLU()]
            c = width
        super().__init__(*layers, nn.Flatten())
        self.out_features = c * _downsampled(h, len(widths)) * _downsampled(w, len(widths))


class ConvDecoder(nn.Module):
    """(N, latent_dim) -> (N, C, H, W) raw likelihood parameters."""

    def __init__(self, latent_dim: int, input_shape: Sequence[int], widths: Sequence[int]):
        super().__init__()
        c, h, w = input_shape
        self.output_size = (h, w)
        widths = list(reversed(widths))
        self.start = (widths[0], _downsampled(h, len(widths)), _downsampled(w, len(widths)))
        self.project = nn.Sequential(nn.Linear(latent_dim, math.prod(self.start)), nn.ReLU())
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            out = widths[i + 1] if i + 1 < len(widths) else c
            layers.append(nn.ConvTranspose2d(width, out, 4, stride=2, padding=1))
            if i + 1 < len(widths):
                layers.append(nn.ReLU())
        self.blocks = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.project(z).unflatten(1, self.start))
        h, w = self.output_size
        return x[:, :, :h, :w]
