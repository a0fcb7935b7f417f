"""Exact annotations from the per-pixel-centre label map: visible masks and boxes, amodal boxes
(projected geometry) and masks (the object rendered alone), visibility and truncation."""

from __future__ import annotations

from typing import Any

import numpy as np

from simreal.datasets.coco import SIMREAL, mask_bbox, mask_to_rle
from simreal.render.scene import SceneData


def amodal_box(scene: SceneData, indices: list[int]) -> list[float] | None:
    """[x, y, w, h] of the object's projected geometry (may extend beyond the image)."""
    pts = np.concatenate([scene.instances[i].mesh.vertices for i in indices]).astype(np.float64)
    uv, ok = scene.camera.project(pts)
    if not ok.any():
        return None
    uv = uv[ok]
    x0, y0 = uv.min(axis=0)
    x1, y1 = uv.max(axis=0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def annotate(
    scene: SceneData, labels: np.ndarray, amodal_labels: dict[int, np.ndarray], min_visibility: float
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Instance mask (uint16, target k -> k) and one COCO annotation per visible target.

    ``labels`` is the instance-index map (1 + index into ``scene.instances``); ``amodal_labels`` maps
    each target label k to its unoccluded boolean mask.
    """
    h, w = labels.shape
    inst_label = np.zeros(len(scene.instances) + 1, dtype=np.uint16)
    for i, inst in enumerate(scene.instances):
        inst_label[i + 1] = inst.label
    mask = inst_label[labels]
    anns: list[dict[str, Any]] = []
    for k in sorted(amodal_labels):
        visible = mask == k
        area = int(visible.sum())
        if area == 0:
            continue
        idx = [i for i, inst in enumerate(scene.instances) if inst.label == k]
        full = int(amodal_labels[k].sum())
        visibility = area / full if full else 0.0
        abox = amodal_box(scene, idx)
        truncated = bool(abox is not None and (abox[0] < 0 or abox[1] < 0 or abox[0] + abox[2] > w
                                               or abox[1] + abox[3] > h))
        anns.append({
            "category_id": int(scene.instances[idx[0]].category_id),
            "bbox": mask_bbox(visible),
            "area": float(area),
            "segmentation": mask_to_rle(visible),
            "iscrowd": 0,
            SIMREAL: {
                "instance_id": int(k),
                "amodal_bbox": abox,
                "amodal_area": float(full),
                "visibility": float(round(visibility, 6)),
                "truncated": truncated,
                "ignore": int(visibility < min_visibility),
            },
        })
    return mask, anns
