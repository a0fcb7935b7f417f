"""Shadow catcher and film: photos stay untouched where no shadow falls, darken where the object
blocks the light by the analytic amount; auto-exposure and the tone curve."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from simreal.render import film
from simreal.render.backends.mitsuba import MitsubaBackend
from simreal.render.camera import Camera, look_at
from simreal.render.compositing import environment_upsampling, finish, shadow_ratio, shadow_window, soften
from simreal.render.primitives import primitive
from simreal.render.scene import Instance, Light, Material, SceneData

RADIUS = 0.5
SUN_ELEVATION = 40.0


@pytest.fixture(scope="module")
def backend() -> MitsubaBackend:
    return MitsubaBackend("scalar_rgb")


def _scene(env_rgb: tuple[float, float, float] | None, res: int = 64, spp: int = 16, fov: float = 50.0) -> SceneData:
    sphere = primitive("sphere", radius=RADIUS, segments=96, rings=48)
    xf = np.eye(4)
    xf[2, 3] = RADIUS  # resting on the ground z = 0
    el = np.radians(SUN_ELEVATION)
    sun_dir = np.array([np.cos(el), 0.0, np.sin(el)])
    sun = Light("directional", tuple(sun_dir * 5), (0.0, 0.0, 0.0), (3.0, 3.0, 3.0))
    cam = Camera(look_at(np.array([0.5, -4.0, 2.5]), np.array([-0.6, 0.0, 0.2]), np.array([0.0, 0.0, 1.0])),
                 res, res, "pinhole", fov)
    return SceneData(cam, [Instance(sphere.transformed(xf), Material((0.6, 0.3, 0.2)), 1, 1)], lights=[sun],
                     env_rgb=env_rgb, hide_environment=True, spp=spp, max_depth=4, pixel_filter="box", seed=9)


def _ground_points(scene: SceneData) -> tuple[np.ndarray, np.ndarray]:
    """World point where each pixel-centre ray meets z = 0, and whether it does (in front)."""
    dirs, _ = scene.camera.pixel_rays()
    o = scene.camera.origin
    t = -o[2] / np.where(dirs[..., 2] < -1e-9, dirs[..., 2], -1e-9)
    return o + t[..., None] * dirs, dirs[..., 2] < -1e-6


def _sun_blocked(points: np.ndarray, margin: float) -> np.ndarray:
    """Whether the ray from each ground point towards the sun passes within RADIUS + margin of the
    sphere's centre (margin < 0: deep inside the umbra)."""
    el = np.radians(SUN_ELEVATION)
    d = np.array([np.cos(el), 0.0, np.sin(el)])
    c = np.array([0.0, 0.0, RADIUS])
    v = c - points
    along = np.clip(v @ d, 0.0, None)
    dist = np.linalg.norm(v - along[..., None] * d, axis=-1)
    return dist < RADIUS + margin


def _photo(res: int) -> np.ndarray:
    rng = np.random.default_rng(4)
    return rng.integers(20, 236, (res, res, 3), dtype=np.uint8)


def test_catcher_leaves_photo_bit_exact_outside_shadow_and_darkens_the_umbra(backend: MitsubaBackend) -> None:
    scene = _scene(env_rgb=None, res=96, spp=8, fov=32.0)
    rgba, labels = backend.render_with_labels(scene)
    ratio = shadow_ratio(backend, scene, 8, rgba[..., 3])
    photo = _photo(96)
    img, _ = finish(rgba, ratio, photo=photo, key=None)
    points, ground = _ground_points(scene)
    from scipy.ndimage import binary_dilation, binary_erosion

    # the smoothing of the shadow term reaches 3 pixels (3 sigma) beyond the shadow and the object
    square = np.ones((3, 3), bool)
    near_object = binary_dilation(labels > 0, square, iterations=4)
    shadow = binary_dilation(_sun_blocked(points, 0.0) & ground, square, iterations=3)
    lit = ground & ~shadow & ~near_object
    assert lit.sum() > 0.5 * lit.size
    assert np.array_equal(img[lit], photo[lit])  # unchanged, bit for bit
    umbra = binary_erosion(ground & _sun_blocked(points, 0.0), square, iterations=4) & ~near_object
    assert umbra.sum() > 30
    # only the sun lights the ground: in its umbra the photo goes black
    assert img[umbra].max() <= 2
    assert (labels[umbra] == 0).all()


