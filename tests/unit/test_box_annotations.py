"""Boxes of a record matched to a task's classes by category name (detect and instance share it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simreal.datasets.contract import Dataset, DatasetWriter
from simreal.datasets.imageio import encode_image
from simreal.errors import DatasetError
from simreal.tasks.base import box_annotations
from simreal.tasks.detect import DetectTask


def _dataset(root: Path) -> Dataset:
    """Categories listed in another order than the task's classes (id 1 is 'b')."""
    w = DatasetWriter(root, "d", "synthetic", [{"id": 1, "name": "b"}, {"id": 2, "name": "a"},
                                                {"id": 3, "name": "c"}])
    w.write_image("0.png", encode_image(np.zeros((20, 40, 3), np.uint8)))
    w.finalize([{"id": 1, "file_name": "0.png", "width": 40, "height": 20}],
               [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [4, 2, 10, 6], "area": 60, "iscrowd": 0},
                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 10, 8, 4], "area": 32, "iscrowd": 0},
                {"id": 3, "image_id": 1, "category_id": 3, "area": 0, "iscrowd": 0}])  # no box: skipped
    return Dataset.open(root)


def test_classes_are_matched_by_name_and_boxes_scaled(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "d")
    got = box_annotations(ds, ds.images[0], {"a": 0, "b": 1}, ["a", "b"])
    assert [(a["id"], cls) for a, cls in got] == [(1, 0), (2, 1)]
    t = DetectTask(2, ["a", "b"], anchors=[[4.0, 4.0]]).target(ds, ds.images[0], (10, 20))  # half size
    assert t["labels"].tolist() == [0, 1]
    np.testing.assert_allclose(t["boxes"], [[2, 1, 7, 4], [10, 5, 14, 7]])


def test_a_category_outside_the_classes_is_one_line_naming_it(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "d")
    with pytest.raises(DatasetError, match=r"annotation of image 1 has category 1 not among the classes \['a'\]"):
        DetectTask(1, ["a"], anchors=[[4.0, 4.0]]).target(ds, ds.images[0], (20, 40))
