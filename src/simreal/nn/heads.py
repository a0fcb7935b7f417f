"""Small heads shared by tasks and adaptation methods."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Linear layers with ReLU (and optional dropout) between them; no activation at the end."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DomainDiscriminator(MLP):
    """k-way domain classifier on pooled features (default hidden widths 512, 256; k logits)."""

    def __init__(self, in_features: int, num_domains: int, hidden: Sequence[int] = (512, 256)) -> None:
        if num_domains < 2:
            raise ValueError("a domain discriminator needs at least 2 domains")
        super().__init__(in_features, hidden, num_domains)
        self.num_domains = num_domains
