"""Ceiling-fisheye people scenes end to end: the CLI renders a tiny set in a procedural room (same bytes
with 1 and 2 workers, resumable), footprints never overlap each other or the furniture, head points lie
in head boxes; procedural rooms exported as photos + furniture JSON render like real photos; a JSON
that does not match its photo and more people than fit are one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
import yaml

from simreal.cli.main import main

pytestmark = [pytest.mark.usefixtures("anny_ready"), pytest.mark.slow]

CFG = {
    "type": "people_scene", "name": "tiny-scenes", "seed": 2, "count": 3, "resolution": [96, 96],
    "render": {"spp": 1}, "supersample": 1.0, "camera": {"height": [2.8, 3.0]},
    "background": {"rooms": {"count": 1, "spp": 1, "desks": [3, 3], "width": [6, 7], "depth": [6, 7]}},
    "people": {"standing": [1, 2], "sitting": [1, 1], "identities": 2, "pose_variants": 1},
    "motion_blur": {"probability": 0.5},
}


def _write(tmp: Path, cfg: dict, name: str = "scene.yaml") -> Path:
    p = tmp / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for sub in ("images", "masks")
            for p in sorted((root / sub).iterdir())}


def test_scene_render_identical_across_workers_collision_free(tmp_path: Path, capsys) -> None:
    from simreal.render.api import load_render_config
    from simreal.render.people.scenes import parse_config

    cfg_path = _write(tmp_path, CFG)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["render", "-c", str(cfg_path), "-o", str(a), "-w", "1", "-q"]) == 0
    assert main(["render", "-c", str(cfg_path), "-o", str(b), "-w", "2", "-q"]) == 0
    fa = _files(a)
    assert len(fa) == 6 and fa == _files(b)
    da, db = (json.loads((d / "annotations.json").read_text()) for d in (a, b))
    assert da["images"] == db["images"] and da["annotations"] == db["annotations"]
    assert [c["name"] for c in da["categories"]] == ["person", "head"]
    _, sites = parse_config(load_render_config(cfg_path).model_dump_json())
    furniture = [shapely.Polygon(f.polygon) for f in sites[0].plan.furniture]
    assert len(furniture) == 3
    n_people = 0
    for im in da["images"]:
        placed = im["params"]["placed"]
        n_people += len(placed)
        assert im["camera"]["model"] == "fisheye" and 2.8 <= im["camera"]["height"] <= 3.0
        fps = [shapely.Polygon(p["footprint"]) for p in placed]
        for i, f in enumerate(fps):  # collision-free: clearance 0.05 m to furniture and to each other
            assert all(f.distance(g) >= 0.05 - 1e-6 for g in furniture)
            assert all(f.distance(g) >= 0.05 - 1e-6 for g in fps[i + 1:])
        anns = [x for x in da["annotations"] if x["image_id"] == im["id"]]
        people = [x for x in anns if x["category_id"] == 1]
        heads = [x for x in anns if x["category_id"] == 2]
        assert {p["simreal"]["instance_id"] for p in people} <= set(range(1, len(placed) + 1))
        for p in people:
            hx, hy, hw, hh = p["head_bbox"]
            px, py = p["head_point"]
            assert hx <= px <= hx + hw and hy <= py <= hy + hh
            assert len(p["keypoints"]) == 51 and p["person_id"] in (1, 2)
        for h in heads:
            owner = next(p for p in people if p["simreal"]["instance_id"] == h["simreal"]["instance_id"])
            assert h["point"] == owner["head_point"]
            x, y, w, hgt = h["bbox"]
            assert x >= 0 and y >= 0 and x + w <= 96 and y + hgt <= 96
    assert n_people >= 6 and any(p["pose"] == "sitting" for p in da["annotations"] if "pose" in p)
    # resume renders nothing and changes nothing
    assert main(["render", "-c", str(cfg_path), "-o", str(a), "-w", "1", "-q"]) == 0
    assert _files(a) == fa
    capsys.readouterr()


def test_photos_with_furniture_json_and_bad_input(tmp_path: Path, capsys) -> None:
    cfg_path = _write(tmp_path, CFG)
    photos = tmp_path / "photos"
    assert main(["people", "rooms", str(photos), "-c", str(cfg_path), "-n", "1", "-q"]) == 0
    meta = json.loads((photos / "room_0000.json").read_text())
    assert meta["size"] == [96, 96] and len(meta["furniture"]) == 3
    photo_cfg = dict(CFG, count=2, background={"photo_folder": str(photos), "require_json": True})
    out = tmp_path / "on_photos"
    assert main(["render", "-c", str(_write(tmp_path, photo_cfg, "p.yaml")), "-o", str(out), "-w", "1", "-q"]) == 0
    data = json.loads((out / "annotations.json").read_text())
    assert len(data["images"]) == 2 and data["annotations"]
    assert all(im["camera"]["height"] == meta["camera"]["height"] and im["background"] == "room_0000.png"
               for im in data["images"])
    capsys.readouterr()
    # a furniture JSON that does not match its photo: one line naming the file, nothing written
    (photos / "room_0000.json").write_text(json.dumps(dict(meta, size=[128, 96])))
    bad_out = tmp_path / "bad"
    assert main(["render", "-c", str(_write(tmp_path, photo_cfg, "p.yaml")), "-o", str(bad_out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "room_0000.json" in err and "does not match its photo" in err
    assert not bad_out.exists()
    # more people than fit: one line with the count that could be placed
    crowd = dict(CFG, people=dict(CFG["people"], standing=[150, 150]))
    assert main(["render", "-c", str(_write(tmp_path, crowd, "c.yaml")), "-o", str(bad_out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "of 151 people" in err and "fit without collisions" in err
    assert not bad_out.exists()
