"""Region proposal network (Ren et al. 2015) over an FPN, with torchvision's layout and semantics.

* :class:`AnchorGenerator`: per level, base anchors ``h = s sqrt(r)``, ``w = s / sqrt(r)`` centred on
  0 and rounded (ratios outer, sizes inner), shifted by ``(x stride, y stride)`` so centres sit on
  cell corners; order location-major then anchor, matching the head's flattening.
* :class:`RPNHead`: 3x3 conv + ReLU (``conv.0.0``), 1x1 objectness (``cls_logits``) and 1x1 deltas
  (``bbox_pred``), weights N(0, 0.01).
* :class:`RegionProposalNetwork`: decodes the (detached) deltas, keeps the ``pre_nms_top_n`` best
  anchors per level, clips, drops boxes smaller than ``min_size``, runs NMS per level and keeps the
  ``post_nms_top_n`` best per image; losses on labelled images: BCE objectness over the sampled
  anchors and smooth-L1 (beta 1/9) of the positives' deltas divided by the number sampled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simreal.nn.boxes import BoxCoder, box_iou, clip_boxes, nms_mask
from simreal.nn.matcher import BalancedSampler, Matcher


class AnchorGenerator:
    """Anchors of every pyramid level; ``sizes[i]`` and ``aspect_ratios[i]`` (h / w) for level i."""

    def __init__(self, sizes: Sequence[Sequence[float]], aspect_ratios: Sequence[Sequence[float]]) -> None:
        if len(sizes) != len(aspect_ratios):
            raise ValueError("AnchorGenerator: one list of aspect ratios per level of sizes")
        self.sizes = [list(map(float, s)) for s in sizes]
        self.aspect_ratios = [list(map(float, r)) for r in aspect_ratios]
        self.cell_anchors = [self.base_anchors(s, r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)]

    @staticmethod
    def base_anchors(sizes: Sequence[float], ratios: Sequence[float]) -> torch.Tensor:
        scales = torch.as_tensor(sizes, dtype=torch.float32)
        r = torch.as_tensor(ratios, dtype=torch.float32)
        h_ratios = torch.sqrt(r)
        ws = (1 / h_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        return (torch.stack([-ws, -hs, ws, hs], 1) / 2).round()

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)]

    def strides(self, padded_hw: tuple[int, int], grid_sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        return [(padded_hw[0] // g[0], padded_hw[1] // g[1]) for g in grid_sizes]

    def __call__(self, padded_hw: tuple[int, int], grid_sizes: Sequence[tuple[int, int]],
                 device: torch.device | None = None) -> list[torch.Tensor]:
        """Anchors (H*W*A, 4) of each level for a batch padded to ``padded_hw``."""
        if len(grid_sizes) != len(self.cell_anchors):
            raise ValueError(f"AnchorGenerator: {len(self.cell_anchors)} anchor levels for {len(grid_sizes)} "
                             "feature maps")
        out = []
        for (gh, gw), (sh, sw), base in zip(grid_sizes, self.strides(padded_hw, grid_sizes), self.cell_anchors,
                                            strict=True):
            sx = torch.arange(gw, dtype=torch.float32, device=device) * sw
            sy = torch.arange(gh, dtype=torch.float32, device=device) * sh
            yy, xx = torch.meshgrid(sy, sx, indexing="ij")
            xx, yy = xx.reshape(-1), yy.reshape(-1)
            shifts = torch.stack([xx, yy, xx, yy], 1)
            out.append((shifts[:, None, :] + base.to(device)[None]).reshape(-1, 4))
        return out


class RPNHead(nn.Module):
    """Shared 3x3 conv + ReLU, then per-location objectness (A) and box deltas (4A)."""

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Sequential(nn.Conv2d(in_channels, in_channels, 3, padding=1),
                                                nn.ReLU(inplace=True)))
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, feats: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, deltas = [], []
        for f in feats:
            t = self.conv(f)
            logits.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
        return logits, deltas


def flatten_predictions(logits: list[torch.Tensor], deltas: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-level (N, A*K, H, W) maps -> (N, sum H*W*A, 1) logits and (N, sum H*W*A, 4) deltas, ordered
    level, location, anchor (as the anchors)."""
    def flat(t: torch.Tensor, k: int) -> torch.Tensor:
        n, _, h, w = t.shape
        return t.reshape(n, -1, k, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, k)

    return torch.cat([flat(t, 1) for t in logits], 1), torch.cat([flat(t, 4) for t in deltas], 1)


