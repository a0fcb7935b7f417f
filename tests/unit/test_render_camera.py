"""Camera sampling (uniform by area) and projection agree with analytic answers."""

from __future__ import annotations

import numpy as np
from scipy import stats

from simreal.render.camera import Camera, look_at, sample_on_sphere_segment


def test_sphere_segment_uniform_by_area_in_cos_theta() -> None:
    rng = np.random.default_rng(1)
    t1, t2 = 20.0, 80.0
    v = sample_on_sphere_segment(rng, (t1, t2), (0.0, 360.0), n=20000)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)
    theta = np.degrees(np.arccos(v[:, 2]))
    assert theta.min() >= t1 - 1e-9 and theta.max() <= t2 + 1e-9
    lo, hi = np.cos(np.radians(t2)), np.cos(np.radians(t1))
    # Archimedes: cos(theta) is uniform on [cos t2, cos t1]
    ks = stats.kstest(v[:, 2], stats.uniform(loc=lo, scale=hi - lo).cdf)
    assert ks.pvalue > 0.01
    # and theta itself is NOT uniform (the naive sampler would pass this)
    ks_theta = stats.kstest(theta, stats.uniform(loc=t1, scale=t2 - t1).cdf)
    assert ks_theta.pvalue < 1e-6
    phi = np.arctan2(v[:, 1], v[:, 0]) % (2 * np.pi)
    assert stats.kstest(phi, stats.uniform(loc=0, scale=2 * np.pi).cdf).pvalue > 0.01


def test_look_at_frame_is_orthonormal_and_points_at_target() -> None:
    m = look_at(np.array([1.0, 2.0, 3.0]), np.zeros(3), np.array([0.0, 0.0, 1.0]), roll_deg=25.0)
    r = m[:3, :3]
    assert np.allclose(r.T @ r, np.eye(3), atol=1e-12)
    d = -np.array([1.0, 2.0, 3.0]) / np.linalg.norm([1.0, 2.0, 3.0])
    assert np.allclose(r[:, 2], d)


def test_pinhole_projection_of_known_points() -> None:
    cam = Camera(look_at(np.array([0.0, 0.0, 5.0]), np.zeros(3), np.array([0.0, 1.0, 0.0])), 100, 80, "pinhole", 60.0)
    f = 50.0 / np.tan(np.radians(30.0))
    uv, ok = cam.project(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 10.0]]))
    assert np.allclose(uv[0], [50.0, 40.0])
    assert np.allclose(uv[1], [50.0 + f / 5.0, 40.0])  # world +x is image right for this camera
    assert np.allclose(uv[2], [50.0, 40.0 - f / 5.0])  # world +y (up) is image top
    assert ok[:3].all() and not ok[3]


def test_pixel_rays_reproject_to_pixel_centres() -> None:
    for model, fov, calib in (("pinhole", 50.0, {}), ("fisheye", 170.0, {}),
                              ("fisheye", 200.0, {"focal": 7.5, "center": (10.3, 9.1)})):
        cam = Camera(look_at(np.array([0.3, -2.0, 1.0]), np.zeros(3), np.array([0.0, 0.0, 1.0]), 7.0), 24, 16,
                     model, fov, **calib)
        d, valid = cam.pixel_rays()
        pts = cam.origin + 3.0 * d[valid]
        uv, ok = cam.project(pts)
        rows, cols = np.nonzero(valid)
        assert ok.all()
        assert np.allclose(uv, np.stack([cols + 0.5, rows + 0.5], 1), atol=1e-6)
