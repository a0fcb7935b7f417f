"""Anchor shapes from training boxes: k-means with the distance 1 - IoU (YOLOv2, SqueezeDet).

Boxes are compared by shape only (both centred at the origin). Initialisation is k-means++ with
the same distance from a seeded generator, so the result is a deterministic function of
(boxes, k, seed). Anchors are returned sorted by area.
"""

from __future__ import annotations

import numpy as np


def wh_iou(wh: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """IoU (N, K) of (w, h) shapes aligned at a common centre."""
    inter = np.minimum(wh[:, None, 0], centroids[None, :, 0]) * np.minimum(wh[:, None, 1], centroids[None, :, 1])
    union = (wh[:, 0] * wh[:, 1])[:, None] + (centroids[:, 0] * centroids[:, 1])[None, :] - inter
    return inter / np.maximum(union, 1e-12)


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0, iters: int = 300) -> np.ndarray:
    """``k`` anchor shapes (k, 2) from box shapes ``wh`` (N, 2) by IoU k-means (mean update)."""
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    wh = wh[(wh > 0).all(1)]
    if len(wh) == 0:
        raise ValueError("no boxes with positive width and height to fit anchors to")
    rng = np.random.default_rng(seed)
    cent = [wh[rng.integers(len(wh))]]
    for _ in range(1, k):  # k-means++ seeding with d = 1 - IoU
        d = 1.0 - wh_iou(wh, np.array(cent)).max(1)
        total = d.sum()
        cent.append(wh[rng.choice(len(wh), p=d / total)] if total > 1e-12 else wh[rng.integers(len(wh))])
    c = np.array(cent)
    assign = np.full(len(wh), -1)
    for _ in range(iters):
        new = wh_iou(wh, c).argmax(1)
        if np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = wh[assign == j]
            if len(members):
                c[j] = members.mean(0)
    return c[np.argsort(c[:, 0] * c[:, 1], kind="stable")]


def mean_best_iou(wh: np.ndarray, anchors: np.ndarray) -> float:
    """Average over boxes of the best anchor IoU (the usual anchor-quality figure)."""
    return float(wh_iou(np.asarray(wh, dtype=np.float64).reshape(-1, 2), np.asarray(anchors)).max(1).mean())
