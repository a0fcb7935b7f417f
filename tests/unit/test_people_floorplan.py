"""Floor plans of ceiling-fisheye scenes: back-projection, exact furniture ray casts (against Mitsuba),
furniture JSON checks, collision-free placement, floor shadows and motion-blur kernels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from simreal.errors import AssetError
from simreal.render.people import composite as comp
from simreal.render.people.floorplan import (
    Calibration,
    Furniture,
    backproject,
    default_calibration,
    furniture_hits,
    read_floor_plan,
    visible_region,
)
from simreal.render.people.placement import PlacementError, place_people

CALIB = Calibration((160, 120), 55.0, (83.5, 58.0), 190.0)


def test_backproject_inverts_the_equidistant_projection() -> None:
    cam = CALIB.camera(2.8)
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-4, 4, (200, 2)), np.zeros(200)]
    uv, ok = cam.project(pts)
    back, ok2 = backproject(cam, uv)
    assert ok.all() and ok2.all()
    assert np.allclose(back, pts[:, :2], atol=1e-6)
    # r = f * theta about the calibrated centre, image up = +y
    theta = np.arctan2(np.hypot(pts[:, 0], pts[:, 1]), 2.8)
    rho = np.hypot(pts[:, 0], pts[:, 1])
    expect = np.c_[83.5 + 55.0 * theta * pts[:, 0] / rho, 58.0 - 55.0 * theta * pts[:, 1] / rho]
    assert np.allclose(uv, expect, atol=1e-6)


def test_visible_region_reaches_the_image_border_or_the_angle_limit() -> None:
    cam = CALIB.camera(3.0)
    poly = visible_region(cam, 70.0)
    uv, ok = cam.project(np.c_[poly, np.zeros(len(poly))])
    assert ok.all()
    r = np.hypot(uv[:, 0] - 83.5, uv[:, 1] - 58.0)
    on_border = (np.minimum.reduce([uv[:, 0], 160 - uv[:, 0], uv[:, 1], 120 - uv[:, 1]]) < 0.01)
    on_circle = np.isclose(r, 55.0 * np.deg2rad(70.0), atol=1e-6)
    assert (on_border | on_circle).all() and on_circle.any() and on_border.any()


def _box_mesh(poly: np.ndarray, height: float):  # noqa: ANN202 - a Mesh
    from simreal.render.people.room import _box

    return _box(poly, height)


def test_furniture_hits_agree_with_mitsuba() -> None:
    """Ray casts against extruded polygons (a rotated desk and an L of two boxes, so the union is not
    convex) equal Mitsuba's first hits on the same boxes."""
    from simreal.render.backends.mitsuba import MitsubaBackend
    from simreal.render.people.room import _rect
    from simreal.render.scene import Instance, Material, SceneData

    desk = _rect(1.2, -0.4, 1.4, 0.7, 30.0)
    a, b = _rect(-1.5, 1.0, 1.2, 0.5, 0.0), _rect(-1.85, 1.6, 0.5, 0.7, 0.0)
    ell = np.asarray(shapely.Polygon(a).union(shapely.Polygon(b)).exterior.coords)[:-1]
    furniture = [Furniture("desk", desk, 0.75), Furniture("L", ell, 1.2)]
    cam = CALIB.camera(2.9)
    rng = np.random.default_rng(1)
    lo = np.minimum(desk.min(axis=0), ell.min(axis=0)) - 0.3
    hi = np.maximum(desk.max(axis=0), ell.max(axis=0)) + 0.3
    targets = np.c_[np.r_[rng.uniform(-3, 3, (200, 2)), rng.uniform(lo, hi, (300, 2))], rng.uniform(0, 1.3, 500)]
    d = targets - cam.origin
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    dist, which = furniture_hits(cam.origin, d, furniture)
    be = MitsubaBackend("scalar_rgb")
    inst = [Instance(_box_mesh(desk, 0.75), Material()), Instance(_box_mesh(a, 1.2), Material()),
            Instance(_box_mesh(b, 1.2), Material())]
    scene = SceneData(cam, inst)
    ms = be._scene(scene, [0, 1, 2], False)
    idx, ref = be.cast_rays(ms, cam.origin, d)
    hit = np.isfinite(ref)
    assert hit.sum() > 60 and (~hit).sum() > 60  # both cases are exercised
    assert np.array_equal(np.isfinite(dist), hit)
    assert np.allclose(dist[hit], ref[hit], atol=2e-4)
    assert np.array_equal(which[hit], np.minimum(idx[hit], 1))  # boxes 1 and 2 form furniture 1


