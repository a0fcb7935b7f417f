"""The dataset contract: writer/reader round trip, image folders, RLE helpers, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from simreal.datasets import Dataset, DatasetWriter, encode_image, encode_mask, mask_bbox, mask_to_rle, rle_to_mask
from simreal.errors import DatasetError


def _write(root: Path) -> None:
    w = DatasetWriter(root, "toy", "synthetic", [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
                      {"command": "test"})
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(3):
        img = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        mask = np.zeros((12, 16), np.uint16)
        mask[2:6, 3:9] = 1
        mask[7:11, 10:15] = 300  # ids above 255 survive the 16-bit PNG
        w.write_file(f"images/{i}.png", encode_image(img))
        w.write_file(f"masks/{i}.png", encode_mask(mask))
        images.append({"id": i + 1, "file_name": f"images/{i}.png", "mask_file": f"masks/{i}.png",
                       "width": 16, "height": 12, "label": [1, 2, 0][i]})
        for k, cat in ((1, 1), (300, 2)):
            m = mask == k
            anns.append({"image_id": i + 1, "category_id": cat, "bbox": mask_bbox(m), "area": float(m.sum()),
                         "segmentation": mask_to_rle(m), "iscrowd": 0, "instance_id": k})
    w.finalize(images, anns)


def test_writer_reader_round_trip(tmp_path: Path) -> None:
    _write(tmp_path)
    ds = Dataset.open(tmp_path)
    assert len(ds) == 3 and ds.class_names == ["a", "b"] and ds.domain == "synthetic"
    assert ds.info["counts"] == {"images": 3, "annotations": 6, "negatives": 1}
    assert ds.info["provenance"]["command"] == "test"
    assert [ds.label(i) for i in range(3)] == [1, 2, 0]
    mask = ds.load_mask(0)
    assert mask is not None and mask.dtype == np.uint16 and mask.max() == 300
    for a in ds.anns(0):
        assert np.array_equal(ds.ann_mask(a), mask == a["instance_id"])
    coco = COCO(str(tmp_path / "annotations.json"))
    assert len(coco.getAnnIds()) == 6
    assert not list(tmp_path.rglob("*.tmp"))


def test_rle_helpers_agree_with_pycocotools() -> None:
    rng = np.random.default_rng(3)
    m = rng.random((9, 7)) > 0.6
    rle = mask_to_rle(m)
    assert isinstance(rle["counts"], str)
    assert np.array_equal(rle_to_mask(rle), m)
    r = dict(rle, counts=rle["counts"].encode())
    assert mask_utils.area(r) == m.sum()
    x, y, w, h = mask_utils.toBbox(r)
    assert mask_bbox(m) == [x, y, w, h]
    assert mask_bbox(np.zeros((3, 3), bool)) is None


def test_image_folders(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(2):
        Image.new("RGB", (5, 4), (i, 0, 0)).save(flat / f"{i}.png")
    ds = Dataset.open(flat)
    assert len(ds) == 2 and not ds.has_image_labels and ds.domain == "real"
    assert ds.load_image(0).shape == (4, 5, 3)
    classes = tmp_path / "classes"
    for name in ("dog", "cat"):
        (classes / name).mkdir(parents=True)
        Image.new("RGB", (5, 4)).save(classes / name / "x.jpg")
    ds = Dataset.open(classes)
    assert ds.class_names == ["cat", "dog"]
    assert sorted(ds.label(i) for i in range(2)) == [1, 2]


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        Dataset.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        Dataset.open(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    ds = Dataset.open(bad)
    with pytest.raises(DatasetError, match="x.png: unreadable image"):
        ds.load_image(0)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "annotations.json").write_text("{not json")
    with pytest.raises(DatasetError, match="annotations.json: not valid JSON"):
        Dataset.open(broken)
    (broken / "annotations.json").write_text('{"images": [], "categories": []}')
    with pytest.raises(DatasetError, match="'annotations' missing"):
        Dataset.open(broken)
