"""Objects on the ground: resting, leaning against and standing on supports; cameras that match a
photo's horizon and height; per-photo perspective JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simreal.errors import AssetError
from simreal.render.build import build_scene
from simreal.render.camera import camera_from_params
from simreal.render.library import build_library
from simreal.render.perspective import crop_perspective, ground_camera, horizon_row, read_photo_meta
from simreal.render.placement import lean_direction, place, sample_placement
from simreal.render.primitives import primitive
from simreal.render.randomize import sample_params
from simreal.render.spec import SceneConfig


def _tilted_cylinder(tilt: float, axis_deg: float) -> list:
    from simreal.render.build import _affine, _rot_axis

    a = np.radians(axis_deg)
    rot = _rot_axis(np.array([np.cos(a), np.sin(a), 0.0]), tilt)
    return [primitive("cylinder", radius=0.2, height=1.0).transformed(_affine(rot, 1.0, [0.3, -0.2, 0.0]))]


@pytest.mark.parametrize("mode,tilt", [("upright", 0.0), ("lying", 90.0), ("leaning", 25.0)])
def test_resting_objects_touch_the_ground(mode: str, tilt: float) -> None:
    rng = np.random.default_rng(0)
    pl = sample_placement(rng, {mode: 1.0}, (25.0, 25.0), (0.5, 0.5))
    assert pl["mode"] == mode and pl["tilt"] == pytest.approx(tilt)
    meshes, support = place(_tilted_cylinder(pl["tilt"], 30.0), pl, 30.0, 1.0)
    assert min(float(m.vertices[:, 2].min()) for m in meshes) == pytest.approx(0.0, abs=1e-6)
    assert (support is None) == (mode != "leaning")


def test_leaning_object_touches_its_support_without_entering_it() -> None:
    axis = 70.0
    pl = sample_placement(np.random.default_rng(1), {"leaning": 1.0}, (30.0, 30.0), (0.5, 0.5))
    meshes, box = place(_tilted_cylinder(30.0, axis), pl, axis, 1.0)
    d = lean_direction(axis)
    v = np.concatenate([m.vertices for m in meshes]).astype(np.float64)
    reach = v[:, :2] @ d[:2]
    face = float((box.vertices[:, :2] @ d[:2]).min())
    assert face == pytest.approx(float(reach.max()), abs=1e-5)  # touching
    contact = v[int(np.argmax(reach)), 2]
    assert 0 < contact <= float(box.vertices[:, 2].max()) + 1e-6  # the box is tall enough to lean on
    assert float(box.vertices[:, 2].min()) == pytest.approx(0.0, abs=1e-6)
    assert (v[v[:, 2] > 0.8 * v[:, 2].max()][:, :2] @ d[:2]).mean() > (v[:, :2] @ d[:2]).mean()  # leans towards it


def test_supported_object_stands_on_the_box_inside_its_top() -> None:
    pl = sample_placement(np.random.default_rng(2), {"supported": 1.0}, (20.0, 30.0), (0.6, 0.6))
    meshes, box = place(_tilted_cylinder(pl["tilt"], 10.0), pl, 10.0, 1.5)
    v = np.concatenate([m.vertices for m in meshes]).astype(np.float64)
    b_lo, b_hi = box.vertices.min(axis=0), box.vertices.max(axis=0)
    assert b_hi[2] == pytest.approx(0.6 * 1.5) and b_lo[2] == pytest.approx(0.0, abs=1e-6)
    assert v[:, 2].min() == pytest.approx(b_hi[2], abs=1e-6)
    assert (v[:, :2].min(axis=0) >= b_lo[:2] - 1e-6).all() and (v[:, :2].max(axis=0) <= b_hi[:2] + 1e-6).all()


def test_grounded_scenes_never_go_below_the_ground() -> None:
    cfg = SceneConfig(
        objects=[{"category": "c", "asset": {"kind": "canister", "canister": {"segments": 16}}, "count": [1, 2],
                  "spread": 1.0}],
        placement={"weights": {"upright": 1, "lying": 1, "leaning": 1, "supported": 1, "floating": 1}},
        background={"weights": {"environment": 1.0}}, distractors={"count": [1, 2]},
        material={"textures": {"size": 16}})
    lib = build_library(cfg)
    modes = set()
    for i in range(12):
        params = sample_params(cfg, lib, np.random.default_rng(i))
        scene = build_scene(cfg, lib, params, 0)
        for o in params["objects"]:
            modes.add(o["placement"]["mode"])
        z = [float(inst.mesh.vertices[:, 2].min()) for inst in scene.instances]
        assert min(z) > -1e-5
        for inst in scene.instances:
            if inst.role in ("support", "distractor"):
                assert float(inst.mesh.vertices[:, 2].min()) == pytest.approx(0.0, abs=1e-5)
        cam = params["camera"]
        assert cam["origin"][2] > 0  # the camera stands above the ground
    assert modes == {"upright", "lying", "leaning", "supported", "floating"}


@pytest.mark.parametrize("horizon,height", [(0.4, None), (-0.3, None), (0.45, 6.0), (1.3, None)])
def test_ground_camera_puts_the_horizon_on_the_requested_row(horizon: float, height: float | None) -> None:
    rng = np.random.default_rng(5)
    target = np.array([0.0, 0.0, 0.5])
    p = ground_camera(rng, 96, 64, 45.0, horizon, target, (2.0, 3.0), height, rows=(0.3, 0.85))
    cam = camera_from_params({**p, "exposure": 0.0}, 96, 64)
    assert horizon_row(cam.to_world, 96, 64, 45.0) == pytest.approx(horizon, abs=1e-6)
    # a far point on the ground straight ahead lands on the horizon row too
    fwd = cam.to_world[:3, 2].copy()
    fwd[2] = 0
    far = cam.origin + 1e6 * fwd / np.linalg.norm(fwd)
    far[2] = 0.0
    uv, ok = cam.project(far[None])
    assert ok[0] and uv[0, 1] / 64 == pytest.approx(horizon, abs=1e-3)
    if height is not None:
        assert cam.origin[2] == pytest.approx(height)
    uv, ok = cam.project(target[None])
    assert ok[0] and 0 <= uv[0, 0] < 96 and 0 <= uv[0, 1] < 64  # the object is in the frame


def test_photo_perspective_json_and_crop(tmp_path: Path) -> None:
    photo = tmp_path / "street.jpg"
    photo.write_bytes(b"")
    (tmp_path / "street.json").write_text(json.dumps({"horizon": 0.4, "camera_height": 1.6, "fov": 60}))
    meta = read_photo_meta(photo)
    assert meta == {"horizon": 0.4, "camera_height": 1.6, "fov": 60.0}
    # the lower half of a 200x100 photo: horizon at 40 px is 10 px above that crop's top
    cropped = crop_perspective(meta, (50.0, 50.0, 100.0, 50.0), (200, 100))
    assert cropped["horizon"] == pytest.approx(-0.2)
    assert cropped["fov"] == pytest.approx(np.degrees(2 * np.arctan(0.5 * np.tan(np.radians(30)))))
    (tmp_path / "street.json").write_text(json.dumps({"horizon": 0.4, "height": 1.6}))
    with pytest.raises(AssetError, match=r"street.json.*unknown key.*height"):
        read_photo_meta(photo)
    (tmp_path / "street.json").write_text(json.dumps({"camera_height": -1}))
    with pytest.raises(AssetError, match="camera_height"):
        read_photo_meta(photo)
