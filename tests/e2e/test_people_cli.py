"""People datasets end to end: the CLI renders a tiny re-id set, the bytes do not depend on the
worker count or the executor (local pool, Ray), Market-1501 export reads back with the same identities
and cameras, bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from simreal.cli.main import main

from .render_helpers import folder_digest, simreal

pytestmark = [pytest.mark.usefixtures("anny_ready"), pytest.mark.slow]

CFG = {
    "type": "people", "name": "tiny-people", "seed": 3, "count": 2, "views": 3, "resolution": [32, 64],
    "camera": {"cameras": 2}, "render": {"spp": 1},
    "background": {"weights": {"plain": 1, "room": 1}},
    "character": {"accessories": {"probabilities": {"backpack": 0.5, "hat": 0.5}}},
}


def _write(tmp: Path, cfg: dict) -> Path:
    p = tmp / "people.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "images").iterdir())} | {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "masks").iterdir())}


def test_people_render_identical_across_workers_and_market_round_trip(tmp_path: Path, capsys) -> None:
    cfg = _write(tmp_path, CFG)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["render", "-c", str(cfg), "-o", str(a), "-w", "1", "-q"]) == 0
    assert main(["render", "-c", str(cfg), "-o", str(b), "-w", "2", "-q"]) == 0
    fa, fb = _files(a), _files(b)
    assert len(fa) == 12 and fa == fb
    da, db = (json.loads((d / "annotations.json").read_text()) for d in (a, b))
    assert da["images"] == db["images"] and da["annotations"] == db["annotations"]
    assert da["categories"][0]["name"] == "person" and len(da["categories"][0]["keypoints"]) == 17
    ids = {(im["person_id"], im["camera_id"], im["view"]) for im in da["images"]}
    assert {i[0] for i in ids} == {1, 2} and {i[1] for i in ids} == {1, 2}
    for im, ann in zip(da["images"], da["annotations"], strict=True):
        assert im["identity"] == im["person_id"] and ann["image_id"] == im["id"]
        kp = np.asarray(ann["keypoints"]).reshape(17, 3)
        assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum()) >= 10  # a framed crop shows most joints
        hx, hy, hw, hh = ann["head_bbox"]
        px, py = ann["head_point"]
        assert hx <= px <= hx + hw and hy <= py <= hy + hh  # head point inside the head box
        bx, by, bw, bh = ann["bbox"]
        assert hy >= by - 1 and hy + hh <= by + bh + 2  # the head box sits inside the person box
    # resume: a second run renders nothing and changes nothing
    assert main(["render", "-c", str(cfg), "-o", str(a), "-w", "1", "-q"]) == 0
    assert _files(a) == fa
    # Market-1501 export reads back as a re-id dataset with the same identities and cameras
    m = tmp_path / "market"
    assert main(["people", "market", str(a), str(m)]) == 0
    from simreal.datasets.contract import open_dataset
    from simreal.datasets.reid_layouts import MARKET_NAME

    ds = open_dataset(m)
    assert ds.info["kind"] == "market1501" and len(ds) == 6
    got = sorted((r["identity"], r["camera"]) for r in ds.images)
    assert got == sorted((im["identity"], im["camera"]) for im in da["images"])
    assert {r["split"] for r in ds.images} == {"train", "query", "gallery"}
    assert all(MARKET_NAME.match(Path(r["file_name"]).name) for r in ds.images)
    capsys.readouterr()


def test_people_on_ray_gives_the_same_bytes(tmp_path: Path) -> None:
    """One task per character on Ray workers (a local Ray cluster): the same images, masks and
    annotations as one local worker (a seed drawn per worker or in completion order would differ)."""
    pytest.importorskip("ray")
    cfg = _write(tmp_path, dict(CFG, views=1))
    assert main(["render", "-c", str(cfg), "-o", str(tmp_path / "local"), "-w", "1", "-q"]) == 0
    simreal("render", "-c", str(cfg), "-o", str(tmp_path / "ray"), "-w", "2", "--executor", "ray", "-q",
            env={"RAY_DISABLE_USAGE_STATS": "1"})
    assert folder_digest(tmp_path / "ray") == folder_digest(tmp_path / "local")
    assert len(list((tmp_path / "ray" / "images").iterdir())) == 2


def test_people_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    bad = dict(CFG, character={"clothing": {"tops": {"toga": 1.0}}})
    assert main(["render", "-c", str(_write(tmp_path, bad)), "-o", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "character.clothing.tops" in err and "toga" in err
    assert not (tmp_path / "o").exists()
    bad = dict(CFG, poses={"dancing": 1.0})
    assert main(["render", "-c", str(_write(tmp_path, bad)), "-o", str(tmp_path / "o"), "-q"]) == 2
    assert "poses" in capsys.readouterr().err
    assert main(["render", "-c", str(_write(tmp_path, CFG)), "-o", str(tmp_path / "o"), "--crop", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--crop" in err and "PeopleConfig" in err
    assert not (tmp_path / "o").exists()


def test_people_config_through_the_api(tmp_path: Path) -> None:
    """``simreal.render`` takes a people dict (type: people) as it takes a scene config."""
    import simreal

    s = simreal.render(dict(CFG, count=1, views=1), tmp_path / "api", workers=1, progress=False)
    assert s.images == 1 and s.annotations == 1
    info = json.loads((tmp_path / "api" / "annotations.json").read_text())
    assert info["images"][0]["person_id"] == 1 and info["categories"][0]["name"] == "person"
