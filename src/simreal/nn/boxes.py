"""Box operations shared by the detectors (plain torch): IoU, greedy NMS, class-wise (batched) NMS,
clipping, small-box removal and the R-CNN box coder.

Boxes are ``(x1, y1, x2, y2)`` in pixels; widths are ``x2 - x1`` (no ``+ 1``), as in torchvision.
"""

from __future__ import annotations

import math

import torch

BBOX_XFORM_CLIP = math.log(1000.0 / 16)  # clamp of dw, dh before exp (torchvision's BoxCoder)


def box_area(b: torch.Tensor) -> torch.Tensor:
    """Areas (...,) of xyxy boxes (..., 4); inverted boxes have area 0."""
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU (..., N, M) of xyxy boxes ``a`` (..., N, 4) and ``b`` (..., M, 4); 0 where the union
    is empty."""
    a1, a2 = a[..., :, None, :], b[..., None, :, :]
    iw = (torch.minimum(a1[..., 2], a2[..., 2]) - torch.maximum(a1[..., 0], a2[..., 0])).clamp_(min=0)
    ih = (torch.minimum(a1[..., 3], a2[..., 3]) - torch.maximum(a1[..., 1], a2[..., 1])).clamp_(min=0)
    inter = iw.mul_(ih)
    union = box_area(a)[..., :, None] + box_area(b)[..., None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms_mask(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
             valid: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy NMS of G independent groups at once: ``boxes`` (G, N, 4), ``scores`` (G, N), ``valid``
    (G, N; invalid entries are neither kept nor suppress) -> kept mask (G, N).

    torchvision semantics: in decreasing score order, a box is dropped when a higher-scored *kept* box
    overlaps it with IoU > ``iou_threshold`` (strict). The greedy recursion ``keep[i] = no kept j < i
    overlaps i`` is solved as the fixed point of one vectorised step: after t steps the first t
    decisions are final, so it ends after at most N steps (in practice the length of the longest
    suppression chain, a handful)."""
    g, n = scores.shape
    if valid is None:
        valid = torch.ones_like(scores, dtype=torch.bool)
    if n == 0:
        return valid.clone()
    key = torch.where(valid, scores, torch.full_like(scores, -float("inf")))
    order = torch.argsort(key, dim=1, descending=True, stable=True)
    b = torch.gather(boxes, 1, order[..., None].expand(g, n, 4))
    ok = torch.gather(valid, 1, order)
    over = ((box_iou(b, b) > iou_threshold).triu(1) & ok[:, :, None]).to(b.dtype)  # [g, j, i]: j (higher) hits i
    keep = ok.clone()
    for _ in range(n):
        new = ok & ~(torch.bmm(keep[:, None, :].to(b.dtype), over)[:, 0] > 0)
        if torch.equal(new, keep):
            break
        keep = new
    return torch.zeros_like(keep).scatter(1, order, keep)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS of boxes (N, 4) (see :func:`nms_mask`); kept indices in decreasing score order."""
    keep = torch.nonzero(nms_mask(boxes[None], scores[None], iou_threshold)[0]).squeeze(1)
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS independently per value of ``idxs`` (class or pyramid level); kept indices in decreasing score.
    The groups are padded into one (G, N_max) batch, so no IoU is computed across two groups."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    values, group = torch.unique(idxs, return_inverse=True)
    counts = torch.bincount(group, minlength=len(values))
    order = torch.argsort(group, stable=True)
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(idxs), device=idxs.device) - start[group[order]]
    gn, nmax = len(values), int(counts.max())
    pb = boxes.new_zeros((gn, nmax, 4))
    ps = scores.new_zeros((gn, nmax))
    pv = torch.zeros((gn, nmax), dtype=torch.bool, device=boxes.device)
    pb[group[order], slot] = boxes[order]
    ps[group[order], slot] = scores[order]
    pv[group[order], slot] = True
    kept_mask = nms_mask(pb, ps, iou_threshold, pv)[group[order], slot]
    keep = order[kept_mask]
    return keep[torch.argsort(scores[keep], descending=True, stable=True)]


def clip_boxes(boxes: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Clip xyxy boxes (..., 4) to an image of height/width ``hw``."""
    h, w = hw
    x = boxes[..., 0::2].clamp(min=0, max=w)
    y = boxes[..., 1::2].clamp(min=0, max=h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], -1)


def remove_small_boxes(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Indices of boxes whose width and height are both at least ``min_size``."""
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.nonzero((ws >= min_size) & (hs >= min_size)).squeeze(1)


class BoxCoder:
    """R-CNN box deltas: ``dx = wx (gx - px) / pw``, ``dw = ww log(gw / pw)`` (and y, h), centres at
    ``x1 + w / 2``; decoding clamps dw, dh at log(1000 / 16)."""

    def __init__(self, weights: tuple[float, float, float, float], clip: float = BBOX_XFORM_CLIP) -> None:
        self.weights = tuple(float(w) for w in weights)
        self.clip = clip

    def encode(self, gt: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
        """Deltas (N, 4) of ``gt`` (N, 4) relative to ``proposals`` (N, 4)."""
        wx, wy, ww, wh = self.weights
        pw, ph = proposals[:, 2] - proposals[:, 0], proposals[:, 3] - proposals[:, 1]
        px, py = proposals[:, 0] + 0.5 * pw, proposals[:, 1] + 0.5 * ph
        gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
        gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
        return torch.stack([wx * (gx - px) / pw, wy * (gy - py) / ph, ww * torch.log(gw / pw),
                            wh * torch.log(gh / ph)], 1)

    def decode(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Boxes (N, K, 4) from deltas (N, 4K) relative to ``boxes`` (N, 4) (K = 1 for class-agnostic)."""
        boxes = boxes.to(deltas.dtype)
        n = deltas.shape[0]
        d = deltas.reshape(n, -1, 4)
        wx, wy, ww, wh = self.weights
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        cx, cy = boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h
        dx, dy = d[..., 0] / wx, d[..., 1] / wy
        dw, dh = (d[..., 2] / ww).clamp(max=self.clip), (d[..., 3] / wh).clamp(max=self.clip)
        pcx, pcy = dx * w[:, None] + cx[:, None], dy * h[:, None] + cy[:, None]
        pw, ph = torch.exp(dw) * w[:, None], torch.exp(dh) * h[:, None]
        return torch.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], -1)
