"""Fisheye labels away from the optical axis and at the edge of the image circle: masks against the
closed-form image of a sphere, amodal boxes against densely sampled edges and against the mask."""

from __future__ import annotations

import numpy as np
import pytest

from simreal.render.annotate import amodal_extent, annotate
from simreal.render.backends.mitsuba import MitsubaBackend
from simreal.render.camera import Camera, look_at
from simreal.render.primitives import primitive
from simreal.render.scene import Instance, Material, SceneData


@pytest.fixture(scope="module")
def backend() -> MitsubaBackend:
    return MitsubaBackend("scalar_rgb")


def _camera(fov: float, width: int, height: int) -> Camera:
    # at the origin looking down -Z, world +Y up: camera frame (x, y, z) = (-X, Y, -Z) in world terms
    return Camera(look_at(np.zeros(3), np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0])), width, height,
                  "fisheye", fov)


def _pixel_directions(fov: float, width: int, height: int) -> np.ndarray:
    """Camera-frame unit rays of the pixel centres, written out from the equidistant model
    r = f * theta with f = (width / 2) / (fov / 2) and +x to the image's left, +y up."""
    f = (width / 2) / np.radians(fov / 2)
    v, u = np.mgrid[0:height, 0:width] + 0.5
    dx, dy = width / 2 - u, height / 2 - v
    theta, phi = np.hypot(dx, dy) / f, np.arctan2(dy, dx)
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)


def _translate(m: np.ndarray, x: float, y: float, z: float) -> np.ndarray:
    m = m.copy()
    m[:3, 3] = (x, y, z)
    return m


@pytest.mark.parametrize("fov,theta_c,phi_c,width,height", [
    (180.0, 55.0, 30.0, 160, 160),     # off-axis, well inside the circle
    (200.0, 84.0, -120.0, 200, 150),   # near the circle of a 200-degree lens, non-square image
    (180.0, 86.0, 200.0, 160, 160),    # straddling the image circle: part of it is out of view
])
def test_off_axis_sphere_mask_is_the_analytic_cone(backend: MitsubaBackend, fov: float, theta_c: float,
                                                   phi_c: float, width: int, height: int) -> None:
    radius, distance = 0.5, 3.0
    t, p = np.radians(theta_c), np.radians(phi_c)
    centre_cam = distance * np.array([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)])
    cam = _camera(fov, width, height)
    centre = cam.to_world[:3, :3] @ centre_cam + cam.origin
    sphere = primitive("sphere", radius=radius, segments=512, rings=256).transformed(_translate(np.eye(4), *centre))
    labels = backend.labels(SceneData(cam, [Instance(sphere, Material(), 1, 1)]))

    d = _pixel_directions(fov, width, height)
    angle = np.arccos(np.clip(d @ (centre_cam / distance), -1.0, 1.0))
    in_view = np.arccos(np.clip(d[..., 2], -1.0, 1.0)) <= np.radians(fov / 2)
    half_angle = np.arcsin(radius / distance)
    analytic = (angle <= half_angle) & in_view
    got = labels == 1
    assert analytic.sum() > 200
    wrong = got != analytic
    # disagreements only where the pixel centre lies within a hair of the silhouette (the mesh is
    # inscribed in the sphere: 512 segments leave < 2e-5 rad)
    f = cam.focal_px
    assert np.all(np.abs(angle[wrong] - half_angle) < 0.05 / f)
    assert wrong.sum() <= 0.02 * analytic.sum()
    assert not got[~in_view].any()
    if theta_c + np.degrees(half_angle) > fov / 2:  # the image circle cuts it
        assert (analytic & ~in_view).sum() == 0 and ((angle <= half_angle) & ~in_view).any()


def _brute_force_extent(cam: Camera, mesh, per_edge: int = 4000) -> np.ndarray:
    f = mesh.faces
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    s = np.linspace(0.0, 1.0, per_edge)[None, :, None]
    v = mesh.vertices.astype(np.float64)
    pts = (v[edges[:, 0]][:, None] * (1 - s) + v[edges[:, 1]][:, None] * s).reshape(-1, 3)
    uv, ok = cam.project(pts)
    uv = uv[ok]
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


