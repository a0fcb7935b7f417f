"""Evaluation of detections in original image pixels: P/R/F1 at IoU 0.5 (``metrics.detection.prf_at_iou``
at the score threshold), COCO mAP (pycocotools), per-class AP, image-level ROC-AUC/AP of the image
score, a detection PR curve (``pr.png``) and ``detections.json`` (COCO results format).

Ignored ground truth (``ignore``/``iscrowd``) is a COCO crowd region for mAP; for P/R/F1 a detection
mostly inside an ignored box (intersection / detection area > 0.5) that matches no other box is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simreal.metrics.detection import coco_map, prf_at_iou


def _xywh(b: np.ndarray, scale: tuple[float, float]) -> list[float]:
    sx, sy = scale
    return [float(b[0] * sx), float(b[1] * sy), float((b[2] - b[0]) * sx), float((b[3] - b[1]) * sy)]


def coco_inputs(task: Any, preds: list[dict[str, Any]], targets: list[Any]) -> tuple[
        dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(COCO ground-truth document, detections, non-ignored gts, ignored gts) in original pixels; image
    ids are positions 1..N; category ids are class index + 1."""
    dets_per_img = [d for p in preds for d in p["dets"]]
    images, anns, dets, gts, ign = [], [], [], [], []
    for i, (t, d) in enumerate(zip(targets, dets_per_img, strict=True), start=1):
        if t is None:
            continue
        oh, ow = t["orig_hw"]
        images.append({"id": i, "width": ow, "height": oh})
        for b, lab, ig in zip(t["orig_boxes"], t["labels"], t["ignore"], strict=True):
            g = {"image_id": i, "category_id": int(lab) + 1, "bbox": [float(v) for v in b]}
            anns.append({**g, "iscrowd": int(ig), "area": float(b[2] * b[3])})
            (ign if ig else gts).append(g)
        for b, s, lab in zip(d["boxes"], d["scores"], d["labels"], strict=True):
            dets.append({"image_id": i, "category_id": int(lab) + 1, "bbox": _xywh(b, t["scale"]), "score": float(s)})
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(task.class_names)]
    return {"images": images, "annotations": anns, "categories": cats}, dets, gts, ign


def _iof(det: list[float], box: list[float]) -> float:
    iw = max(0.0, min(det[0] + det[2], box[0] + box[2]) - max(det[0], box[0]))
    ih = max(0.0, min(det[1] + det[3], box[1] + box[3]) - max(det[1], box[1]))
    return iw * ih / max(det[2] * det[3], 1e-12)


def prf_ignoring(gts: list[dict[str, Any]], ign: list[dict[str, Any]], dets: list[dict[str, Any]],
                 score_threshold: float, iou: float = 0.5) -> dict[str, Any]:
    """``prf_at_iou`` after dropping detections that fall on ignored boxes only."""
    if ign:
        from simreal.datasets.coco import xywh_iou

        by_img: dict[Any, list[dict[str, Any]]] = {}
        for g in ign:
            by_img.setdefault(g["image_id"], []).append(g)
        real: dict[Any, list[dict[str, Any]]] = {}
        for g in gts:
            real.setdefault(g["image_id"], []).append(g)

        def on_ignored(d: dict[str, Any]) -> bool:
            if not any(_iof(d["bbox"], g["bbox"]) > 0.5 for g in by_img.get(d["image_id"], [])):
                return False
            return not any(g["category_id"] == d["category_id"] and xywh_iou(g["bbox"], d["bbox"]) > iou
                           for g in real.get(d["image_id"], []))

        dets = [d for d in dets if not on_ignored(d)]
    return prf_at_iou(gts, dets, iou, score_threshold)


