"""Ceiling-fisheye compositing on a hand-made scene: a person standing behind a cabinet as the camera
sees it is hidden where the cabinet is in front, the photo is untouched there and away from the
person, the floor darkens in the person's shadow, keypoints behind the cabinet are occluded, the head
point is the equidistant projection of the head and lies in the head box, and the rotation stands
the person upright in a refine crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simreal.render.people.floorplan import Calibration, FloorPlan, Furniture, furniture_hits
from simreal.render.people.placement import Placed, moved
from simreal.render.people.scene_spec import PeopleSceneConfig

pytestmark = [pytest.mark.usefixtures("anny_ready")]

RES = 192
FOCAL = 80.0
HEIGHT = 3.0
CABINET = np.array([[1.0, -0.5], [1.6, -0.5], [1.6, 0.5], [1.0, 0.5]])


@pytest.fixture(scope="module")
def composed():  # noqa: ANN201 - (cfg, cam, composed, plate, asset)
    from simreal.render.people import scenes

    cfg = PeopleSceneConfig(
        resolution=(RES, RES), categories=["person", "head"], render={"spp": 2}, supersample=1.0,
        camera={"focal": FOCAL, "fov": 185.0}, people={"identities": 1, "pose_variants": 1},
        background={"rooms": {"count": 1}}, motion_blur={"probability": 0.0},
    )
    cfg_json = cfg.model_dump_json()
    calib = Calibration((RES, RES), FOCAL, (RES / 2, RES / 2), 185.0)
    site = scenes.Site("test", FloorPlan(calib, HEIGHT, [Furniture("cabinet", CABINET, 1.4)], None))
    cam = calib.camera(HEIGHT)
    plate = np.full((RES, RES, 3), 140, np.uint8)
    asset = scenes.person_asset(cfg_json, 0, "standing", 0)
    spot = Placed(2.0, 0.0, 0.0, moved(asset.template, 2.0, 0.0, 0.0))
    light = {"kind": "window", "offset": [0.0, 0.0], "direction": [0.0, float(np.cos(np.pi / 4)),
                                                                      float(np.sin(np.pi / 4))],
             "key": 2.0, "ambient": 0.4,
             "temperature": 5500.0, "shadow": 0.5, "contact": 0.0}
    params = {"people": [{"identity": 0, "pose": "standing", "variant": 0,
                          "blur": {"on": False, "length": 0.0, "angle": 0.0}}],
              "light": light, "gain": 1.0, "post": {k: None for k in ("blur", "lut", "vignette", "grain", "jpeg")}}
    out = scenes.compose_scene(cfg, site, plate, cam, params, [asset], [spot], seed=5)
    return cfg, cam, out, plate, asset


def test_furniture_hides_the_person_and_leaves_the_photo_alone(composed) -> None:  # noqa: ANN001
    _, cam, out, plate, _ = composed
    person = out.mask == 1
    dirs, valid = cam.pixel_rays()
    dist, _ = furniture_hits(cam.origin, dirs.reshape(-1, 3), [Furniture("c", CABINET, 1.4)])
    cabinet = np.isfinite(dist.reshape(RES, RES)) & valid
    assert person.sum() > 30 and cabinet.sum() > 100
    assert not (person & cabinet).any()  # the cabinet is in front wherever both are on the ray
    ann = next(a for a in out.anns if a["category_id"] == 1)
    x, y, w, h = ann["simreal"]["amodal_bbox"]
    ys, xs = np.mgrid[0:RES, 0:RES] + 0.5
    behind = cabinet & (xs >= x) & (xs <= x + w) & (ys >= y) & (ys <= y + h)
    assert behind.sum() > 20  # the person really is partly behind the cabinet
    assert np.array_equal(out.image[behind], plate[behind])  # the photo shows there, untouched
    # the legs are behind the cabinet (occluded, v = 1), the head is seen (v = 2)
    kp = np.asarray(ann["keypoints"]).reshape(17, 3)
    assert kp[15, 2] == 1 and kp[16, 2] == 1 and kp[0, 2] in (1, 2)
    assert ann["bbox"][0] >= x - 1 and ann["bbox"][2] < w  # the visible box is a part of the full one


def test_shadow_darkens_the_floor_where_the_person_blocks_the_light(composed) -> None:  # noqa: ANN001
    """Reference: a Mitsuba ray from each floor point towards the window light, against the person."""
    from scipy import ndimage

    from simreal.render.backends.mitsuba import MitsubaBackend
    from simreal.render.people.floorplan import floor_points
    from simreal.render.people.scenes import _xf
    from simreal.render.scene import Instance, Material, SceneData

    _, cam, out, plate, asset = composed
    _, floor_xy, ok = floor_points(cam)
    dirs, _ = cam.pixel_rays()
    dist, _ = furniture_hits(cam.origin, dirs.reshape(-1, 3), [Furniture("c", CABINET, 1.4)])
    near_person = ndimage.binary_dilation(out.mask > 0, iterations=2)  # its anti-aliased edge pixels too
    floor = ok & ~np.isfinite(dist.reshape(RES, RES)) & ~near_person
    be = MitsubaBackend("scalar_rgb")
    xf = _xf(2.0, 0.0, 0.0)
    scene = SceneData(cam, [Instance(p.mesh.transformed(xf), Material()) for p in asset.parts])
    ms = be._scene(scene, list(range(len(scene.instances))), False)
    u = np.array([0.0, np.cos(np.pi / 4), np.sin(np.pi / 4)])
    occluded = np.zeros(floor.shape, bool)
    for r, c in np.argwhere(floor & (np.hypot(floor_xy[..., 0] - 2.0, floor_xy[..., 1] + 1.0) < 1.6)):
        hit, _ = be.cast_rays(ms, np.r_[floor_xy[r, c], 1e-3], u[None])
        occluded[r, c] = hit[0] >= 0
    core = ndimage.binary_erosion(occluded, iterations=2) & floor
    free = floor & ~ndimage.binary_dilation(occluded, iterations=3)
    assert core.sum() > 15 and free.sum() > 1000
    lum = out.image.astype(float).mean(axis=2)
    # half the light is the key light's (shadow 0.5): linear 0.262 -> 0.131, sRGB 140 -> ~102
    assert 90 < lum[core].mean() < 112 and lum[core].max() < 125
    assert np.array_equal(out.image[free], plate[free])  # no shadow, no change (gain 1, no post effects)


def test_head_point_is_the_equidistant_projection_inside_the_head_box(composed) -> None:  # noqa: ANN001
    _, cam, out, _, _ = composed
    person = next(a for a in out.anns if a["category_id"] == 1)
    head = next(a for a in out.anns if a["category_id"] == 2)
    hx, hy, hz = person["head_position"]
    theta = np.arctan2(np.hypot(hx, hy), HEIGHT - hz)
    rho = np.hypot(hx, hy)
    u = RES / 2 + FOCAL * theta * hx / rho
    v = RES / 2 - FOCAL * theta * hy / rho
    assert person["head_point"] == pytest.approx([u, v], abs=0.01)
    bx, by, bw, bh = person["head_bbox"]
    assert bx < u < bx + bw and by < v < by + bh
    assert head["bbox"] == pytest.approx(person["head_bbox"]) and head["point"] == person["head_point"]
    # a head about 0.2 m across at about 2 m: a box of f * 0.2 / distance-ish pixels
    dist = np.linalg.norm(np.array([hx, hy, hz - HEIGHT]))
    assert 0.5 * FOCAL * 0.2 / dist < max(bw, bh) < 3.0 * FOCAL * 0.3 / dist


def test_rotation_makes_refine_crops_upright(composed) -> None:  # noqa: ANN001
    from simreal.refine.crops import ann_angle, ann_center, extract_crops, snap_centers

    _, _, out, _, _ = composed
    person = next(a for a in out.anns if a["category_id"] == 1)
    assert person["rotation"] == pytest.approx(90.0, abs=0.01)  # standing at +x: lies along image +x
    head = np.zeros((1, RES, RES), np.float32)
    bx, by, bw, bh = (int(round(v)) for v in person["head_bbox"])
    head[0, by:by + bh, bx:bx + bw] = 1.0
    ctr = snap_centers(torch.tensor([ann_center(person)], dtype=torch.float32), 48)
    crop = extract_crops(torch.from_numpy(head), ctr, torch.tensor([ann_angle(person)]), 48)[0, 0]
    assert crop[:20].sum() > 0 and crop[28:].sum() == 0  # the head is at the top of the upright crop
