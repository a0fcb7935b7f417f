import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from simreal.metrics.detection import coco_map, prf_at_iou


def _doc() -> dict:
    return {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
                {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 40, 30], "area": 1200, "iscrowd": 0},
                {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 60, 60], "area": 3600, "iscrowd": 0},
                {"id": 4, "image_id": 2, "category_id": 1, "bbox": [70, 70, 20, 20], "area": 400, "iscrowd": 1}]}


DETS = [
    {"image_id": 1, "category_id": 1, "bbox": [11, 11, 20, 20], "score": 0.9},
    {"image_id": 1, "category_id": 1, "bbox": [12, 10, 20, 19], "score": 0.8},  # duplicate -> FP
    {"image_id": 1, "category_id": 2, "bbox": [55, 50, 40, 30], "score": 0.6},
    {"image_id": 2, "category_id": 1, "bbox": [0, 0, 30, 60], "score": 0.7},  # IoU 0.5 exactly -> not > 0.5
    {"image_id": 2, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.3},
]


def test_coco_map_equals_pycocotools() -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = _doc()
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes([dict(d) for d in DETS]), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = coco_map(_doc(), DETS)
    assert np.allclose(list(ours.values()), ev.stats)


def test_prf_hand_counts() -> None:
    gts = [a for a in _doc()["annotations"] if not a["iscrowd"]]
    r = prf_at_iou(gts, DETS, iou=0.5)
    # TP: img1 cat1 (0.9), img1 cat2 (IoU 35*30/(1200+1200-1050)=0.78); FN: img2 cat1 (IoU exactly 0.5)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 3, 1)
    assert np.isclose(r["precision"], 2 / 5) and np.isclose(r["recall"], 2 / 3)
    assert r["per_class"][1]["tp"] == 1 and r["per_class"][1]["fp"] == 2
