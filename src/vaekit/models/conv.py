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


def grid_size(input_shape: Sequence[int], blocks: int) -> tuple[int, int]:
    """(h, w) of the feature grid ``blocks`` encoder blocks leave of images ``input_shape`` (C, H, W)."""
    return _downsampled(input_shape[1], blocks), _downsampled(input_shape[2], blocks)


class ConvEncoder(nn.Sequential):
    """(N, C, H, W) -> (N, features) with ``features = widths[-1] * h * w`` (``flatten=False``:
    the grid itself, (N, widths[-1], h, w))."""

    def __init__(self, input_shape: Sequence[int], widths: Sequence[int], flatten: bool = True):
        c = input_shape[0]
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Conv2d(c, width, 3, stride=2, padding=1), nn.ReLU()]
            c = width
        super().__init__(*layers, *([nn.Flatten()] if flatten else []))
        self.out_features = c * math.prod(grid_size(input_shape, len(widths)))


class ConvDecoder(nn.Module):
    """(N, latent_dim) -> (N, C, H, W) raw likelihood parameters.

    ``grid_channels``: the code is itself a grid, (h, w, grid_channels) flattened position by
    position (a VQ-VAE's), brought to the first width by a 3x3 convolution instead of a
    linear map from the whole code."""

    def __init__(self, latent_dim: int, input_shape: Sequence[int], widths: Sequence[int],
                 grid_channels: int | None = None):
        super().__init__()
        c, h, w = input_shape
        self.output_size = (h, w)
        widths = list(reversed(widths))
        self.start = (widths[0], *grid_size(input_shape, len(widths)))
        if grid_channels:
            grid = (*self.start[1:], grid_channels)
            self.project = nn.Sequential(nn.Unflatten(1, grid), _ChannelsFirst(),
                                         nn.Conv2d(grid_channels, widths[0], 3, padding=1), nn.ReLU(), nn.Flatten())
        else:
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


class _ChannelsFirst(nn.Module):
    """(N, h, w, C) -> (N, C, h, w)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)