def _write(tmp: Path, data: dict) -> Path:
    p = tmp / "room.json"
    p.write_text(json.dumps(data))
    return p


def test_read_floor_plan_pixel_outlines_and_mismatches(tmp_path: Path) -> None:
    base = default_calibration((160, 120), 55.0, (83.5, 58.0), 190.0)
    cam = base.camera(3.1)
    desk = np.array([[0.5, -0.5], [1.7, -0.5], [1.7, 0.2], [0.5, 0.2]])
    uv, _ = cam.project(np.c_[desk, np.zeros(4)])
    good = {"image": "room.png", "size": [160, 120], "camera": {"height": 3.1},
            "furniture": [{"name": "desk", "height": 0.75, "polygon_px": uv.tolist()},
                          {"name": "shelf", "height": 1.9, "polygon": [[-2, 1], [-1, 1], [-1, 1.4], [-2, 1.4]]}]}
    plan = read_floor_plan(_write(tmp_path, good), (160, 120), base, "room.png")
    assert plan.camera_height == 3.1 and [f.name for f in plan.furniture] == ["desk", "shelf"]
    assert np.allclose(plan.furniture[0].polygon, desk, atol=1e-6)  # the outline drawn on the photo, back-projected
    bad_cases = [
        ({"size": [320, 240]}, "does not match its photo"),
        ({"image": "other.png"}, "'image' is 'other.png'"),
        ({"camera": {}}, "need 'camera.height'"),
        ({"furniture": [{"name": "x", "height": 0.7, "polygon_px": [[0, 0], [500, 0], [500, 50]]}]},
         "furniture[0].polygon_px[1]"),
        ({"furniture": [{"name": "x", "height": 3.5, "polygon": [[0, 0], [1, 0], [1, 1]]}]}, "furniture[0].height"),
        ({"furniture": [{"name": "x", "height": 1, "polygon": [[0, 0], [1, 1], [1, 0], [0, 1]]}]},
         "self-intersecting"),
        ({"chairs": []}, "unknown key"),
    ]
    for change, needle in bad_cases:
        with pytest.raises(AssetError) as err:
            read_floor_plan(_write(tmp_path, {**good, **change}), (160, 120), base, "room.png")
        assert needle in str(err.value) and "room.json" in str(err.value) and "\n" not in str(err.value)


def _disc(r: float) -> shapely.Polygon:
    return shapely.Point(0, 0).buffer(r, 16)


def test_placement_is_collision_free_and_reproducible() -> None:
    furniture = [Furniture("desk", np.array([[0.5, -0.5], [1.7, -0.5], [1.7, 0.2], [0.5, 0.2]]), 0.75),
                 Furniture("shelf", np.array([[-2.0, 1.0], [-1.0, 1.0], [-1.0, 1.4], [-2.0, 1.4]]), 1.9)]
    floor = shapely.box(-3, -3, 3, 3)
    area = shapely.box(-2.8, -2.8, 2.8, 2.8)
    templates = [shapely.box(-0.25, -0.6, 0.25, 0.25) if k < 3 else _disc(0.25) for k in range(10)]
    sitting = [k < 3 for k in range(10)]
    placed = place_people(np.random.default_rng(3), templates, sitting, area, floor, furniture, 0.1, 300, 4)
    again = place_people(np.random.default_rng(3), templates, sitting, area, floor, furniture, 0.1, 300, 4)
    assert [(p.x, p.y, p.yaw) for p in placed] == [(p.x, p.y, p.yaw) for p in again]
    fps = [p.footprint for p in placed]
    for i, f in enumerate(fps):
        assert floor.contains(f) and area.contains(shapely.Point(placed[i].x, placed[i].y))
        assert all(f.distance(shapely.Polygon(fu.polygon)) >= 0.1 - 1e-9 for fu in furniture)
        assert all(f.distance(g) >= 0.1 - 1e-9 for g in fps[i + 1:])
        # the footprint is the template moved rigidly (same area)
        assert f.area == pytest.approx(templates[i].area, rel=1e-9)


