"""Rendered instance-segmentation scenes for the instance task tests: discs and squares (two classes)
with exact instance masks on a noise background."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from simreal.datasets.arrays import InstanceSample, write_instance_dataset


def shapes_dataset(root: Path, n: int, seed: int, size: int = 64, shift: float = 0.0, negatives: int = 0,
                   masks: bool = True) -> Path:
    """``n`` images with 1-3 non-overlapping shapes (12-24 px) and ``negatives`` empty images;
    ``masks=False`` keeps only the boxes (no mask files, no RLE)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    samples = []
    for i in range(n + negatives):
        img = np.clip(rng.normal(0.35 + shift, 0.08, (size, size, 3)), 0, 1)
        inst = np.zeros((size, size), np.uint16)
        classes: list[int] = []
        for _ in range(int(rng.integers(1, 4)) if i < n else 0):
            for _try in range(30):
                s = int(rng.integers(12, 24))
                x, y = (int(v) for v in rng.integers(0, size - s, 2))
                cls = int(rng.integers(0, 2))
                if cls == 0:
                    m = (xx - x - s / 2) ** 2 + (yy - y - s / 2) ** 2 <= (s / 2) ** 2
                else:
                    m = (xx >= x) & (xx < x + s) & (yy >= y) & (yy < y + s)
                if not (inst[max(y - 2, 0):y + s + 2, max(x - 2, 0):x + s + 2] > 0).any():
                    break
            else:
                continue
            img[m] = (0.9, 0.2, 0.2) if cls == 0 else (0.2, 0.3, 0.95)
            inst[m] = len(classes) + 1
            classes.append(cls)
        samples.append(InstanceSample((img * 255).astype(np.uint8), inst, classes))
    write_instance_dataset(root, root.name, "synthetic", ["disc", "square"], samples)
    if not masks:
        ann = root / "annotations.json"
        doc = json.loads(ann.read_text())
        for rec in doc["images"]:
            rec.pop("mask_file", None)
        for a in doc["annotations"]:
            a.pop("segmentation", None)
            a.pop("simreal", None)
        ann.write_text(json.dumps(doc))
    return root


SMALL_INSTANCE = """instance:
  fpn_channels: 32
  anchor_sizes: [[8], [16], [32], [64], [128]]
  representation_size: 64
  mask_layers: [64, 64]
  mask_dim_reduced: 64
  rpn_pre_nms_top_n_train: 200
  rpn_post_nms_top_n_train: 100
  rpn_pre_nms_top_n_test: 200
  rpn_post_nms_top_n_test: 50
  rpn_batch_size_per_image: 64
  box_batch_size_per_image: 32
  box_detections_per_img: 20
"""