def _pr_curves(task: Any, gts: list[dict[str, Any]], ign: list[dict[str, Any]], dets: list[dict[str, Any]],
               points: int = 25) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Per-class (recall, precision) at IoU 0.5 over a sweep of score thresholds."""
    scores = np.array([d["score"] for d in dets])
    if not len(scores):
        return []
    thr = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, points)))[::-1] - 1e-9
    rows = [prf_ignoring(gts, ign, dets, float(t)) for t in thr]
    curves = []
    for k, name in enumerate(task.class_names):
        cid = k + 1
        if not any(g["category_id"] == cid for g in gts):
            continue
        r = np.array([row["per_class"].get(cid, {}).get("recall", 0.0) for row in rows])
        p = np.array([row["per_class"].get(cid, {}).get("precision", 1.0) for row in rows])
        curves.append((r, p, name))
    return curves


SWEEP = tuple(round(0.05 * k, 2) for k in range(1, 20))  # score thresholds of the F1 sweep: 0.05 .. 0.95


def f1_sweep(gts: list[dict[str, Any]], ign: list[dict[str, Any]], dets: list[dict[str, Any]],
             thresholds: tuple[float, ...] = SWEEP) -> list[dict[str, float]]:
    """Precision, recall and F1 at IoU 0.5 at each score threshold (all classes pooled)."""
    out = []
    for t in thresholds:
        r = prf_ignoring(gts, ign, dets, t)
        out.append({"threshold": t, "precision": r["precision"], "recall": r["recall"], "f1": r["f1"]})
    return out


def detection_eval(task: Any, preds: list[dict[str, Any]], targets: list[Any], out: Path) -> dict[str, Any]:
    """Detection figures and plots for ``simreal eval``."""
    from simreal.metrics.plots import save_curves
    from simreal.metrics.ranking import pr_curve, roc_curve
    from simreal.runtime.io import atomic_write_json

    out = Path(out)
    doc, dets, gts, ign = coco_inputs(task, preds, targets)
    thr = task.opt.score_threshold
    prf = prf_ignoring(gts, ign, dets, thr)
    cm = coco_map(doc, dets)
    res: dict[str, Any] = {"images": len(doc["images"]), "boxes": len(gts), "ignored_boxes": len(ign),
                           "detections": sum(d["score"] > thr for d in dets), "score_threshold": thr,
                           "precision": prf["precision"], "recall": prf["recall"], "f1": prf["f1"],
                           "mAP": cm["AP"], "AP50": cm["AP50"], "AP75": cm["AP75"], "AR100": cm["AR100"]}
    # the operating point is a choice: F1 at every threshold, and the best one (chosen with THESE labels, so an
    # optimistic figure on a test set; choose it on labelled synthetic or validation data and read it off here)
    res["f1_sweep"] = f1_sweep(gts, ign, dets)
    best = max(res["f1_sweep"], key=lambda r: r["f1"])
    res["best_f1"], res["best_f1_threshold"] = best["f1"], best["threshold"]
    per_class: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(task.class_names):
        cid = k + 1
        sub = {**doc, "annotations": [a for a in doc["annotations"] if a["category_id"] == cid]}
        n = sum(1 for g in gts if g["category_id"] == cid)
        c_prf = prf["per_class"].get(cid)
        c_map = coco_map(sub, [d for d in dets if d["category_id"] == cid]) if n else None
        per_class[name] = {"boxes": n, "AP": c_map["AP"] if c_map else None, "AP50": c_map["AP50"] if c_map else None,
                           "precision": c_prf["precision"] if c_prf else None,
                           "recall": c_prf["recall"] if c_prf else None, "f1": c_prf["f1"] if c_prf else None}
    res["per_class"] = per_class
    # image level: does the image contain an object (any non-ignored box)?
    kept = [i for i, t in enumerate(targets) if t is not None]
    y = np.array([int(len(targets[i]["labels"]) > int(np.sum(targets[i]["ignore"]))) for i in kept])
    s = np.concatenate([p["image_score"] for p in preds])[kept]
    res["image_positives"], res["image_negatives"] = int(y.sum()), int(len(y) - y.sum())
    res["image_roc_auc"] = res["image_ap"] = None
    if 0 < y.sum() < len(y):
        fpr, tpr, auc = roc_curve(y, s)
        rec, prec, ap = pr_curve(y, s)
        res["image_roc_auc"], res["image_ap"] = auc, ap
        save_curves(out / "roc.png", [(fpr, tpr, f"image score (AUC {auc:.3f})")], "false positive rate",
                    "true positive rate", "image level: contains an object", True)
        save_curves(out / "pr_image.png", [(rec, prec, f"image score (AP {ap:.3f})")], "recall", "precision",
                    "image level: contains an object")
    curves = _pr_curves(task, gts, ign, dets)
    if curves:
        save_curves(out / "pr.png", curves, "recall", "precision", "detections, IoU > 0.5 (score sweep)")
    ids = {i: targets[i - 1]["image_id"] for i in range(1, len(targets) + 1) if targets[i - 1] is not None}
    atomic_write_json(out / "detections.json", [
        {**d, "image_id": ids[d["image_id"]], "category": task.class_names[d["category_id"] - 1]} for d in dets])
    return res
