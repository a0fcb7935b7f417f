"""COCO helpers on top of pycocotools: compressed RLE, areas and boxes from masks, and the layout
of simreal's COCO files (where its own fields live, where ``file_name`` points)."""

from __future__ import annotations

from pathlib import Path
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


# Images live in DATASET/images/ and ``file_name`` is relative to that folder (the COCO convention,
# what FiftyOne's ``data_path=<dataset>/images`` and Detectron2's ``image_root`` expect). Datasets
# written before this layout carry an ``images/`` prefix; every reader still accepts it.
IMAGES_DIR = "images"

# simreal's own annotation fields live in one sub-object, ``ann["simreal"]``, so that no COCO reader
# mistakes them for its own. Tools add a COCO annotation's extra keys to their own objects:
# - FiftyOne (fiftyone/utils/coco.py, ``COCOObject.from_anno_dict`` -> ``to_detection``, 1.22) passes
#   every extra key as an attribute of ``fiftyone.core.labels.Detection``, whose fields and properties
#   (id, _id, _cls, tags, label, bounding_box, mask, mask_path, confidence, index, attributes,
#   instance_id, has_mask, field_names, and the methods) are reserved: ``instance_id`` aborts the
#   import; it also sets coco_id, supercategory and iscrowd itself and merges a key ``attributes``.
# - Detectron2 (detectron2/data/datasets/coco.py, ``load_coco_json``) copies iscrowd, bbox,
#   keypoints, category_id, segmentation and sets bbox_mode, and asserts ``ignore`` is absent or 0.
# tests/e2e/coco_tools.py and test_render_cli.py::test_coco_layout_clashes_with_no_tool check the names.
SIMREAL = "simreal"
ANNOTATION_FIELDS = ("instance_id", "amodal_bbox", "amodal_area", "visibility", "truncated", "ignore")


def extras(ann: dict[str, Any]) -> dict[str, Any]:
    """simreal's fields of an annotation (``instance_id``, ``amodal_bbox``, ``amodal_area``,
    ``visibility``, ``truncated``, ``ignore``); empty for an annotation from elsewhere."""
    return ann.get(SIMREAL) or {}


def current_annotation(ann: dict[str, Any]) -> dict[str, Any]:
    """``ann`` in the current layout: fields an older simreal wrote at the top level move into
    ``ann["simreal"]`` (a value already there wins)."""
    legacy = [k for k in ANNOTATION_FIELDS if k in ann]
    if not legacy:
        return ann
    out = {k: v for k, v in ann.items() if k not in legacy}
    out[SIMREAL] = {**{k: ann[k] for k in legacy}, **extras(ann)}
    return out


def current_image(rec: dict[str, Any]) -> dict[str, Any]:
    """An image record in the current layout: ``file_name`` relative to ``images/``."""
    name = rec.get("file_name")
    prefix = IMAGES_DIR + "/"
    if isinstance(name, str) and name.startswith(prefix):
        return {**rec, "file_name": name[len(prefix):]}
    return rec


def image_file(root: Path, rec: dict[str, Any]) -> Path:
    """Path of a dataset image record's file (either layout)."""
    return root / IMAGES_DIR / current_image(rec)["file_name"]


def coco_document(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], categories: list[dict[str, Any]],
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A COCO document in the current layout, with sequential annotation ids."""
    anns = []
    for i, a in enumerate(annotations, start=1):
        a = dict(current_annotation(a))
        a["id"] = i
        anns.append(a)
    return {
        "info": info or {},
        "licenses": [],
        "images": [current_image(r) for r in images],
        "annotations": anns,
        "categories": categories,
    }
