"""Write in-memory images with instance masks as a dataset folder (the contract of docs/datasets.md):
PNG images, 16-bit instance masks, COCO annotations with boxes, areas and compressed-RLE masks taken
from the instance masks themselves (exact labels for composed or drawn scenes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simreal.datasets.coco import SIMREAL, mask_bbox, mask_to_rle
from simreal.datasets.contract import Dataset, DatasetWriter
from simreal.datasets.imageio import encode_image, encode_mask


@dataclass
class InstanceSample:
    """One image: ``image`` (H, W, 3) uint8, ``instances`` (H, W) ids (0 = background), ``classes`` the class
    index (0-based, into the dataset's class names) of instance id 1, 2, ...; ``params`` go on the record."""

    image: np.ndarray
    instances: np.ndarray
    classes: list[int]
    params: dict[str, Any] = field(default_factory=dict)


def write_instance_dataset(root: str | Path, name: str, domain: str, class_names: list[str],
                           samples: Iterable[InstanceSample], provenance: dict[str, Any] | None = None) -> Dataset:
    """Write ``samples`` into the dataset folder ``root`` and open it. Instances with no visible pixel are
    left out; image records carry ``domain``, ``params`` and ``mask_file``."""
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]
    w = DatasetWriter(root, name, domain, cats, provenance)
    images, anns = [], []
    for i, s in enumerate(samples):
        h, wd = s.instances.shape
        rec = {"id": i + 1, "file_name": w.write_image(f"{i:06d}.png", encode_image(s.image), durable=False),
               "mask_file": w.write_file(f"masks/{i:06d}.png", encode_mask(s.instances), durable=False),
               "width": int(wd), "height": int(h), "domain": domain, "params": s.params}
        images.append(rec)
        for k, cls in enumerate(s.classes, start=1):
            m = s.instances == k
            box = mask_bbox(m)
            if box is None:
                continue
            anns.append({"image_id": i + 1, "category_id": int(cls) + 1, "bbox": box, "area": float(m.sum()),
                         "segmentation": mask_to_rle(m), "iscrowd": 0, SIMREAL: {"instance_id": k}})
    w.finalize(images, anns)
    return Dataset.open(root)