def test_catcher_with_sky_matches_the_analytic_shadow_ratio(backend: MitsubaBackend) -> None:
    sky = 0.3
    scene = _scene(env_rgb=(sky, sky, sky), res=48, spp=64)
    rgba = backend.render(scene)
    ratio = shadow_ratio(backend, scene, 256, rgba[..., 3], smooth=0)[..., 1]
    points, ground = _ground_points(scene)
    el = np.radians(SUN_ELEVATION)
    lit_irradiance = np.pi * sky + 3.0 * np.sin(el)
    umbra = ground & _sun_blocked(points, -0.1) & (rgba[..., 3] == 0)
    assert umbra.sum() > 20
    # in the umbra only the sky lights the ground, minus what the sphere hides of it: the view factor
    # from a horizontal patch to a sphere above its horizon, (R / d)^2 cos(beta) = R^3 / d^3
    d = np.linalg.norm(points[umbra] - np.array([0.0, 0.0, RADIUS]), axis=-1)
    expected = np.pi * sky * (1 - (RADIUS / d) ** 3) / lit_irradiance
    assert abs(float(np.median(ratio[umbra] / expected)) - 1) < 0.05
    far = ground & ~_sun_blocked(points, 0.3) & (np.linalg.norm(points[..., :2], axis=-1) > 3.0)
    assert far.sum() > 50
    assert float(np.mean(ratio[far])) > 0.985  # the sphere hides a sliver of sky from afar, no more


def test_shadow_window_contains_every_shadowed_pixel(backend: MitsubaBackend) -> None:
    scene = _scene(env_rgb=(0.2, 0.2, 0.2), res=48, spp=8)
    rgba = backend.render(scene)
    full = shadow_ratio(backend, scene, 8, rgba[..., 3], window=False)
    win = shadow_window(scene)
    assert win is not None and win[2] * win[3] < 48 * 48
    x0, y0, w, h = win
    outside = np.ones((48, 48), bool)
    outside[y0:y0 + h, x0:x0 + w] = False
    # outside the window the sphere hides only a sliver of sky (single Monte Carlo samples, no shadow)
    assert full[outside].min() > 0.9 and full[outside].mean() > 0.995


def test_finish_over_photo_multiplies_linear_light_by_the_shade() -> None:
    photo = _photo(16)
    ratio = np.ones((16, 16, 3), np.float32)
    ratio[4:8, 4:8] = 0.25
    rgba = np.zeros((16, 16, 4), np.float32)
    img, _ = finish(rgba, ratio, photo=photo, key=None)
    expected = film.to_uint8(film.srgb_encode(film.srgb_decode(photo[4:8, 4:8] / 255.0) * 0.25))
    assert np.abs(img[4:8, 4:8].astype(int) - expected).max() <= 1
    assert np.array_equal(img[9:], photo[9:])
    grey = np.repeat(photo[..., :1], 3, axis=-1)
    rgba[10:14, 10:14] = [0.8, 0.1, 0.1, 1.0]
    out, _ = finish(rgba, None, photo=grey, key=None)
    assert (out[10:14, 10:14, 0] == out[10:14, 10:14, 2]).all()  # a monochrome photo gets monochrome objects


def test_soften_matches_an_enlarged_background_and_keeps_the_composite_a_partition() -> None:
    rgba = np.zeros((24, 24, 4), np.float32)
    rgba[8:16, 8:16] = [0.5, 0.4, 0.3, 1.0]
    assert soften(rgba, 1.0) is rgba
    soft = soften(rgba, 2.0)
    assert np.allclose(soft.sum(axis=(0, 1)), rgba.sum(axis=(0, 1)), rtol=1e-4)  # energy and coverage kept
    assert 0 < soft[7, 12, 3] < 1 and soft[12, 12, 3] > 0.9
    photo = np.broadcast_to(np.array([200, 180, 160], np.uint8), (24, 24, 3)).copy()
    img, _ = finish(soft, None, photo=photo, key=None)
    row = img[12, :, 0].astype(int)  # from the photo to the object and back, never outside the two
    obj = int(film.to_uint8(film.srgb_encode(film.filmic(np.float32(0.5)))))
    assert row.min() >= min(obj, 200) - 1 and row.max() <= max(obj, 200) + 1


def test_auto_exposure_brings_the_log_average_to_the_key() -> None:
    rng = np.random.default_rng(0)
    frame = np.exp(rng.normal(0, 2, (32, 32, 3))).astype(np.float32) * 50
    k = film.exposure_scale(frame, 0.18)
    assert abs(film.log_average(film.luminance(frame * k)) / 0.18 - 1) < 0.01


