"""The dataset contract: writer/reader round trip, image folders, RLE helpers, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from simreal.datasets import (
    Dataset,
    DatasetWriter,
    encode_image,
    encode_mask,
    extras,
    mask_bbox,
    mask_to_rle,
    rle_to_mask,
)
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
        name = w.write_image(f"{i}.png", encode_image(img))
        w.write_file(f"masks/{i}.png", encode_mask(mask))
        images.append({"id": i + 1, "file_name": name, "mask_file": f"masks/{i}.png",
                       "width": 16, "height": 12, "label": [1, 2, 0][i]})
        for k, cat in ((1, 1), (300, 2)):
            m = mask == k
            anns.append({"image_id": i + 1, "category_id": cat, "bbox": mask_bbox(m), "area": float(m.sum()),
                         "segmentation": mask_to_rle(m), "iscrowd": 0, "simreal": {"instance_id": k}})
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
        assert np.array_equal(ds.ann_mask(a), mask == extras(a)["instance_id"])
    coco = COCO(str(tmp_path / "annotations.json"))
    assert len(coco.getAnnIds()) == 6
    for img in coco.loadImgs(coco.getImgIds()):  # COCO convention: file_name relative to images/
        assert not img["file_name"].startswith("images/")
        assert (tmp_path / "images" / img["file_name"]).is_file()
        assert np.array_equal(ds.load_image(ds.images[img["id"] - 1]), np.asarray(Image.open(
            tmp_path / "images" / img["file_name"]).convert("RGB")))
    assert not list(tmp_path.rglob("*.tmp"))


def _write_old_layout(root: Path) -> np.ndarray:
    """A dataset as simreal wrote it before file_name became relative to images/ and its own
    annotation fields moved into ``ann["simreal"]``."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    img = np.random.default_rng(1).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    mask = np.zeros((10, 12), np.uint16)
    mask[1:4, 2:6], mask[5:9, 6:11] = 4, 9
    (root / "images" / "000.png").write_bytes(encode_image(img))
    (root / "masks" / "000.png").write_bytes(encode_mask(mask))
    anns = []
    for k, ignore in ((4, 0), (9, 1)):
        m = mask == k
        anns.append({"id": len(anns) + 1, "image_id": 1, "category_id": 1, "bbox": mask_bbox(m),
                     "area": float(m.sum()), "segmentation": mask_to_rle(m), "iscrowd": 0, "instance_id": k,
                     "amodal_bbox": mask_bbox(m), "amodal_area": float(m.sum()), "visibility": 1.0,
                     "truncated": False, "ignore": ignore})
    doc = {"images": [{"id": 1, "file_name": "images/000.png", "mask_file": "masks/000.png", "width": 12,
                       "height": 10, "label": 1}], "annotations": anns, "categories": [{"id": 1, "name": "a"}]}
    (root / "annotations.json").write_text(json.dumps(doc))
    (root / "dataset.json").write_text(json.dumps({"name": "old", "domain": "synthetic"}))
    return img


def test_old_layout_reads_and_rewrites_in_the_current_one(tmp_path: Path) -> None:
    img = _write_old_layout(tmp_path / "old")
    ds = Dataset.open(tmp_path / "old")
    assert ds.image_path(0) == tmp_path / "old" / "images" / "000.png"
    assert np.array_equal(ds.load_image(0), img)
    mask = ds.load_mask(0)
    assert [extras(a)["instance_id"] for a in ds.anns(0)] == [4, 9]
    assert [extras(a)["ignore"] for a in ds.anns(0)] == [0, 1]
    for a in ds.anns(0):
        assert set(a) == {"id", "image_id", "category_id", "bbox", "area", "segmentation", "iscrowd", "simreal"}
        assert np.array_equal(ds.ann_mask(a), mask == extras(a)["instance_id"])
    # a writer handed old-layout records (e.g. copied from such a dataset) writes the current layout
    w = DatasetWriter(tmp_path / "new", "new", "synthetic", ds.categories)
    w.write_file("images/000.png", ds.image_path(0).read_bytes())
    old_doc = json.loads((tmp_path / "old" / "annotations.json").read_text())
    w.finalize(old_doc["images"], old_doc["annotations"])
    doc = json.loads((tmp_path / "new" / "annotations.json").read_text())
    assert doc["images"][0]["file_name"] == "000.png"
    assert [a["simreal"]["instance_id"] for a in doc["annotations"]] == [4, 9]
    assert not {"instance_id", "ignore", "visibility"} & set(doc["annotations"][1])
    assert np.array_equal(Dataset.open(tmp_path / "new").load_image(0), img)


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
