"""SqueezeDet target assignment and loss.

Assignment: each (not ignored) ground-truth box goes to the anchor of the best shape (highest IoU with
the anchor centred on the box, as YOLOv2 and the k-means fit) among the K anchors of the grid cell
holding its centre; boxes are served in decreasing best-IoU order and a box whose cell has no free
anchor left is dropped. Anchors overlapping an ``ignore``d box (IoU > ``ignore_iou``, or the anchor it
would have been assigned) are neither positives nor negatives.

Loss (means over the labelled images of the batch):
``w_class * CE(class | positives) + w_bbox * |deltas - target deltas|^2 (or smooth L1, summed over
the 4 deltas, mean over positives) + w_conf_pos * mean_pos (conf - IoU(pred, gt))^2
+ w_conf_neg * mean_neg conf^2`` with conf = sigmoid of the confidence logit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from simreal.tasks.detect_boxes import box_iou, cxcywh_to_xyxy, decode, encode, paired_iou, xyxy_to_cxcywh


@dataclass
class LossWeights:
    cls: float = 1.0
    bbox: float = 5.0
    conf_pos: float = 5.0
    conf_neg: float = 50.0
    box_loss: str = "l2"  # "l2" | "smooth_l1"
    ignore_iou: float = 0.4


@dataclass
class Assignment:
    """Per batch: positive (image, anchor) pairs with their class and box, and the negative mask."""

    img: torch.Tensor  # (P,) image index in the batch
    anchor: torch.Tensor  # (P,) anchor index
    label: torch.Tensor  # (P,) class index
    box: torch.Tensor  # (P, 4) xyxy ground truth
    neg: torch.Tensor  # (B, N) bool

    def to(self, device: torch.device | str) -> Assignment:
        """The assignment on ``device`` (it is made on the host)."""
        return Assignment(*(t.to(device, non_blocking=True) for t in (self.img, self.anchor, self.label, self.box,
                                                                        self.neg)))


def assign_image(
    boxes: np.ndarray, ignore: np.ndarray, anchors: torch.Tensor, grid_hw: tuple[int, int], image_hw: tuple[int, int],
    k: int, ignore_iou: float = 0.4,
) -> tuple[list[int], list[int], torch.Tensor]:
    """(gt indices, anchor indices, negative mask (N,)) for one image's xyxy ``boxes``."""
    n = anchors.shape[0]
    neg = torch.ones(n, dtype=torch.bool)
    if len(boxes) == 0:
        return [], [], neg
    gt = torch.as_tensor(np.asarray(boxes, dtype=np.float32)).reshape(-1, 4)
    c = xyxy_to_cxcywh(gt)
    gh, gw = grid_hw
    row = (c[:, 1] / (image_hw[0] / gh)).floor().long().clamp(0, gh - 1)
    col = (c[:, 0] / (image_hw[1] / gw)).floor().long().clamp(0, gw - 1)
    cand = ((row * gw + col) * k)[:, None] + torch.arange(k)[None, :]  # (G, K)
    # anchor choice by SHAPE (YOLOv2; the same 1 - IoU the k-means anchors are fitted with): the cell's anchors
    # centred on the box centre. IoU with the anchors at the cell centre would make the choice depend on where
    # the box sits in its cell and, for boxes not much larger than a cell, pick a too large anchor when off-centre.
    shapes = torch.cat([c[:, None, :2].expand(-1, k, 2), anchors[cand][..., 2:]], -1)
    ious = paired_iou(gt[:, None, :].expand(-1, k, 4), cxcywh_to_xyxy(shapes))
    ok = (c[:, 2] > 0) & (c[:, 3] > 0)
    ign = torch.as_tensor(np.asarray(ignore, dtype=bool)).reshape(-1)
    used: set[int] = set()
    gts, anc = [], []
    for g in torch.argsort(ious.max(1).values, descending=True, stable=True).tolist():
        if not bool(ok[g]):
            continue
        order = torch.argsort(ious[g], descending=True, stable=True).tolist()
        free = [j for j in order if int(cand[g, j]) not in used]
        if bool(ign[g]):  # an ignored box: its anchor and overlapping anchors are not negatives
            neg[cand[g, order[0]]] = False
            continue
        if not free:
            continue
        a = int(cand[g, free[0]])
        used.add(a)
        gts.append(g)
        anc.append(a)
    if bool(ign.any()):
        over = box_iou(cxcywh_to_xyxy(anchors), gt[ign]).max(1).values > ignore_iou
        neg &= ~over
    if anc:
        neg[torch.tensor(anc)] = False
    return gts, anc, neg