def test_filmic_curve_is_monotonic_and_inverts() -> None:
    x = np.geomspace(1e-4, 1e3, 200).astype(np.float32)
    y = film.filmic(x)
    assert (np.diff(y) >= 0).all() and y[0] >= 0 and y[-1] <= 1
    assert (np.diff(y[y < 0.99]) > 0).all()  # strictly rising until the shoulder reaches white
    below = y < 0.99
    assert np.allclose(film.filmic_inverse(y[below]), x[below], rtol=2e-3)
    assert abs(float(film.srgb_encode(film.filmic(np.float32(0.18)))) - 0.41) < 0.02  # mid grey


def _hdr_folder(root: Path) -> str:
    """blender-data's maps when installed, else three synthetic ones from dusk to noon."""
    from simreal.render.lighting import builtin_hdri_folder, write_hdr

    found = builtin_hdri_folder()
    if found is not None and found.is_dir():
        return "builtin:hdri"
    theta = np.linspace(0, np.pi, 32)[:, None, None]
    for name, sky, sun in (("noon", 1.5, 3e4), ("overcast", 0.8, 0.0), ("dusk", 0.02, 50.0)):
        img = np.broadcast_to(np.where(theta < np.pi / 2, sky, 0.2 * sky), (32, 64, 3)).astype(np.float32).copy()
        img[6, 20] = sun
        write_hdr(root / f"{name}.exr", img)
    return str(root)


@pytest.mark.slow
def test_auto_exposure_keeps_mean_luminance_in_band_over_50_random_scenes(backend: MitsubaBackend,
                                                                           tmp_path: Path) -> None:
    from simreal.config import load_config
    from simreal.render.api import tier_path
    from simreal.render.build import build_scene
    from simreal.render.compositing import environment_background
    from simreal.render.library import build_library
    from simreal.render.randomize import sample_params
    from simreal.render.spec import SceneConfig

    cfg = load_config(SceneConfig, tier_path("high"), {
        "resolution": [16, 16], "render.spp": 1, "render.denoise": False, "material.textures.size": 16,
        "objects": [{"category": "canister", "asset": {"kind": "canister", "canister": {"segments": 12}},
                     "size": [0.8, 1.2]}],
        "background.weights": {"environment": 1.0}, "lighting.environment.folder": _hdr_folder(tmp_path)})
    lib = build_library(cfg)
    means = {True: [], False: []}
    for i in range(50):
        params = sample_params(cfg, lib, np.random.default_rng(i))
        scene = build_scene(cfg, lib, params, i)
        rgba = backend.render(scene)
        env = environment_background(scene)
        for auto in (True, False):
            key = params["film"]["key"] if auto else None
            img, _ = finish(rgba, None, environment=env, key=key, ev=params["camera"]["exposure"])
            means[auto].append(float(film.luminance(img / 255.0).mean()))
    auto = np.array(means[True])
    assert ((auto > 0.25) & (auto < 0.6)).all(), np.sort(auto)
    fixed = np.array(means[False])  # the same scenes with a fixed exposure leave the band
    assert ((fixed < 0.25) | (fixed > 0.6)).sum() >= 5


