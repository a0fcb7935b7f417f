"""Image-based lighting: radiance of analytic scenes under environment maps, the map's orientation,
HDR discovery and loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simreal.errors import AssetError
from simreal.render.backends.mitsuba import MitsubaBackend
from simreal.render.camera import Camera, look_at
from simreal.render.lighting import (
    env_mean_radiance,
    env_radiance,
    env_to_world,
    hdr_files,
    load_hdr,
    resolve_hdri_folder,
    upward_irradiance,
    white_balance_gains,
    write_hdr,
)
from simreal.render.primitives import primitive
from simreal.render.scene import Instance, Material, SceneData


@pytest.fixture(scope="module")
def backend() -> MitsubaBackend:
    return MitsubaBackend("scalar_rgb")


def _sphere_scene(env: np.ndarray, rotation: float, cam_pos: np.ndarray, res: int, spp: int,
                  albedo: float = 0.8) -> SceneData:
    sphere = Instance(primitive("sphere", radius=0.5, segments=96, rings=48),
                      Material((albedo,) * 3, None, 1.0, 0.0, model="diffuse"), 1, 1)
    cam = Camera(look_at(cam_pos, np.zeros(3), np.array([0.0, 1.0, 0.0]) if abs(cam_pos[2]) > 0 else
                         np.array([0.0, 0.0, 1.0])), res, res, "pinhole", 30.0)
    return SceneData(cam, [sphere], env_rgb=None, env_image=env.astype(np.float32), env_scale=1.0,
                     env_to_world=env_to_world(rotation), hide_environment=True, spp=spp, max_depth=2,
                     pixel_filter="box", seed=3)


def test_white_diffuse_sphere_under_constant_environment_has_albedo_times_radiance(backend: MitsubaBackend) -> None:
    radiance = np.array([0.5, 0.7, 0.9], np.float32)
    env = np.broadcast_to(radiance, (32, 64, 3)).copy()
    scene = _sphere_scene(env, rotation=37.0, cam_pos=np.array([0.3, -2.5, 1.0]), res=40, spp=64)
    rgba = backend.render(scene)
    inside = rgba[..., 3] > 0.999
    assert inside.sum() > 300
    # a convex diffuse object sees only the environment: one bounce gives albedo x radiance everywhere
    mean = rgba[inside][:, :3].mean(axis=0)
    assert np.allclose(mean, 0.8 * radiance, rtol=0.01)
    assert np.abs(rgba[inside][:, :3] / (0.8 * radiance) - 1).max() < 0.15
    assert np.allclose(upward_irradiance(env, env_to_world(37.0)), np.pi * radiance, rtol=0.01)
    assert np.allclose(env_mean_radiance(env), radiance, rtol=1e-6)


def _sun_map(elevation_deg: float, azimuth_local_deg: float, h: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A black map with one bright disc; returns the map and the disc's direction in the map frame."""
    w = 2 * h
    theta = np.arange(h)[:, None] / (h - 1) * np.pi
    phi = (np.arange(w)[None, :] + 0.5) / w * 2 * np.pi
    local = np.stack([np.sin(theta) * np.sin(phi), np.broadcast_to(np.cos(theta), (h, w)),
                      -np.sin(theta) * np.cos(phi)], -1)
    el, az = np.radians(elevation_deg), np.radians(azimuth_local_deg)
    sun = np.array([np.cos(el) * np.sin(az), np.sin(el), -np.cos(el) * np.cos(az)])
    disc = local @ sun > np.cos(np.radians(8.0))
    env = np.full((h, w, 3), 0.01, np.float32)
    env[disc] = 50.0
    return env, sun


@pytest.mark.parametrize("rotation", [0.0, 90.0, 215.0])
def test_rotating_the_map_rotates_the_lighting(backend: MitsubaBackend, rotation: float) -> None:
    env, sun_local = _sun_map(35.0, 20.0)
    scene = _sphere_scene(env, rotation, np.array([0.0, 0.0, 3.0]), res=48, spp=16)
    rgba = backend.render(scene)
    lum = rgba[..., :3] @ np.array([0.2126, 0.7152, 0.0722])
    ys, xs = np.nonzero(rgba[..., 3] > 0.5)
    w = lum[ys, xs]
    bright = np.array([np.average(xs + 0.5, weights=w), np.average(ys + 0.5, weights=w)]) - 24.0
    sun_world = env_to_world(rotation) @ sun_local
    expected, _ = scene.camera.project((sun_world * 0.5)[None])  # the sphere point facing the sun
    want = expected[0] - 24.0
    angle = np.degrees(np.arctan2(bright[1], bright[0]) - np.arctan2(want[1], want[0]))
    assert abs((angle + 180) % 360 - 180) < 12.0, (bright, want)


