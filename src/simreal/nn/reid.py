"""Re-identification embedding network and the batch-hard triplet loss.

``ReidNet``: backbone (ResNet-18/34/50 or the small CNN) -> global average pool -> optional linear
reduction to ``embedding_dim`` -> BatchNorm "neck" (BNNeck, Luo et al. 2019; its shift is frozen) ->
bias-free identity classifier. The triplet loss sees the pre-neck feature, the softmax the post-neck
one; the embedding used for retrieval is the post-neck feature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ReidNet(nn.Module):
    """``forward(x)`` -> dict(feat = pre-neck (B, E), emb = BN-neck embedding (B, E), logits (B, num_ids))."""

    def __init__(self, backbone: nn.Module, num_ids: int, embedding_dim: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        d = int(backbone.feature_dim)
        e = int(embedding_dim or d)
        self.reduce = nn.Linear(d, e, bias=False) if e != d else nn.Identity()
        self.neck = nn.BatchNorm1d(e)
        self.neck.bias.requires_grad_(False)
        self.classifier = nn.Linear(e, max(int(num_ids), 1), bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self.embedding_dim, self.feature_dim = e, d

    def head(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.reduce(pooled)
        emb = self.neck(feat)
        return {"feat": feat, "emb": emb, "logits": self.classifier(emb)}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.backbone.features(x))


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distances (N, M) with a gradient-safe square root."""
    d2 = (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1)[None] - 2.0 * a @ b.t()).clamp_min(0.0)
    return torch.sqrt(d2 + eps)


def batch_hard_triplet(feat: torch.Tensor, labels: torch.Tensor, margin: float = 0.3,
                       reduction: str = "mean") -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017): for each anchor, max(0, margin + d(hardest positive)
    - d(hardest negative)) in Euclidean distance. Anchors without a positive or a negative are left out
    of the mean (``reduction="none"`` gives them NaN)."""
    d = pairwise_distance(feat, feat)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=feat.device)
    pos, neg = same & ~eye, ~same
    d_pos = torch.where(pos, d, torch.full_like(d, -float("inf"))).max(1).values
    d_neg = torch.where(neg, d, torch.full_like(d, float("inf"))).min(1).values
    valid = pos.any(1) & neg.any(1)
    per = F.relu(margin + d_pos - d_neg)
    if reduction == "none":
        return torch.where(valid, per, torch.full_like(per, float("nan")))
    # mean over the valid anchors (0 when there is none), without a host sync
    return torch.where(valid, per, torch.zeros_like(per)).sum() / valid.sum().clamp(min=1)
