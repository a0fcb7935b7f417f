"""Evaluation of instance segmentation at the ORIGINAL image resolution.

* COCO box and mask metrics through pycocotools: predicted 28 x 28 masks are pasted into the original
  image (boxes rescaled from the input size), binarised at ``mask_threshold`` and encoded as
  compressed RLE; mask results carry no ``bbox`` (pycocotools would take the box area as the result's
  area); ground-truth areas are mask areas; ``ignore``/``iscrowd`` instances are crowd regions.
* Per class: box/mask AP and AP50, image-level ROC-AUC and AP of the class's image score.
* Image level: "contains any object" ROC/PR from the highest score after NMS.
* Plots (``roc.png``, ``pr_image.png``, ``pr.png`` = mask precision-recall at IoU 0.5 per class),
  ``samples.png`` (test images with predicted masks, boxes, classes and scores) and ``detections.json``
  (COCO results with the class name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.datasets.coco import mask_to_rle
from simreal.nn.roi_heads import paste_masks


def _per_image(preds: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], np.ndarray]:
    dets = [d for p in preds for d in p["dets"]]
    scores = np.concatenate([p["image_score"] for p in preds]) if preds else np.zeros((0, 0))
    return dets, scores


def pasted_masks(d: dict[str, Any], input_hw: tuple[int, int], hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(boxes scaled to ``hw``, masks (n, H, W) probabilities pasted at ``hw``) of one image's detections."""
    sy, sx = hw[0] / input_hw[0], hw[1] / input_hw[1]
    boxes = np.asarray(d["boxes"], np.float32).reshape(-1, 4) * np.array([sx, sy, sx, sy], np.float32)
    masks = paste_masks(torch.from_numpy(np.asarray(d["masks"], np.float32)), torch.from_numpy(boxes), hw)
    return boxes, masks.numpy()


