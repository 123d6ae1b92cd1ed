"""The DenseFuse autoencoder (Li & Wu, "DenseFuse: A Fusion Approach to Infrared and Visible Images",
IEEE TIP 28(5), 2019).

Encoder: one 3x3 conv (1 -> 16) then a dense block of three 3x3 convs (16 channels each, every
layer sees all earlier outputs), giving 64 feature channels at full resolution. Decoder: four 3x3
convs 64 -> 64 -> 32 -> 16 -> 1. ReLU everywhere except the last layer; reflection padding, so
any H x W passes through unchanged in size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvLayer(nn.Module):
    """3x3 convolution with reflection padding (replicate on 1-pixel-wide inputs), optional ReLU."""

    def __init__(self, c_in: int, c_out: int, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
        y = self.conv(F.pad(x, (1, 1, 1, 1), mode=mode))
        return F.relu(y) if self.relu else y


class DenseBlock(nn.Module):
    """Three conv layers, each fed the concatenation of the block input and all earlier outputs."""

    def __init__(self, c_in: int = 16, growth: int = 16, n_layers: int = 3):
        super().__init__()
        self.layers = nn.ModuleList(ConvLayer(c_in + i * growth, growth) for i in range(n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class DenseFuseNet(nn.Module):
    """Autoencoder on B x 1 x H x W images in [0, 1]; `encode` gives B x 64 x H x W features."""

    feature_channels = 64

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(ConvLayer(1, 16), DenseBlock(16, 16, 3))
        self.decoder = nn.Sequential(
            ConvLayer(64, 64), ConvLayer(64, 32), ConvLayer(32, 16), ConvLayer(16, 1, relu=False)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        return self.decoder(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