@pytest.mark.slow
def test_auto_exposure_over_photos_shows_a_grey_card_at_the_photos_brightness_over_50_scenes(
        backend: MitsubaBackend, tmp_path: Path) -> None:
    """Over a photo, objects are metered by the light falling on them: an 18 % grey Lambertian card
    lying where the objects stand, rendered under each random scene's own lighting (HDR map, rotation,
    intensity, white balance), must be shown at the photo's log-average luminance. The incident meter
    (``scene_irradiance``) is checked against the renderer on the way; a fixed exposure misses the
    band in many scenes. The exposure jitter (``camera.exposure``, a deliberate offset) is left out."""
    import dataclasses

    from simreal.config import load_config
    from simreal.render.api import tier_path
    from simreal.render.build import build_scene
    from simreal.render.compositing import scene_irradiance
    from simreal.render.library import BUILTIN_GROUND_PHOTOS, build_library
    from simreal.render.randomize import sample_params
    from simreal.render.sample import background_image
    from simreal.render.spec import SceneConfig

    cfg = load_config(SceneConfig, tier_path("high"), {
        "resolution": [16, 16], "render.spp": 1, "render.denoise": False, "material.textures.size": 16,
        "objects": [{"category": "canister", "asset": {"kind": "canister", "canister": {"segments": 12}},
                     "size": [0.8, 1.2]}],
        "background.weights": {"photo": 1.0}, "background.photo_folder": BUILTIN_GROUND_PHOTOS,
        "lighting.environment.folder": _hdr_folder(tmp_path)})
    lib = build_library(cfg)
    card = Instance(primitive("plane", size=0.2), Material((0.18, 0.18, 0.18), model="diffuse"), 1, 1)
    top = Camera(look_at(np.array([0.0, 0.0, 1.0]), np.zeros(3), np.array([0.0, 1.0, 0.0])), 8, 8, "pinhole", 5.0)
    metered, shown = [], {True: [], False: []}
    photos = set()
    for i in range(50):
        params = sample_params(cfg, lib, np.random.default_rng(i))
        assert params["background"]["kind"] == "photo"
        photos.add(params["background"]["file"])
        scene = build_scene(cfg, lib, params, i)
        # 512 spp: at 64 the studio map's small bright lamps leave the 8x8 card 4 % off in some scenes
        rgba = backend.render(dataclasses.replace(scene, instances=[card], camera=top, spp=512, window=None))
        e = scene_irradiance(scene)
        card_radiance = float(film.luminance(rgba[..., :3]).mean()) / 2.0 ** scene.exposure
        metered.append(card_radiance / (0.18 * e / np.pi))
        photo = film.to_uint8(background_image(cfg, params))[:8, :8]
        photo_level = film.log_average(film.luminance(film.srgb_decode(photo / 255.0)))
        for auto in (True, False):
            img, _ = finish(rgba, None, photo=photo, key=params["film"]["key"] if auto else None, irradiance=e)
            shown[auto].append(float(film.luminance(film.srgb_decode(img / 255.0)).mean()) / photo_level)
    assert len(photos) >= 4
    assert np.allclose(metered, 1.0, atol=0.03), np.sort(metered)  # the meter agrees with the renderer
    auto = np.array(shown[True])
    assert ((auto > 0.92) & (auto < 1.08)).all(), np.sort(auto)
    fixed = np.array(shown[False])
    assert ((fixed < 0.5) | (fixed > 2.0)).sum() >= 10, np.sort(fixed)


def test_environment_upsampling_is_camera_pixels_per_map_texel() -> None:
    """A 1024-texel map spans 2π: 163 texels per radian; a 256-px, 40° pinhole has 351.7 px per radian at its
    centre (128 / tan 20°), so the map is enlarged 2.16 times; no map: 1."""
    scene = _scene(None, res=256, fov=40.0)
    assert environment_upsampling(scene) == 1.0
    scene = dataclasses.replace(scene, env_image=np.zeros((512, 1024, 3), np.float32))
    expected = (128 / np.tan(np.radians(20))) / (1024 / (2 * np.pi))
    assert environment_upsampling(scene) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(2.158, abs=1e-3)


@pytest.mark.parametrize("resample", ["bilinear", "lanczos"])
def test_photo_background_is_the_drawn_crop_resized_with_the_chosen_filter(tmp_path: Path, resample: str) -> None:
    """``background.photo_scale`` bounds the crop drawn (1: the whole photo) and ``photo_resample`` the filter:
    the background equals Pillow's resize of exactly that crop with that filter."""
    from PIL import Image

    from simreal.config import load_config
    from simreal.render.api import tier_path
    from simreal.render.build import background_image
    from simreal.render.library import build_library
    from simreal.render.randomize import sample_params
    from simreal.render.spec import SceneConfig

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    (tmp_path / "photos").mkdir()
    Image.fromarray(photo).save(tmp_path / "photos" / "p.png")
    cfg = load_config(SceneConfig, tier_path("high"), {
        "resolution": [32, 24], "background.weights": {"photo": 1.0},
        "background.photo_folder": str(tmp_path / "photos"), "background.photo_scale": [1.0, 1.0],
        "background.photo_resample": resample, "lighting.environment.folder": _hdr_folder(tmp_path)})
    lib = build_library(cfg)
    params = sample_params(cfg, lib, np.random.default_rng(3))
    assert params["background"]["scale"] == 1.0
    img = background_image(cfg, params)
    filt = Image.Resampling.LANCZOS if resample == "lanczos" else Image.Resampling.BILINEAR
    expected = np.asarray(Image.fromarray(photo).resize((32, 24), filt), np.float32) / 255.0
    expected = expected[:, ::-1] if params["background"]["flip"] else expected
    np.testing.assert_array_equal(img, expected)
    scales = [sample_params(load_config(SceneConfig, tier_path("high"), {
        "background.weights": {"photo": 1.0}, "background.photo_folder": str(tmp_path / "photos"),
        "background.photo_scale": [0.8, 0.9], "lighting.environment.folder": _hdr_folder(tmp_path)}), lib,
        np.random.default_rng(i))["background"]["scale"] for i in range(20)]
    assert 0.8 <= min(scales) and max(scales) <= 0.9