def _cube(scale: float, x: float, y: float, z: float):
    return primitive("cube").transformed(_translate(np.diag([scale, scale, scale, 1.0]), x, y, z))


def test_fisheye_amodal_box_follows_curved_edges(backend: MitsubaBackend) -> None:
    # a unit cube off-axis under a 180-degree lens: its straight edges image as arcs that bulge
    # past their end points, so the vertices alone miss the right side of the mask
    cam = Camera(look_at(np.array([0.0, 0.0, 1.2]), np.zeros(3), np.array([0.0, 1.0, 0.0])), 180, 180,
                 "fisheye", 180.0)
    cube = _cube(1.0, 1.2, 0.0, 0.0)
    scene = SceneData(cam, [Instance(cube, Material(), 1, 1)])
    box, clipped = amodal_extent(scene, [0])
    assert box is not None and not clipped
    x0, y0, x1, y1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
    assert np.allclose([x0, y0, x1, y1], _brute_force_extent(cam, cube), atol=0.01)

    ys, xs = np.nonzero(backend.labels(scene) == 1)
    cx, cy = xs + 0.5, ys + 0.5
    # the box holds every pixel centre of the mask, and each side lies within a pixel of the mask
    assert x0 <= cx.min() and cx.max() <= x1 and y0 <= cy.min() and cy.max() <= y1
    assert cx.min() - x0 < 1 and x1 - cx.max() < 1 and cy.min() - y0 < 1 and y1 - cy.max() < 1
    verts, _ = cam.project(cube.vertices.astype(np.float64))
    assert cx.max() > verts[:, 0].max() + 1.0  # the vertex-only box (the old one) did not bound the mask


def test_fisheye_amodal_box_at_the_image_circle(backend: MitsubaBackend) -> None:
    cam = Camera(look_at(np.array([0.0, 0.0, 1.2]), np.zeros(3), np.array([0.0, 1.0, 0.0])), 180, 180,
                 "fisheye", 180.0)
    # a cube reaching past the field of view: the box stops at the image circle, where its faces cover it
    cube = _cube(1.2, 1.0, 0.3, 0.6)
    scene = SceneData(cam, [Instance(cube, Material(), 1, 1)])
    box, clipped = amodal_extent(scene, [0])
    assert box is not None and clipped
    assert np.isclose(box[0] + box[2], 180.0)  # the circle's right-most point (r = f * 90 deg = 90 px)
    labels = backend.labels(scene)
    ys, xs = np.nonzero(labels == 1)
    assert box[0] <= xs.min() + 0.5 and xs.max() + 0.5 <= box[0] + box[2]
    assert box[1] <= ys.min() + 0.5 and ys.max() + 0.5 <= box[1] + box[3]
    assert xs.max() + 0.5 > 180.0 - 1.0 and ys.min() + 0.5 - box[1] < 1.0
    # annotate marks it truncated although its box lies inside the image
    _, anns = annotate(scene, labels, {1: labels == 1}, 0.0)
    assert anns[0]["simreal"]["truncated"] and anns[0]["simreal"]["amodal_bbox"] == box

    # a backdrop across a 120-degree view: no vertex and no edge is in view, its face fills the circle
    narrow = Camera(cam.to_world, 180, 180, "fisheye", 120.0)
    wall = primitive("plane", size=12.0).transformed(_translate(np.eye(4), 0.0, 0.0, -1.0))
    scene = SceneData(narrow, [Instance(wall, Material(), 1, 1)])
    assert not narrow.project(wall.vertices.astype(np.float64))[1].any()  # the old box: None
    box, clipped = amodal_extent(scene, [0])
    assert clipped and box is not None and np.allclose(box, [0.0, 0.0, 180.0, 180.0])
    ys, xs = np.nonzero(backend.labels(scene) == 1)
    assert xs.min() + 0.5 < 1 and xs.max() + 0.5 > 179 and ys.min() + 0.5 < 1 and ys.max() + 0.5 > 179