def test_numpy_lookup_matches_mitsuba_envmap(backend: MitsubaBackend) -> None:
    rng = np.random.default_rng(0)
    env = (rng.random((16, 32, 3)) ** 3 * 4).astype(np.float32)
    mi = backend.mi
    for rotation, target in ((0.0, [1.0, 0.3, 0.2]), (123.0, [-0.2, -1.0, -0.6]), (300.0, [0.1, 0.2, 1.0])):
        cam = Camera(look_at(np.zeros(3), np.array(target), np.array([0.0, 0.0, 1.0])), 24, 16, fov=70)
        m4 = np.eye(4)
        m4[:3, :3] = env_to_world(rotation)
        scene = mi.load_dict({"type": "scene", "sensor": backend._sensor(cam, True, 1),
                              "integrator": {"type": "path", "max_depth": 1},
                              "env": {"type": "envmap", "bitmap": mi.Bitmap(env),
                                      "to_world": mi.ScalarTransform4f(m4.tolist())}})
        rendered = np.array(mi.render(scene))
        dirs, _ = cam.pixel_rays()
        assert np.allclose(env_radiance(env, dirs, env_to_world(rotation)), rendered, rtol=1e-4, atol=1e-5)


def test_white_balance_keeps_luminance_and_tints() -> None:
    luma = np.array([0.2126, 0.7152, 0.0722])
    for k in (3000.0, 6500.0, 9000.0):
        assert abs(white_balance_gains(k) @ luma - 1.0) < 1e-5
    assert np.allclose(white_balance_gains(6500.0), 1.0, atol=1e-6)
    warm, cool = white_balance_gains(3500.0), white_balance_gains(9000.0)
    assert warm[0] > 1 > warm[2] and cool[2] > 1 > cool[0]


def _write_map(path: Path, arr: np.ndarray) -> None:
    write_hdr(path, arr)


def test_hdr_folders_load_exr_and_hdr_and_reject_bad_maps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = np.random.default_rng(1).random((8, 16, 3)).astype(np.float32) * 100
    _write_map(tmp_path / "a.exr", good)
    _write_map(tmp_path / "b.hdr", good)
    files = hdr_files(str(tmp_path))
    assert [f.name for f in files] == ["a.exr", "b.hdr"]
    assert np.allclose(load_hdr(str(tmp_path / "a.exr")), good, rtol=1e-6)
    # RGBE: 8-bit mantissas sharing the pixel's largest exponent
    assert (np.abs(load_hdr(str(tmp_path / "b.hdr")) - good) <= good.max(-1, keepdims=True) / 128).all()
    monkeypatch.setenv("SIMREAL_HDRI_DIR", str(tmp_path))
    assert resolve_hdri_folder("builtin:hdri") == tmp_path
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssetError, match="blender-data"):
        hdr_files(str(tmp_path / "empty"), "lighting.environment.folder")
    bad = tmp_path / "square"
    bad.mkdir()
    _write_map(bad / "sq.exr", good[:, :8])
    with pytest.raises(AssetError, match="equirectangular"):
        hdr_files(str(bad))
    (bad / "sq.exr").unlink()
    (bad / "broken.exr").write_bytes(b"not an exr")
    with pytest.raises(AssetError, match="broken.exr"):
        hdr_files(str(bad))


def test_builtin_hdri_says_what_to_install_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import simreal.render.lighting as lighting

    monkeypatch.delenv("SIMREAL_HDRI_DIR", raising=False)
    monkeypatch.setattr(lighting, "HDRI_SEARCH_PATHS", ("/nonexistent/simreal-test/world",))
    with pytest.raises(AssetError, match=r"apt-get install -y blender-data"):
        lighting.resolve_hdri_folder("builtin:hdri")
