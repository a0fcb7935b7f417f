"""The three networks of the anonymizer: the autoencoder x -> x_hat, the discriminator D behind the
mixing selector, and the private classifier (the last two are registry classifiers, simreal.nn.registry)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simreal.nn.registry import create_model


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder for small images: encoder (w, 2w, 2w channels, two stride-2 steps) to a
    ``code`` x H/4 x W/4 bottleneck, mirrored decoder, sigmoid output in [0, 1]. Any image size works:
    inputs are padded to multiples of 4 (edge values) and the output is cropped back."""

    def __init__(self, channels: int = 1, width: int = 32, code: int = 16) -> None:
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 2 * w, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, code, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(code, 2 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, 2 * w, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        y = torch.sigmoid(self.decoder(self.encoder(x)))
        return y[..., :h, :w]


def select_pairs(reference: torch.Tensor, candidate: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The mixing selector: per sample, (reference, candidate) stacked on channels when ``s`` = 1, else
    (candidate, reference). D must say from the pair which slot holds the real image."""
    first = s.view(-1, 1, 1, 1).bool()
    return torch.cat([torch.where(first, reference, candidate), torch.where(first, candidate, reference)], dim=1)


class PairDiscriminator(nn.Module):
    """D: a registry classifier with one output on the selector's pair (2 x channels), logit of s = 1."""

    def __init__(self, channels: int, arch: str = "smallcnn", width: int = 16) -> None:
        super().__init__()
        self.net = create_model(arch, "classifier", where="model.discriminator", num_classes=1,
                                in_channels=2 * channels, width=width)

    def forward(self, reference: torch.Tensor, candidate: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.net(select_pairs(reference, candidate, s)).reshape(-1)


def private_classifier(channels: int, num_classes: int, arch: str = "smallcnn", width: int = 16) -> nn.Module:
    """The private classifier C: z from x_hat."""
    return create_model(arch, "classifier", where="model.private", num_classes=num_classes, in_channels=channels,
                        width=width)
