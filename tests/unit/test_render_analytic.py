"""Analytic scenes: rendered labels agree with closed-form projections."""

from __future__ import annotations

import numpy as np
import pytest

from simreal.render.annotate import amodal_box, annotate
from simreal.render.backends.mitsuba import MitsubaBackend
from simreal.render.camera import Camera, look_at
from simreal.render.primitives import primitive
from simreal.render.scene import Instance, Material, SceneData


@pytest.fixture(scope="module")
def backend() -> MitsubaBackend:
    return MitsubaBackend("scalar_rgb")


@pytest.mark.parametrize("model,fov", [("pinhole", 40.0), ("fisheye", 60.0), ("fisheye", 200.0)])
def test_sphere_mask_area_equals_projected_disk(backend: MitsubaBackend, model: str, fov: float) -> None:
    radius, distance, res = 0.5, 3.0, 160 if fov < 100 else 480
    sphere = primitive("sphere", radius=radius, segments=256, rings=128)
    cam = Camera(look_at(np.array([0.0, 0.0, distance]), np.zeros(3), np.array([0.0, 1.0, 0.0])), res, res, model, fov)
    labels = backend.labels(SceneData(cam, [Instance(sphere, Material(), 1, 1)]))
    half_angle = np.arcsin(radius / distance)
    r_px = cam.focal_px * (np.tan(half_angle) if model == "pinhole" else half_angle)
    area = (labels == 1).sum()
    assert abs(area / (np.pi * r_px**2) - 1.0) < 0.01
    ys, xs = np.nonzero(labels == 1)
    assert abs(xs.mean() + 0.5 - res / 2) < 0.5 and abs(ys.mean() + 0.5 - res / 2) < 0.5


def test_box_projected_corners_bound_the_mask(backend: MitsubaBackend) -> None:
    cube = primitive("cube").transformed(np.diag([0.6, 0.4, 0.5, 1.0]) @ _translate(0.7, 0.2, 0.1))
    cam = Camera(look_at(np.array([2.0, -3.0, 2.5]), np.zeros(3), np.array([0.0, 0.0, 1.0]), 12.0), 120, 90,
                 "pinhole", 45.0)
    scene = SceneData(cam, [Instance(cube, Material(), 1, 1)])
    labels = backend.labels(scene)
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    corners = corners @ np.diag([0.6, 0.4, 0.5]) + np.array([0.7, 0.2, 0.1]) * np.array([0.6, 0.4, 0.5])
    uv, ok = cam.project(corners)
    assert ok.all()
    ys, xs = np.nonzero(labels == 1)
    # the mask's extreme pixel centres lie within half a pixel inside the projected hull's extent
    assert xs.min() + 0.5 >= uv[:, 0].min() - 1e-6 and xs.min() + 0.5 <= uv[:, 0].min() + 1.0
    assert xs.max() + 0.5 <= uv[:, 0].max() + 1e-6 and xs.max() + 0.5 >= uv[:, 0].max() - 1.0
    assert ys.min() + 0.5 >= uv[:, 1].min() - 1e-6 and ys.min() + 0.5 <= uv[:, 1].min() + 1.0
    assert ys.max() + 0.5 <= uv[:, 1].max() + 1e-6 and ys.max() + 0.5 >= uv[:, 1].max() - 1.0
    box = amodal_box(scene, [0])
    assert box is not None
    assert np.allclose(box, [uv[:, 0].min(), uv[:, 1].min(), np.ptp(uv[:, 0]), np.ptp(uv[:, 1])])


def _translate(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def test_occluder_halves_visibility_and_rgb_matches_labels(backend: MitsubaBackend) -> None:
    target = primitive("cube")
    # an occluder covering the left half of the target as seen from the camera (image left = world -x)
    occ = primitive("cube").transformed(np.diag([0.5, 2.0, 0.1, 1.0]) @ _translate(-0.5, 0.0, 8.0))
    cam = Camera(look_at(np.array([0.0, 0.0, 4.0]), np.zeros(3), np.array([0.0, 1.0, 0.0])), 64, 64, "pinhole", 40.0)
    scene = SceneData(cam, [Instance(target, Material(), 1, 1), Instance(occ, Material(), 0, 0, "distractor")],
                      env_rgb=(1.0, 1.0, 1.0), hide_environment=True, spp=4)
    rgba, labels = backend.render_with_labels(scene)
    amodal = {1: backend.labels(scene, only=[0]) > 0}
    mask, anns = annotate(scene, labels, amodal, min_visibility=0.6)
    assert len(anns) == 1
    a = anns[0]
    assert 0.45 < a["simreal"]["visibility"] < 0.55
    assert a["simreal"]["ignore"] == 1  # below min_visibility 0.6
    assert a["area"] == (mask == 1).sum()
    xs = np.nonzero(mask == 1)[1]
    assert xs.min() >= 31  # only the right half stays visible
    # alpha is 1 on geometry and 0 on the hidden environment, away from edges
    assert rgba[32, 40, 3] > 0.99 and rgba[2, 2, 3] < 0.01


def test_see_through_amodal_equals_the_object_rendered_alone(backend: MitsubaBackend) -> None:
    from simreal.render.sample import amodal_mask

    target = primitive("sphere", radius=0.6, segments=48, rings=24)
    occ1 = primitive("cube").transformed(np.diag([0.4, 0.4, 0.4, 1.0]) @ _translate(-0.6, 0.2, 4.0))
    occ2 = primitive("cube").transformed(np.diag([0.3, 0.3, 0.3, 1.0]) @ _translate(0.8, -0.5, 6.0))
    cam = Camera(look_at(np.array([0.2, 0.1, 4.0]), np.zeros(3), np.array([0.0, 1.0, 0.0])), 80, 60, "pinhole", 40.0)
    scene = SceneData(cam, [Instance(target, Material(), 1, 1), Instance(occ1, Material(), 0, 0, "distractor"),
                            Instance(occ2, Material(), 0, 0, "distractor")], spp=1)
    _, labels = backend.render_with_labels(scene)
    pixel_label = np.array([0, 1, 0, 0])[labels]
    visible = pixel_label == 1
    alone = backend.labels(scene, only=[0]) > 0
    amodal = amodal_mask(backend, scene, labels, pixel_label, [0], 1)
    assert visible.sum() < 0.9 * alone.sum()  # the occluders do hide part of it
    assert np.array_equal(amodal, alone)
