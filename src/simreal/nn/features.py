"""Pluggable feature extractors for perceptual losses: ``extractor(x, domain) -> list of feature maps``
for images in [-1, 1]. VGG16 (fixed, ImageNet weights from a local file) or a discriminator's own
layers (one discriminator per domain)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from torch import Tensor, nn

from simreal.nn.gan import NLayerDiscriminator
from simreal.nn.vgg import VGG16Features


class FeatureExtractor(Protocol):
    def __call__(self, x: Tensor, domain: str) -> list[Tensor]: ...


class VGGFeatureExtractor:
    """The same VGG16 layers for every domain."""

    def __init__(self, vgg: VGG16Features) -> None:
        self.vgg = vgg

    def __call__(self, x: Tensor, domain: str) -> list[Tensor]:
        return self.vgg(x)


class DiscriminatorFeatureExtractor:
    """Activations of the listed LeakyReLU layers of the discriminator that judges ``domain``."""

    def __init__(self, discriminators: Mapping[str, NLayerDiscriminator], layers: Sequence[int]) -> None:
        self.discriminators = discriminators
        self.layers = list(layers)
        for d in discriminators.values():
            n = len([m for m in d.model if isinstance(m, nn.LeakyReLU)])
            bad = [i for i in self.layers if not 0 <= i < n]
            if bad:
                raise ValueError(f"discriminator feature layers {bad} out of range 0..{n - 1}")

    def __call__(self, x: Tensor, domain: str) -> list[Tensor]:
        feats = self.discriminators[domain].features(x)
        return [feats[i] for i in self.layers]