def assign(targets: list[dict[str, Any]], anchors: torch.Tensor, grid_hw: tuple[int, int],
           image_hw: tuple[int, int], k: int, ignore_iou: float = 0.4) -> Assignment:
    """Assignment of a list of (labelled) targets."""
    img, anc, lab, box, negs = [], [], [], [], []
    for i, t in enumerate(targets):
        g, a, neg = assign_image(t["boxes"], t["ignore"], anchors, grid_hw, image_hw, k, ignore_iou)
        img += [i] * len(a)
        anc += a
        lab += [int(t["labels"][j]) for j in g]
        box += [np.asarray(t["boxes"][j], dtype=np.float32) for j in g]
        negs.append(neg)
    return Assignment(torch.tensor(img, dtype=torch.long), torch.tensor(anc, dtype=torch.long),
                      torch.tensor(lab, dtype=torch.long),
                      torch.as_tensor(np.array(box, dtype=np.float32).reshape(-1, 4)),
                      torch.stack(negs) if negs else torch.zeros(0, anchors.shape[0], dtype=torch.bool))


def loss_terms(raw: torch.Tensor, anchors: torch.Tensor, asg: Assignment, num_classes: int,
               w: LossWeights) -> dict[str, torch.Tensor]:
    """Per-term losses as (B,) per-image sums plus per-image counts (for batch or per-image means); in
    float32 under mixed precision."""
    if raw.dtype in (torch.float16, torch.bfloat16):
        raw = raw.float()
    b = raw.shape[0]
    c = num_classes
    conf = torch.sigmoid(raw[..., c])
    p = raw[asg.img, asg.anchor]  # (P, C+5)
    anc = anchors[asg.anchor]
    cls = F.cross_entropy(p[:, :c], asg.label, reduction="none") if len(p) else p.sum(-1)
    target_d = encode(xyxy_to_cxcywh(asg.box), anc)
    diff = p[:, c + 1:] - target_d
    bbox = (diff.pow(2) if w.box_loss == "l2" else F.smooth_l1_loss(diff, torch.zeros_like(diff), reduction="none",
                                                                     beta=1.0 / 9)).sum(-1)
    with torch.no_grad():
        iou = paired_iou(cxcywh_to_xyxy(decode(p[:, c + 1:], anc)), asg.box)
    pos_conf = (conf[asg.img, asg.anchor] - iou).pow(2)
    zeros = torch.zeros(b, dtype=raw.dtype, device=raw.device)
    return {
        "cls": zeros.index_add(0, asg.img, cls), "bbox": zeros.index_add(0, asg.img, bbox),
        "conf_pos": zeros.index_add(0, asg.img, pos_conf),
        "conf_neg": (conf.pow(2) * asg.neg).sum(1),
        "n_pos": zeros.index_add(0, asg.img, torch.ones(len(asg.img), dtype=raw.dtype, device=raw.device)),
        "n_neg": asg.neg.sum(1).to(raw.dtype),
    }


def combine(t: dict[str, torch.Tensor], w: LossWeights, per_image: bool = False) -> torch.Tensor:
    """The weighted loss: a scalar (means over the batch's positives/negatives) or (B,) per image."""
    red = (lambda v: v) if per_image else (lambda v: v.sum())
    n_pos, n_neg = red(t["n_pos"]).clamp(min=1), red(t["n_neg"]).clamp(min=1)
    return (w.cls * red(t["cls"]) + w.bbox * red(t["bbox"]) + w.conf_pos * red(t["conf_pos"])) / n_pos + \
        w.conf_neg * red(t["conf_neg"]) / n_neg