def coco_inputs(task: Any, preds: list[dict[str, Any]], targets: list[Any]) -> tuple[
        dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(COCO ground truth, box results, mask results) at the original resolution; image ids are positions
    1..N, category ids are class indices 1..C."""
    dets, _ = _per_image(preds)
    images, anns, bbox, segm = [], [], [], []
    thr = task.opt.mask_threshold
    for i, (t, d) in enumerate(zip(targets, dets, strict=True), start=1):
        if t is None:
            continue
        oh, ow = t["orig_hw"]
        images.append({"id": i, "width": ow, "height": oh})
        for b, lab, rle, area, crowd in zip(t["orig_boxes"], t["orig_labels"], t["orig_rles"], t["orig_areas"],
                                            t["crowd"], strict=True):
            anns.append({"image_id": i, "category_id": int(lab), "bbox": [float(v) for v in b], "segmentation": rle,
                         "area": float(area), "iscrowd": int(crowd)})
        boxes, masks = pasted_masks(d, t["size"], (oh, ow))
        for b, m, s, lab in zip(boxes, masks, d["scores"], d["labels"], strict=True):
            box = [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
            bbox.append({"image_id": i, "category_id": int(lab), "bbox": box, "score": float(s)})
            segm.append({"image_id": i, "category_id": int(lab), "segmentation": mask_to_rle(m > thr),
                         "score": float(s)})
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(task.class_names)]
    return {"images": images, "annotations": anns, "categories": cats}, bbox, segm


def image_match_errors(task: Any, preds: list[dict[str, Any]], targets: list[Any]) -> np.ndarray:
    """Per image at the input size: 1 - |matched| / (|gt| + |detections| - |matched|), a detection matching an
    unmatched ground truth of its class with mask IoU > 0.5, in decreasing score order."""
    dets, _ = _per_image(preds)
    out = np.zeros(len(targets))
    for i, (t, d) in enumerate(zip(targets, dets, strict=True)):
        if t is None:
            continue
        gt, gl = t["masks"].astype(bool), t["labels"]
        _, pm = pasted_masks(d, t["size"], t["size"])
        pm = pm > task.opt.mask_threshold
        used = np.zeros(len(gt), bool)
        matched = 0
        for j in np.argsort(-np.asarray(d["scores"]), kind="stable"):
            inter = (gt & pm[j][None]).sum((1, 2))
            union = (gt | pm[j][None]).sum((1, 2))
            iou = np.where((gl == d["labels"][j]) & ~used & (union > 0), inter / np.maximum(union, 1), 0.0)
            if len(iou) and iou.max() > 0.5:
                used[int(iou.argmax())] = True
                matched += 1
        denom = len(gt) + len(pm) - matched
        out[i] = 1.0 - matched / denom if denom else 0.0
    return out


def instance_eval(task: Any, preds: list[dict[str, Any]], targets: list[Any], out: Path) -> dict[str, Any]:
    """All figures of the evaluation (see the module docstring); writes the plots, samples and detections."""
    from simreal.metrics.detection import COCO_STATS, coco_evaluator, coco_per_class
    from simreal.metrics.plots import save_curves
    from simreal.metrics.ranking import pr_curve, roc_curve
    from simreal.runtime.io import atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    gt, bbox, segm = coco_inputs(task, preds, targets)
    keep = np.array([t is not None for t in targets], bool)
    res: dict[str, Any] = {"n": int(keep.sum()), "instances": sum(1 for a in gt["annotations"] if not a["iscrowd"]),
                           "crowd_instances": sum(1 for a in gt["annotations"] if a["iscrowd"])}
    per_class: dict[str, dict[str, Any]] = {n: {} for n in task.class_names}
    evs = {}
    for kind, results in (("bbox", bbox), ("segm", segm)):
        ev = coco_evaluator(gt, results, kind)
        evs[kind] = ev
        stats = dict.fromkeys(COCO_STATS, 0.0) if ev is None else dict(zip(COCO_STATS, map(float, ev.stats),
                                                                            strict=True))
        res[kind] = stats
        pc = coco_per_class(ev) if ev is not None else {}
        for k, name in enumerate(task.class_names, start=1):
            got = pc.get(k, {"AP": None, "AP50": None})
            per_class[name][f"{kind}_AP"], per_class[name][f"{kind}_AP50"] = got["AP"], got["AP50"]
    res["mAP"], res["AP50"], res["AP75"] = res["segm"]["AP"], res["segm"]["AP50"], res["segm"]["AP75"]
    res["bbox_mAP"], res["bbox_AP50"] = res["bbox"]["AP"], res["bbox"]["AP50"]
    # image level
    _, scores = _per_image(preds)
    scores = scores[keep]
    present = np.zeros((len(scores), task.num_classes), bool)
    for r, t in enumerate([t for t in targets if t is not None]):
        for lab, crowd in zip(t["orig_labels"], t["crowd"], strict=True):
            if not crowd:
                present[r, int(lab) - 1] = True
    rocs, prs = [], []
    for k, name in enumerate(task.class_names):
        y = present[:, k].astype(int)
        per_class[name]["image_roc_auc"] = per_class[name]["image_ap"] = None
        if 0 < y.sum() < len(y):
            fpr, tpr, auc = roc_curve(y, scores[:, k])
            rec, prec, ap = pr_curve(y, scores[:, k])
            per_class[name]["image_roc_auc"], per_class[name]["image_ap"] = auc, ap
            rocs.append((fpr, tpr, f"{name} (AUC {auc:.3f})"))
            prs.append((rec, prec, f"{name} (AP {ap:.3f})"))
    anyobj = present.any(1).astype(int)
    res["image_positives"], res["image_negatives"] = int(anyobj.sum()), int(len(anyobj) - anyobj.sum())
    res["image_roc_auc"] = res["image_ap"] = None
    if 0 < anyobj.sum() < len(anyobj):
        fpr, tpr, auc = roc_curve(anyobj, scores.max(1))
        rec, prec, ap = pr_curve(anyobj, scores.max(1))
        res["image_roc_auc"], res["image_ap"] = auc, ap
        rocs.insert(0, (fpr, tpr, f"any object (AUC {auc:.3f})"))
        prs.insert(0, (rec, prec, f"any object (AP {ap:.3f})"))
    got = [v["image_roc_auc"] for v in per_class.values() if v["image_roc_auc"] is not None]
    res["image_roc_auc_macro"] = float(np.mean(got)) if got else None
    res["per_class"] = per_class
    if rocs:
        save_curves(out / "roc.png", rocs, "false positive rate", "true positive rate",
                    "image level: highest score after NMS", True)
        save_curves(out / "pr_image.png", prs, "recall", "precision", "image level: highest score after NMS")
    if evs["segm"] is not None:
        rthr = evs["segm"].params.recThrs
        curves = []
        for k, cid in enumerate(evs["segm"].params.catIds):
            p = evs["segm"].eval["precision"][0, :, k, 0, -1]
            if (p > -1).any():
                curves.append((rthr[p > -1], p[p > -1], task.class_names[int(cid) - 1]))
        if curves:
            save_curves(out / "pr.png", curves, "recall", "precision", "masks, IoU 0.5 (COCO interpolated)")
    if task.opt.samples:
        draw_samples(task, preds, targets, out / "samples.png", task.opt.samples)
    names = dict(enumerate(task.class_names, start=1))
    ids = {i: t["image_id"] for i, t in enumerate(targets, start=1) if t is not None}
    segm_by = {(s["image_id"], s["category_id"], s["score"]): s["segmentation"] for s in segm}
    atomic_write_json(out / "detections.json", [
        {**b, "image_id": ids[b["image_id"]], "category": names[b["category_id"]],
         "segmentation": segm_by.get((b["image_id"], b["category_id"], b["score"]))} for b in bbox])
    return res


def _palette(n: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    return rng.integers(60, 256, (max(n, 1), 3)).astype(np.float32)


def draw_samples(task: Any, preds: list[dict[str, Any]], targets: list[Any], path: Path, n: int,
                 tile: int = 256) -> Path | None:
    """A grid of the first ``n`` labelled test images with predicted masks (tinted), boxes and class:score."""
    import math

    from PIL import Image, ImageDraw

    from simreal.datasets.imageio import encode_image, read_image
    from simreal.runtime.io import atomic_write_bytes

    dets, _ = _per_image(preds)
    items = [(t, d) for t, d in zip(targets, dets, strict=True) if t is not None][:n]
    if not items:
        return None
    cols = max(1, math.ceil(math.sqrt(len(items))))
    rows = math.ceil(len(items) / cols)
    grid = Image.new("RGB", (cols * tile, rows * tile), (32, 32, 32))
    pal = _palette(task.num_classes)
    for i, (t, d) in enumerate(items):
        img = read_image(Path(t["image_path"]), "RGB").astype(np.float32)
        hw = img.shape[:2]
        boxes, masks = pasted_masks(d, t["size"], hw)
        for m, lab in zip(masks, d["labels"], strict=True):
            on = (m > task.opt.mask_threshold)[..., None]
            img = np.where(on, 0.5 * img + 0.5 * pal[int(lab) - 1], img)
        pil = Image.fromarray(img.clip(0, 255).astype(np.uint8))
        scale = tile / max(pil.size)
        pil = pil.resize((max(1, round(pil.size[0] * scale)), max(1, round(pil.size[1] * scale))),
                         Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(pil)
        for b, s, lab in zip(boxes, d["scores"], d["labels"], strict=True):
            if s < 0.3:
                continue
            color = tuple(int(v) for v in pal[int(lab) - 1])
            x0, y0, x1, y1 = (float(v) * scale for v in b)
            draw.rectangle([x0, y0, x1, y1], outline=color, width=1)
            draw.text((x0 + 2, y0 + 1), f"{task.class_names[int(lab) - 1]}:{s:.2f}", fill=color)
        grid.paste(pil, ((i % cols) * tile, (i // cols) * tile))
    atomic_write_bytes(path, encode_image(np.asarray(grid)))
    return path
