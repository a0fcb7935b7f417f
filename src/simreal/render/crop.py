"""Crop mode: object-centred square crops of the projected (amodal) box, padded and resized, the
way re-identification and classification datasets are cut."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from simreal.datasets.coco import SIMREAL, mask_bbox, mask_to_rle
from simreal.render.spec import CropSpec


def square_box(box: list[float], padding: float) -> tuple[float, float, float]:
    """Centre x, centre y and side of the padded square around an [x, y, w, h] box."""
    cx, cy = box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
    side = max(box[2], box[3]) * (1.0 + 2.0 * padding)
    return cx, cy, max(side, 2.0)


def cut(array: np.ndarray, cx: float, cy: float, side: float, size: int, nearest: bool) -> np.ndarray:
    """Resample the square (cx, cy, side) of ``array`` to size x size; outside is edge-extended."""
    img = Image.fromarray(array)
    x0, y0 = cx - side / 2.0, cy - side / 2.0
    # Pillow's resize box clamps nothing and reads outside as edge pixels with BILINEAR/NEAREST.
    h, w = array.shape[:2]
    pad = int(np.ceil(side))
    if x0 < 0 or y0 < 0 or x0 + side > w or y0 + side > h:
        padded = np.pad(array, ((pad, pad), (pad, pad)) + ((0, 0),) * (array.ndim - 2), mode="edge"
                        if not nearest else "constant")
        img = Image.fromarray(padded)
        x0, y0 = x0 + pad, y0 + pad
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(img.resize((size, size), method, box=(x0, y0, x0 + side, y0 + side)))


def crop_samples(
    image: np.ndarray, mask: np.ndarray, anns: list[dict[str, Any]], params: dict[str, Any], spec: CropSpec,
    rng_seed: int,
) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any], list[dict[str, Any]]]]:
    """One crop per non-ignored target (label = its category); a negative image gives one random
    crop labelled 0."""
    size = spec.size
    kept = [a for a in anns if not a[SIMREAL]["ignore"]]
    if not kept:
        if not params["negative"]:
            return
        rng = np.random.default_rng(rng_seed)
        h, w = mask.shape
        side = float(rng.uniform(0.3, 0.8) * min(h, w))
        cx, cy = rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2)
        img = cut(image, cx, cy, side, size, False)
        rec = {"width": size, "height": size, "label": 0, "crop": [cx - side / 2, cy - side / 2, side, side]}
        yield img, np.zeros((size, size), np.uint16), rec, []
        return
    for a in kept:
        sim = a[SIMREAL]
        box = sim["amodal_bbox"] or a["bbox"]
        cx, cy, side = square_box(box, spec.padding)
        img = cut(image, cx, cy, side, size, False)
        m = cut(mask, cx, cy, side, size, True)
        own = m == sim["instance_id"]
        crop_anns = []
        bb = mask_bbox(own)
        if bb is not None:
            crop_anns.append({
                "category_id": a["category_id"], "bbox": bb, "area": float(own.sum()),
                "segmentation": mask_to_rle(own), "iscrowd": 0,
                SIMREAL: {"instance_id": sim["instance_id"], "visibility": sim["visibility"], "ignore": 0},
            })
        rec = {"width": size, "height": size, "label": int(a["category_id"]),
               "crop": [cx - side / 2, cy - side / 2, side, side], "source_instance": sim["instance_id"]}
        yield img, m.astype(np.uint16), rec, crop_anns
