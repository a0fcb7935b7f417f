"""`simreal render` end to end on tiny data: COCO validity, determinism, resumption, bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from simreal.datasets import Dataset
from simreal.datasets.coco import ANNOTATION_FIELDS

from .coco_tools import assert_clashes_with_no_tool
from .render_helpers import folder_digest, simreal, write_config


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("render")
    cfg = write_config(d)
    simreal("render", "--config", str(cfg), "--out", str(d / "ds"), "--workers", "1", "--quiet")
    return d / "ds"


def test_coco_round_trip_with_pycocotools(tiny_dataset: Path) -> None:
    coco = COCO(str(tiny_dataset / "annotations.json"))
    ds = Dataset.open(tiny_dataset)
    assert len(coco.getImgIds()) == 6
    assert ds.info["counts"]["images"] == 6
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"canister", "cube"}
    n_anns = 0
    for img in coco.loadImgs(coco.getImgIds()):
        assert "seed" in img and "params" in img and img["domain"] == "synthetic"
        mask = ds.load_mask(img)
        assert mask is not None and mask.shape == (img["height"], img["width"]) == (32, 40)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            n_anns += 1
            m = coco.annToMask(ann).astype(bool)
            sim = ann["simreal"]
            assert np.array_equal(m, mask == sim["instance_id"])  # the saved mask, pixel for pixel
            assert ann["area"] == m.sum()
            ys, xs = np.nonzero(m)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert 0.0 < sim["visibility"] <= 1.0
            ax, ay, aw, ah = sim["amodal_bbox"]
            # the visible box lies inside the amodal (projected geometry) box
            assert ax - 1 <= xs.min() and ay - 1 <= ys.min()
            assert xs.max() + 1 <= ax + aw + 1 and ys.max() + 1 <= ay + ah + 1
        if img["label"] == 0:
            assert img["params"]["negative"]
            assert not coco.getAnnIds(imgIds=img["id"])
    assert n_anns > 0


def test_coco_layout_clashes_with_no_tool(tiny_dataset: Path) -> None:
    doc = json.loads((tiny_dataset / "annotations.json").read_text())
    assert doc["annotations"]
    assert_clashes_with_no_tool(tiny_dataset, doc)
    for ann in doc["annotations"]:
        assert set(ann["simreal"]) == set(ANNOTATION_FIELDS)


def test_fiftyone_reads_boxes_masks_and_fields(tiny_dataset: Path) -> None:
    """FiftyOne's own COCO importer, pointed at images/ as its docs say, reads every box and mask
    exactly (optional: skipped without fiftyone)."""
    fouc = pytest.importorskip("fiftyone.utils.coco")
    coco = COCO(str(tiny_dataset / "annotations.json"))
    importer = fouc.COCODetectionDatasetImporter(
        data_path=str(tiny_dataset / "images"), labels_path=str(tiny_dataset / "annotations.json"),
        label_types="segmentations")
    n = 0
    with importer:
        for path, meta, dets in importer:
            img = next(i for i in coco.loadImgs(coco.getImgIds()) if Path(path).name == i["file_name"])
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
            got = [] if dets is None else dets.detections
            assert len(got) == len(anns)
            for det, ann in zip(got, anns, strict=True):
                x, y, w, h = (int(v) for v in ann["bbox"])
                assert np.allclose(np.multiply(det.bounding_box, [meta.width, meta.height] * 2), [x, y, w, h])
                full = coco.annToMask(ann).astype(bool)
                assert np.array_equal(det.mask.astype(bool), full[y:y + h, x:x + w])
                assert det["simreal"]["instance_id"] == ann["simreal"]["instance_id"]
                n += 1
    assert n == len(coco.getAnnIds())


def test_stats_and_preview(tiny_dataset: Path, tmp_path: Path) -> None:
    out = simreal("dataset", "stats", str(tiny_dataset)).stdout
    assert "images 6" in out and "visibility" in out
    data = json.loads(simreal("dataset", "stats", str(tiny_dataset), "--json").stdout)
    assert data["images"] == 6
    simreal("dataset", "preview", str(tiny_dataset), "-o", str(tmp_path / "grid.png"), "--n", "4")
    from PIL import Image

    assert Image.open(tmp_path / "grid.png").size == (384, 384)


def test_same_bytes_with_one_or_two_workers(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    simreal("render", "--config", str(cfg), "--out", str(tmp_path / "w2"), "--workers", "2", "--quiet")
    assert folder_digest(tmp_path / "w2") == folder_digest(tiny_dataset)


@pytest.mark.slow
def test_ray_executor_gives_the_same_bytes(tiny_dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    cfg = write_config(tmp_path)
    simreal("render", "--config", str(cfg), "--out", str(tmp_path / "ray"), "--workers", "2", "--executor", "ray",
            "--quiet", env={"RAY_DISABLE_USAGE_STATS": "1"})
    assert folder_digest(tmp_path / "ray") == folder_digest(tiny_dataset)


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path: Path) -> None:
    # 120 images: the kill must land mid-render even when a loaded machine starves this poller (with 40, a
    # render under load could finish before the poller saw 3 done)
    count = 120
    cfg = write_config(tmp_path, count=count)
    out = tmp_path / "killed"
    exe = Path(sys.executable).with_name("simreal")
    proc = subprocess.Popen([str(exe), "render", "--config", str(cfg), "--out", str(out), "--workers", "1", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if (out / "manifest.sqlite").exists():
            try:
                with sqlite3.connect(out / "manifest.sqlite", timeout=1) as con:
                    done = con.execute("SELECT COUNT(*) FROM samples WHERE status='done'").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 3:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "render finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "annotations.json").exists()  # the COCO file is only written complete
    second = simreal("render", "--config", str(cfg), "--out", str(out), "--workers", "1", "-q")
    assert "already done" in second.stdout
    rendered = int(second.stdout.split("(")[1].split(" rendered")[0])
    assert rendered < count
    assert not list(out.rglob(".*.tmp"))
    fresh = tmp_path / "fresh"
    simreal("render", "--config", str(cfg), "--out", str(fresh), "--workers", "1", "-q")
    assert folder_digest(out) == folder_digest(fresh)
    COCO(str(out / "annotations.json"))


def test_crop_mode(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, count=3, negatives=0.0)
    simreal("render", "--config", str(cfg), "--out", str(tmp_path / "crops"), "--crop", "-q", "--workers", "1")
    ds = Dataset.open(tmp_path / "crops")
    assert len(ds) >= 3
    assert_clashes_with_no_tool(tmp_path / "crops", json.loads((tmp_path / "crops" / "annotations.json").read_text()))
    for rec in ds.images:
        assert (rec["width"], rec["height"]) == (64, 64)
        assert rec["label"] in (1, 2)
        img = ds.load_image(rec)
        assert img.shape == (64, 64, 3)
        for a in ds.anns(rec):
            # the object sits in the middle of its crop
            x, y, w, h = a["bbox"]
            assert abs((x + w / 2) - 32) < 16 and abs((y + h / 2) - 32) < 16


def test_every_camera_light_and_background_kind(tmp_path: Path) -> None:
    """Fisheye and thin-lens cameras, spot/directional lights, photo environment maps, ground planes,
    textured and worn materials and a mesh file all render and annotate consistently."""
    import trimesh

    mesh_path = tmp_path / "part.stl"
    trimesh.creation.annulus(r_min=0.2, r_max=0.5, height=0.3).export(mesh_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    from PIL import Image

    Image.new("RGB", (64, 32), (200, 120, 40)).save(photos / "a.png")
    luts = tmp_path / "luts"
    luts.mkdir()
    from simreal.render.luts import identity_lut, write_cube

    write_cube(identity_lut(5), luts / "plain.cube")
    common = {
        "count": 3,
        "objects": [{"category": "part", "asset": {"kind": "mesh", "path": str(mesh_path)}}],
        "material": {"wear_probability": 1.0, "textures": {"probability": 1.0, "size": 16, "folder": str(photos)}},
        "lighting": {"environment": {"kind": "image", "folder": str(photos), "intensity": [0.5, 1.0]},
                     "lights": {"count": [2, 2], "kinds": ["spot", "directional"]}},
        "background": {"weights": {"ground": 1.0, "photo": 1.0}, "photo_folder": str(photos),
                       "photo_mode": "envmap"},
        "post": {"lut": {"p": 1.0, "names": ["plain"]}, "lut_folder": str(luts),
                 **{k: {"p": 0.0} for k in ("blur", "vignette", "grain", "jpeg")}},
    }
    for model in ("fisheye", "thinlens"):
        cam = {"model": model, "radius": [2.5, 3.0], "aperture": [0.01, 0.02]}
        cfg = write_config(tmp_path, camera=cam, **common)
        out = tmp_path / model
        simreal("render", "--config", str(cfg), "--out", str(out), "--workers", "1", "-q")
        coco = COCO(str(out / "annotations.json"))
        ds = Dataset.open(out)
        for img in coco.loadImgs(coco.getImgIds()):
            assert img["params"]["camera"]["model"] == model
            assert img["params"]["post"]["lut"]["name"] == "plain"
            mask = ds.load_mask(img)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
                assert np.array_equal(coco.annToMask(ann).astype(bool), mask == ann["simreal"]["instance_id"])
        if model == "fisheye":  # nothing outside the fisheye's image circle
            h, w = 32, 40
            yy, xx = np.mgrid[0:h, 0:w]
            outside = np.hypot(xx + 0.5 - w / 2, yy + 0.5 - h / 2) > w / 2 + 1e-6
            for rec in ds.images:
                assert not ds.load_mask(rec)[outside].any()
                assert ds.load_image(rec)[outside].max() == 0


def test_rerun_replaces_lost_files(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, count=3)
    out = tmp_path / "ds"
    simreal("render", "--config", str(cfg), "--out", str(out), "--workers", "1", "-q")
    before = folder_digest(out)
    (out / "images" / "0000001.png").unlink()
    (out / "masks" / "0000002.png").write_bytes(b"")
    again = simreal("render", "--config", str(cfg), "--out", str(out), "--workers", "1", "-q").stdout
    assert "2 rendered, 1 already done" in again
    assert folder_digest(out) == before