class RegionProposalNetwork(nn.Module):
    """Anchors + head + proposal filtering + losses. ``pre_nms_top_n``/``post_nms_top_n`` are
    ``(training, testing)`` pairs."""

    def __init__(self, anchor_generator: AnchorGenerator, head: RPNHead, *, fg_iou_thresh: float = 0.7,
                 bg_iou_thresh: float = 0.3, batch_size_per_image: int = 256, positive_fraction: float = 0.5,
                 pre_nms_top_n: tuple[int, int] = (2000, 1000), post_nms_top_n: tuple[int, int] = (2000, 1000),
                 nms_thresh: float = 0.7, score_thresh: float = 0.0, min_size: float = 1e-3) -> None:
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self.pre_nms_top_n, self.post_nms_top_n = pre_nms_top_n, post_nms_top_n
        self.nms_thresh, self.score_thresh, self.min_size = nms_thresh, score_thresh, min_size

    def _n(self, pair: tuple[int, int]) -> int:
        return pair[0] if self.training else pair[1]

    def forward(self, feats: list[torch.Tensor], image_hw: tuple[int, int], padded_hw: tuple[int, int],
                targets: Sequence[dict[str, Any] | None] | None = None, generator: torch.Generator | None = None,
                ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Proposals (per image, best first) and, for the images with a target, the two RPN losses."""
        logits, deltas = self.head(feats)
        anchors_lv = self.anchor_generator(padded_hw, [tuple(f.shape[-2:]) for f in feats], feats[0].device)
        per_level = [len(a) for a in anchors_lv]
        anchors = torch.cat(anchors_lv)
        obj, dl = flatten_predictions(logits, deltas)
        n = obj.shape[0]
        boxes = self.box_coder.decode(dl.detach().reshape(-1, 4), anchors.repeat(n, 1)).reshape(n, -1, 4)
        proposals = self.filter_proposals(boxes, obj.detach()[..., 0], image_hw, per_level)
        losses: dict[str, torch.Tensor] = {}
        if targets is not None and any(t is not None for t in targets):
            losses = self.loss(obj[..., 0], dl, anchors, targets, generator)
        return proposals, losses

    def filter_proposals(self, boxes: torch.Tensor, obj: torch.Tensor, image_hw: tuple[int, int],
                         per_level: list[int]) -> list[torch.Tensor]:
        """Per image: the ``pre_nms_top_n`` best anchors of each level, clipped, without boxes smaller than
        ``min_size`` or below ``score_thresh``, NMS per level, the best ``post_nms_top_n`` (best first).
        Each level is filtered for the whole batch at once."""
        pre, post = self._n(self.pre_nms_top_n), self._n(self.post_nms_top_n)
        kept_boxes, kept_scores, kept = [], [], []
        start = 0
        for k in per_level:
            top = obj[:, start:start + k].topk(min(pre, k), dim=1).indices + start
            start += k
            bx = clip_boxes(torch.gather(boxes, 1, top[..., None].expand(*top.shape, 4)), image_hw)
            sc = torch.sigmoid(torch.gather(obj, 1, top))
            w, h = bx[..., 2] - bx[..., 0], bx[..., 3] - bx[..., 1]
            valid = (w >= self.min_size) & (h >= self.min_size) & (sc >= self.score_thresh)
            kept.append(nms_mask(bx, sc, self.nms_thresh, valid))
            kept_boxes.append(bx)
            kept_scores.append(sc)
        bx, sc, keep = torch.cat(kept_boxes, 1), torch.cat(kept_scores, 1), torch.cat(kept, 1)
        out = []
        for b in range(bx.shape[0]):
            idx = torch.nonzero(keep[b]).squeeze(1)
            idx = idx[torch.argsort(sc[b, idx], descending=True, stable=True)][:post]
            out.append(bx[b, idx])
        return out

    def assign(self, anchors: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchor labels (1 object, 0 background, -1 ignored) and matched ground-truth boxes of one image."""
        if gt.numel() == 0:
            return torch.zeros(len(anchors), device=anchors.device), torch.zeros_like(anchors)
        m = self.matcher(box_iou(gt, anchors))
        labels = (m >= 0).to(anchors.dtype)
        labels[m == Matcher.BELOW_LOW_THRESHOLD] = 0.0
        labels[m == Matcher.BETWEEN_THRESHOLDS] = -1.0
        return labels, gt[m.clamp(min=0)]

    def loss(self, obj: torch.Tensor, dl: torch.Tensor, anchors: torch.Tensor,
             targets: Sequence[dict[str, Any] | None], generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        objs, labs, pred, tgt = [], [], [], []
        for b, t in enumerate(targets):
            if t is None:
                continue
            labels, matched = self.assign(anchors, t["boxes"])
            pos, neg = self.sampler(labels, generator)
            sampled = torch.cat([pos, neg])
            objs.append(obj[b, sampled])
            labs.append(labels[sampled])
            pred.append(dl[b, pos])
            tgt.append(self.box_coder.encode(matched[pos], anchors[pos]))
        n_sampled = max(sum(len(x) for x in labs), 1)
        box = F.smooth_l1_loss(torch.cat(pred), torch.cat(tgt), beta=1 / 9, reduction="sum") / n_sampled
        objectness = F.binary_cross_entropy_with_logits(torch.cat(objs), torch.cat(labs))
        return {"loss_objectness": objectness, "loss_rpn_box_reg": box}


def anchor_match_quality(generator: AnchorGenerator, padded_hw: tuple[int, int], strides: Sequence[int],
                         boxes: torch.Tensor) -> torch.Tensor:
    """Best anchor IoU of each box (M, 4) in a batch padded to ``padded_hw`` whose pyramid levels have
    the given ``strides``; used to check anchor sizes against the training boxes."""
    if boxes.numel() == 0:
        return torch.zeros(0)
    grids = [(math.ceil(padded_hw[0] / s), math.ceil(padded_hw[1] / s)) for s in strides]
    return box_iou(boxes.float(), torch.cat(generator(padded_hw, grids))).max(1).values
