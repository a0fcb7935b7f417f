"""CUT's PatchNCE: patch sampling with a 2-layer MLP head per layer, and the InfoNCE loss
(taesungp/contrastive-unpaired-translation ``models/networks.py::PatchSampleF``, ``models/patchnce.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PatchSampleF(nn.Module):
    """For each feature map, sample the same random spatial locations for every image of the batch,
    project each sampled vector with its layer's MLP (C → nc → nc) and L2-normalise it."""

    def __init__(self, in_channels: Sequence[int], nc: int = 256) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)) for c in in_channels
        )

    def forward(
        self,
        feats: Sequence[Tensor],
        num_patches: int = 256,
        patch_ids: Sequence[Tensor] | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        out, ids = [], []
        for i, feat in enumerate(feats):
            b, c, h, w = feat.shape
            flat = feat.permute(0, 2, 3, 1).reshape(b, h * w, c)
            if patch_ids is not None:
                pid = patch_ids[i]
            else:
                pid = torch.randperm(h * w, device=feat.device)[: min(num_patches, h * w)]
            x = flat[:, pid, :].reshape(-1, c)
            x = self.mlps[i](x)
            out.append(F.normalize(x, dim=1, eps=1e-7))
            ids.append(pid)
        return out, ids


def patch_nce_loss(feat_q: Tensor, feat_k: Tensor, batch_size: int, tau: float = 0.07) -> Tensor:
    """InfoNCE per query patch: the key at the same location is the positive, the other patches of
    the same image are negatives (diagonal masked to -10), logits / tau; keys are detached.

    ``feat_q``/``feat_k`` are (batch_size * P, D); returns the per-patch loss (batch_size * P,).
    """
    feat_k = feat_k.detach()
    n, dim = feat_q.shape
    l_pos = (feat_q * feat_k).sum(dim=1, keepdim=True)
    q = feat_q.view(batch_size, -1, dim)
    k = feat_k.view(batch_size, -1, dim)
    npatches = q.shape[1]
    l_neg = torch.bmm(q, k.transpose(2, 1))
    diag = torch.eye(npatches, device=feat_q.device, dtype=torch.bool)[None]
    l_neg = l_neg.masked_fill(diag, -10.0).view(-1, npatches)
    logits = torch.cat([l_pos, l_neg], dim=1) / tau
    target = torch.zeros(n, dtype=torch.long, device=feat_q.device)
    return F.cross_entropy(logits, target, reduction="none")
