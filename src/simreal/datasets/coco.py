"""COCO helpers on top of pycocotools: compressed RLE, areas and boxes from masks."""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def mask_to_rle(binary: np.ndarray) -> dict[str, Any]:
    """Compressed RLE (JSON-ready: counts as str) of an HxW boolean mask."""
    rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """Decode a compressed RLE (counts str or bytes) to an HxW bool array."""
    r = dict(rle)
    if isinstance(r["counts"], str):
        r["counts"] = r["counts"].encode("ascii")
    return mask_utils.decode(r).astype(bool)


def mask_bbox(binary: np.ndarray) -> list[float] | None:
    """Tight [x, y, w, h] of the true pixels (pixel edges), or None when empty."""
    ys = np.flatnonzero(binary.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(binary.any(axis=0))
    return [float(xs[0]), float(ys[0]), float(xs[-1] - xs[0] + 1), float(ys[-1] - ys[0] + 1)]


def xywh_iou(a: list[float], b: list[float]) -> float:
    """IoU of two [x, y, w, h] boxes."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def coco_document(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], categories: list[dict[str, Any]],
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A COCO document with sequential annotation ids."""
    anns = []
    for i, a in enumerate(annotations, start=1):
        a = dict(a)
        a["id"] = i
        anns.append(a)
    return {
        "info": info or {},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": categories,
    }
