"""Detection metrics: precision/recall/F1 at IoU 0.5 (squeezedet-style matching) and COCO box and mask
mAP via pycocotools.

Boxes are COCO ``[x, y, w, h]``. P/R/F1 matching: for each ground truth, the unassigned detection of
the same class with IoU > ``iou`` (strict) and the highest score becomes a true positive; other
detections are false positives; per class and pooled over classes.
"""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np

from simreal.datasets.coco import xywh_iou


def prf_at_iou(gts: list[dict[str, Any]], dets: list[dict[str, Any]], iou: float = 0.5,
               score_threshold: float = 0.0) -> dict[str, Any]:
    """``gts``: {image_id, category_id, bbox}; ``dets``: the same plus ``score``."""
    dets = [d for d in dets if d["score"] > score_threshold]
    cats = sorted({g["category_id"] for g in gts} | {d["category_id"] for d in dets})
    tp = dict.fromkeys(cats, 0)
    fp = dict.fromkeys(cats, 0)
    fn = dict.fromkeys(cats, 0)
    by_img: dict[Any, list[int]] = {}
    for j, d in enumerate(dets):
        by_img.setdefault((d["image_id"], d["category_id"]), []).append(j)
    used = np.zeros(len(dets), dtype=bool)
    for g in gts:
        best, best_score = -1, -np.inf
        for j in by_img.get((g["image_id"], g["category_id"]), []):
            if not used[j] and xywh_iou(g["bbox"], dets[j]["bbox"]) > iou and dets[j]["score"] > best_score:
                best, best_score = j, dets[j]["score"]
        if best >= 0:
            used[best] = True
            tp[g["category_id"]] += 1
        else:
            fn[g["category_id"]] += 1
    for j, d in enumerate(dets):
        if not used[j]:
            fp[d["category_id"]] += 1

    def prf(t: int, f_p: int, f_n: int) -> dict[str, float]:
        p, r = t / (t + f_p + 1e-10), t / (t + f_n + 1e-10)
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r + 1e-20), "tp": t, "fp": f_p, "fn": f_n}

    return {"per_class": {c: prf(tp[c], fp[c], fn[c]) for c in cats},
            **prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))}


COCO_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def coco_evaluator(gt_doc: dict[str, Any], results: list[dict[str, Any]], iou_type: str = "bbox") -> Any:
    """A pycocotools ``COCOeval`` (default parameters) of ``results`` against a COCO document, evaluated and
    accumulated; None when there are no results. ``iou_type`` "segm" needs compressed-RLE ``segmentation``
    on both sides; segm results should carry no ``bbox`` (``loadRes`` would take the box area as the
    result's area)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    doc = copy.deepcopy(gt_doc)
    for i, a in enumerate(doc["annotations"], start=1):
        a.setdefault("id", i)
        a.setdefault("iscrowd", 0)
        a.setdefault("area", float(a["bbox"][2] * a["bbox"][3]))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = doc
        gt.createIndex()
        if not results:
            return None
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def coco_map(gt_doc: dict[str, Any], dets: list[dict[str, Any]], iou_type: str = "bbox") -> dict[str, float]:
    """COCO metrics (AP, AP50, ... see :data:`COCO_STATS`) of ``dets`` against a COCO document: boxes
    (``iou_type="bbox"``) or masks (``"segm"``); all 0 without detections."""
    ev = coco_evaluator(gt_doc, dets, iou_type)
    if ev is None:
        return dict.fromkeys(COCO_STATS, 0.0)
    return {k: float(v) for k, v in zip(COCO_STATS, ev.stats, strict=True)}


def coco_per_class(ev: Any) -> dict[int, dict[str, float | None]]:
    """Per category id: AP (IoU .50:.95) and AP50 from an accumulated ``COCOeval`` (None for a category
    without ground truth)."""
    prec = ev.eval["precision"]  # [T, R, K, A, M]
    out: dict[int, dict[str, float | None]] = {}
    for k, cid in enumerate(ev.params.catIds):
        p = prec[:, :, k, 0, -1]
        ap = float(p[p > -1].mean()) if (p > -1).any() else None
        p50 = p[0]
        ap50 = float(p50[p50 > -1].mean()) if (p50 > -1).any() else None
        out[int(cid)] = {"AP": ap, "AP50": ap50}
    return out
