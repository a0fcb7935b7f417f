"""Box arithmetic for the detector: anchor grids, SqueezeDet delta encoding, IoU, class-wise NMS
and decoding of ConvDet outputs (vectorised torch).

Boxes are ``(cx, cy, w, h)`` ("cxcywh") or ``(x1, y1, x2, y2)`` ("xyxy") in pixels of the network
input. Deltas (SqueezeDet): ``dx = (gx - ax) / aw``, ``dy = (gy - ay) / ah``, ``dw = log(gw / aw)``,
``dh = log(gh / ah)``.
"""

from __future__ import annotations

from typing import Any

import torch

from simreal.nn.boxes import BBOX_XFORM_CLIP, batched_nms, box_iou
from simreal.nn.boxes import nms as nms_all

__all__ = ["box_iou", "nms"]

MAX_LOG_SCALE = BBOX_XFORM_CLIP  # clamp of dw, dh before exp (as torchvision's box coder)


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def xyxy_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = b.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)


def paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise IoU of xyxy boxes of the same shape (..., 4)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1) + (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1) - inter
    return inter / union.clamp(min=1e-12)


def anchor_grid(grid_hw: tuple[int, int], image_hw: tuple[int, int], shapes: torch.Tensor) -> torch.Tensor:
    """Anchors (H*W*K, 4) cxcywh centred on the cells of an H x W grid over the image, ordered
    (row, column, anchor); ``shapes`` (K, 2) are anchor (w, h) in input pixels."""
    gh, gw = grid_hw
    sy, sx = image_hw[0] / gh, image_hw[1] / gw
    cy = (torch.arange(gh, dtype=torch.float32, device=shapes.device) + 0.5) * sy
    cx = (torch.arange(gw, dtype=torch.float32, device=shapes.device) + 0.5) * sx
    yy, xx = torch.meshgrid(cy, cx, indexing="ij")
    k = shapes.shape[0]
    ctr = torch.stack([xx, yy], -1).reshape(gh * gw, 1, 2).expand(gh * gw, k, 2)
    wh = shapes.float().reshape(1, k, 2).expand(gh * gw, k, 2)
    return torch.cat([ctr, wh], -1).reshape(-1, 4)


def encode(gt: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """SqueezeDet deltas of cxcywh ground truth relative to cxcywh anchors."""
    return torch.stack([(gt[..., 0] - anchors[..., 0]) / anchors[..., 2],
                        (gt[..., 1] - anchors[..., 1]) / anchors[..., 3],
                        torch.log(gt[..., 2] / anchors[..., 2]),
                        torch.log(gt[..., 3] / anchors[..., 3])], -1)


def decode(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """cxcywh boxes from SqueezeDet deltas (inverse of :func:`encode`)."""
    dw = deltas[..., 2].clamp(max=MAX_LOG_SCALE)
    dh = deltas[..., 3].clamp(max=MAX_LOG_SCALE)
    return torch.stack([anchors[..., 0] + deltas[..., 0] * anchors[..., 2],
                        anchors[..., 1] + deltas[..., 1] * anchors[..., 3],
                        anchors[..., 2] * torch.exp(dw), anchors[..., 3] * torch.exp(dh)], -1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor | None, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS, class-wise when ``labels`` are given (:mod:`simreal.nn.boxes`); kept indices in decreasing
    score order."""
    return nms_all(boxes, scores, iou_threshold) if labels is None else batched_nms(boxes, scores, labels,
                                                                                      iou_threshold)


def postprocess(raw: torch.Tensor, anchors: torch.Tensor, num_classes: int, image_hw: tuple[int, int],
                score_threshold: float = 0.01, nms_iou: float = 0.4, top_k: int = 64,
                max_detections: int = 100) -> list[dict[str, Any]]:
    """ConvDet output (B, N, C+5) -> per image: ``boxes`` (xyxy, clipped to the image), ``scores``
    (class probability x confidence, SqueezeDet), ``labels`` (class index) and ``image_score`` (the
    highest score after NMS, 0 when nothing survives)."""
    prob = torch.softmax(raw[..., :num_classes], -1) * torch.sigmoid(raw[..., num_classes])[..., None]
    score, label = prob.max(-1)
    boxes = cxcywh_to_xyxy(decode(raw[..., num_classes + 1:], anchors))
    h, w = image_hw
    lim = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
    boxes = torch.minimum(boxes.clamp(min=0), lim)
    out = []
    for i in range(raw.shape[0]):
        s, idx = torch.topk(score[i], min(top_k, score.shape[1]))
        keep = s > score_threshold
        s, idx = s[keep], idx[keep]
        b, lab = boxes[i, idx], label[i, idx]
        k = nms(b, s, lab, nms_iou)[:max_detections]
        out.append({"boxes": b[k].numpy(), "scores": s[k].numpy(), "labels": lab[k].numpy(),
                    "image_score": float(s[k].max()) if len(k) else 0.0})
    return out