def test_placement_reports_how_many_fit() -> None:
    floor = shapely.box(-1, -1, 1, 1)
    with pytest.raises(PlacementError) as err:
        place_people(np.random.default_rng(0), [_disc(0.3)] * 12, [False] * 12, floor, floor, [], 0.05, 200, 2)
    assert 0 < err.value.placed < 12 and err.value.requested == 12
    assert f"only {err.value.placed} of 12 people fit" in str(err.value)
    # not strict: the best attempt, None for whoever did not fit (images drop them rather than fail)
    got = place_people(np.random.default_rng(0), [_disc(0.3)] * 12, [False] * 12, floor, floor, [], 0.05, 200, 2,
                       strict=False)
    assert len(got) == 12 and sum(g is not None for g in got) == err.value.placed


def test_shadow_of_a_box_under_a_vertical_light_is_its_footprint() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform([-0.2, -0.3, 0.0], [0.2, 0.3, 1.7], (30000, 3))  # a 0.4 x 0.6 x 1.7 m block
    xs, ys = np.meshgrid(np.linspace(-0.6, 0.6, 49), np.linspace(-0.6, 0.6, 49))
    floor_xy = np.stack([xs, ys], -1)
    g = comp.shadow_grid(pts, {"kind": "window", "direction": [0.0, 0.0, 1.0]}, cell=0.02)
    s = comp.key_shadow([g], floor_xy, np.ones(xs.shape, bool))
    inside = (np.abs(xs) < 0.15) & (np.abs(ys) < 0.25)
    outside = (np.abs(xs) > 0.27) | (np.abs(ys) > 0.37)
    assert s[inside].min() > 0.9 and s[outside].max() < 0.1
    # a slanted window light shifts the shadow away from the light by height / tan(elevation)
    el = np.deg2rad(45.0)
    g = comp.shadow_grid(pts, {"kind": "window", "direction": [np.cos(el), 0.0, np.sin(el)]}, cell=0.02)
    s = comp.key_shadow([g], floor_xy + np.array([-1.0, 0.0]), np.ones(xs.shape, bool))  # 1 m to -x
    assert s[inside].min() > 0.9  # the top of the block (1.7 m) casts 1.7 m away; 1 m is well inside
    # a lamp projects through its position: similar triangles
    q = comp.project_to_floor(np.array([[0.0, 0.0, 1.5]]), {"kind": "lamp", "position": [1.0, 0.0, 3.0]})
    assert np.allclose(q, [[-1.0, 0.0]])


def test_line_kernel_is_a_normalised_line() -> None:
    k = comp.line_kernel(4.0, 0.0)
    assert k.sum() == pytest.approx(1.0)
    c = (k.shape[0] - 1) // 2
    assert k[c].sum() > 0.99  # horizontal: all weight on the middle row
    k90 = comp.line_kernel(4.0, 90.0)
    assert k90[:, c].sum() > 0.99
    ys, xs = np.mgrid[0:k.shape[0], 0:k.shape[1]]
    assert (k * xs).sum() == pytest.approx(c, abs=1e-6) and (k * ys).sum() == pytest.approx(c, abs=1e-6)


def test_example_people_configs_validate() -> None:
    from simreal.render.api import load_render_config
    from simreal.render.people.scene_spec import PeopleSceneConfig
    from simreal.render.people.spec import PeopleConfig

    root = Path(__file__).resolve().parents[2] / "configs" / "render"
    assert isinstance(load_render_config(root / "people_reid.yaml"), PeopleConfig)
    scene = load_render_config(root / "people_fisheye.yaml")
    assert isinstance(scene, PeopleSceneConfig) and [c["name"] for c in scene.coco_categories()] == ["person", "head"]
    assert len(scene.coco_categories()[0]["keypoints"]) == 17
