"""Re-identification crops: one task per character (built once, its views rendered), each view a
person crop framed on the projected body, with person/camera ids, COCO keypoints and a head box.

``render_character((config_json, root_seed, index))`` is a pure function of its arguments and runs
in any worker; its result has the shape the render driver (:mod:`simreal.render.job`) expects."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np

from simreal.datasets.coco import IMAGES_DIR, mask_bbox, mask_to_rle
from simreal.datasets.imageio import encode_image, encode_mask
from simreal.errors import ConfigError
from simreal.render.backends.mitsuba import MitsubaBackend
from simreal.render.build import composite
from simreal.render.camera import Camera, look_at
from simreal.render.mesh import Mesh
from simreal.render.people.body import PosedBody
from simreal.render.people.character import Character, sample_character
from simreal.render.people.labels import person_annotation
from simreal.render.people.outfit import Part
from simreal.render.people.poses import rot_z, sample_pose
from simreal.render.people.spec import PeopleConfig
from simreal.render.primitives import primitive
from simreal.render.randomize import _temperature_rgb
from simreal.render.scene import Instance, Light, Material, SceneData
from simreal.render.textures import make_texture, sample_texture_params
from simreal.runtime.seeding import sample_rng, sample_seed

_backend: dict[str, MitsubaBackend] = {}


def backend(variant: str) -> MitsubaBackend:
    if variant not in _backend:
        _backend[variant] = MitsubaBackend(variant, threads=1)
    return _backend[variant]


@functools.lru_cache(maxsize=4)
def parse_config(cfg_json: str) -> tuple[PeopleConfig, list[Any], list[Any], list[Path]]:
    """Worker-side cache: the config and its texture, photo and HDR map file lists (each loaded only
    when its background kind has weight)."""
    from simreal.render.library import resolve_folder
    from simreal.render.lighting import hdr_files
    from simreal.render.textures import load_texture_folder

    cfg = PeopleConfig.model_validate_json(cfg_json)
    tex = load_texture_folder(cfg.character.clothing.texture_folder) if cfg.character.clothing.texture_folder else []
    photos = []
    if cfg.background.photo_folder and cfg.background.weights.get("photo", 0) > 0:
        photos = load_texture_folder(str(resolve_folder(cfg.background.photo_folder)))
    hdr_maps = []
    if cfg.background.weights.get("envmap", 0) > 0:
        hdr_maps = hdr_files(cfg.background.hdr_folder, "background.hdr_folder")
    return cfg, tex, photos, hdr_maps


def placed(parts: list[Part], xf: np.ndarray, label: int = 1) -> list[Instance]:
    """Scene instances of a character's parts moved by ``xf`` (4x4); all carry ``label``."""
    return [Instance(p.mesh.transformed(xf), Material(p.color, p.texture, p.roughness), label, 1, "target")
            for p in parts]


def _plane(size: float, xf: np.ndarray) -> Mesh:
    return primitive("plane", size=size).transformed(xf)


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = sorted(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def sample_view(rng: np.random.Generator, cfg: PeopleConfig, view: int, hdr_maps: list[Path] | None = None
                ) -> dict[str, Any]:
    """Camera id, camera pose, person yaw, pose, background and light of one view (JSON-ready).

    An ``envmap`` view draws its map (from ``hdr_maps``), rotation, intensity and white balance after
    everything else (so adding the kind changes no other view's draws) and has no ``light``: the map
    is the only light."""
    cams = cfg.camera.cameras
    cam_id = 1 + view % cams
    sector = 360.0 / cams
    azimuth = (cam_id - 1) * sector + float(rng.uniform(-0.4, 0.4)) * sector
    bg_kind = _choice(rng, cfg.background.weights)
    tex = [sample_texture_params(rng) for _ in range(3)]
    out = {
        "view": view, "camera_id": cam_id, "azimuth": azimuth,
        "height": float(rng.uniform(*cfg.camera.height)), "distance": float(rng.uniform(*cfg.camera.distance)),
        "yaw": float(rng.uniform(0, 360)), "pose": sample_pose(rng, _choice(rng, cfg.poses)),
        "background": {"kind": bg_kind, "color": [float(c) for c in rng.uniform(0.15, 0.95, 3)],
                       "floor": [float(c) for c in rng.uniform(0.1, 0.8, 3)], "textures": tex,
                       "photo": int(rng.integers(2**31 - 1)), "cx": float(rng.uniform()), "cy": float(rng.uniform())},
        "light": {"ambient": float(rng.uniform(*cfg.lighting.ambient)), "sun": float(rng.uniform(*cfg.lighting.sun)),
                  "elevation": float(rng.uniform(*cfg.lighting.sun_elevation)),
                  "azimuth": float(rng.uniform(0, 360)),
                  "temperature": float(rng.uniform(*cfg.lighting.temperature))},
    }
    if bg_kind == "envmap":
        from simreal.render.lighting import sample_hdr_params

        if not hdr_maps:
            raise ConfigError("background.weights.envmap > 0 needs HDR maps in 'background.hdr_folder'")
        b = cfg.background
        out["background"]["envmap"] = sample_hdr_params(rng, hdr_maps, b.hdr_intensity, b.hdr_rotation,
                                                        b.hdr_white_balance)
        del out["light"]
    return out


def fit_camera(points: np.ndarray, origin: np.ndarray, target: np.ndarray, width: int, height: int,
               padding: float) -> Camera:
    """A pinhole camera at ``origin`` whose image is the padded box of the projected ``points``."""
    up = np.array([0.0, 0.0, 1.0])
    cam = Camera(look_at(origin, target, up), width, height, "pinhole", 40.0)
    for _ in range(3):
        uv, _ = cam.project(points)
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        centre = (lo + hi) / 2
        # re-aim at the box centre: the ray through it
        f = cam.focal_px
        d_cam = np.array([(width / 2 - centre[0]) / f, (height / 2 - centre[1]) / f, 1.0])
        d = cam.to_world[:3, :3] @ d_cam
        size = hi - lo
        scale = min(width / (size[0] * (1 + 2 * padding)), height / (size[1] * (1 + 2 * padding)))
        f_new = f * scale
        fov = float(np.degrees(2 * np.arctan(width / 2 / f_new)))
        cam = Camera(look_at(origin, origin + d, up), width, height, "pinhole", min(max(fov, 1.0), 120.0))
    return cam


def background_meshes(bg: dict[str, Any]) -> list[Instance]:
    """Floor (and walls for a room) as unlabelled instances."""
    floor_tex = make_texture(bg["textures"][0], (64, 64)) if bg["kind"] == "room" else None
    out = [Instance(_plane(30.0, np.eye(4)), Material(tuple(bg["floor"]), floor_tex, 0.8), 0, 0, "ground")]
    if bg["kind"] == "room":
        for k, ang in enumerate((0.0, 90.0, 180.0, 270.0)):
            xf = np.eye(4)
            xf[:3, :3] = rot_z(ang) @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # plane normal -> -Y
            xf[:3, 3] = rot_z(ang) @ np.array([0.0, 9.0, 4.0])
            tex = make_texture(bg["textures"][1 + k % 2], (64, 64))
            out.append(Instance(_plane(18.0, xf), Material(tuple(bg["color"]), tex, 0.9), 0, 0, "ground"))
    return out


def lights_of(light: dict[str, Any]) -> tuple[list[Light], tuple[float, float, float]]:
    rgb = np.asarray(_temperature_rgb(light["temperature"]))
    el, az = np.deg2rad(light["elevation"]), np.deg2rad(light["azimuth"])
    pos = 10.0 * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    sun = Light("directional", tuple(pos), (0.0, 0.0, 0.0), tuple(float(c) for c in rgb * light["sun"]))
    return [sun], tuple(float(c) * light["ambient"] for c in rgb)


def photo_background(photos: list[Any], bg: dict[str, Any], w: int, h: int) -> np.ndarray:
    from PIL import Image

    from simreal.render.build import cached_photo

    img = cached_photo(str(photos[bg["photo"] % len(photos)]))
    ih, iw = img.shape[:2]
    side_w = 0.5 * min(iw, ih * w / h)
    side_h = side_w * h / w
    x0, y0 = bg["cx"] * (iw - side_w), bg["cy"] * (ih - side_h)
    crop = Image.fromarray(img).resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x0 + side_w, y0 + side_h))
    return np.asarray(crop, dtype=np.float32) / 255.0


def posed_view(cfg: PeopleConfig, ch: Character, view: dict[str, Any]
               ) -> tuple[PosedBody, list[Part], np.ndarray, list[Instance], Camera]:
    """The character dressed in the view's pose, its placement ``xf`` (4x4), its scene instances and the
    crop camera framed on them."""
    w, h = cfg.resolution
    body, parts = ch.dressed(view["pose"])
    xf = np.eye(4)
    xf[:3, :3] = rot_z(view["yaw"])  # the person faces -Y rotated by yaw; the camera sits at its azimuth
    inst = placed(parts, xf)
    pts = np.concatenate([i.mesh.vertices for i in inst])
    az = np.deg2rad(view["azimuth"])
    origin = np.array([view["distance"] * np.cos(az), view["distance"] * np.sin(az), view["height"]])
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    return body, parts, xf, inst, fit_camera(pts, origin, centre, w, h, cfg.camera.padding)


def view_scene(cfg: PeopleConfig, view: dict[str, Any], cam: Camera, person: list[Instance], seed: int
               ) -> SceneData:
    """The scene of one view: the person, plus the floor (and walls) under a sun and a constant sky, or,
    for an ``envmap`` view, the person alone under the map (its only light, white balance as a tint)."""
    bg = view["background"]
    common = {"camera": cam, "hide_environment": True, "spp": cfg.render.spp, "max_depth": cfg.render.max_depth,
              "pixel_filter": cfg.render.filter, "seed": seed}
    if bg["kind"] == "envmap":
        from simreal.render.lighting import hdr_lighting

        image, to_world, scale, tint = hdr_lighting(cfg.background.hdr_folder, bg["envmap"], bake=False)
        return SceneData(instances=person, env_rgb=None, env_image=image, env_scale=scale, env_to_world=to_world,
                         env_tint=None if tint is None else tuple(float(c) for c in tint), **common)
    instances = person + background_meshes(bg) if bg["kind"] != "photo" else person
    lights, ambient = lights_of(view["light"])
    return SceneData(instances=instances, lights=lights, env_rgb=ambient, **common)


def envmap_image(be: MitsubaBackend, cfg: PeopleConfig, scene: SceneData, rgba: np.ndarray, intensity: float
                 ) -> tuple[np.ndarray, float]:
    """The person over the environment map seen through the camera, with the person's shadow on the
    map's ground (the object scenes' shadow catcher), exposed and tone mapped; and the exposure factor
    from linear radiance. Incident metering: an 18 % grey card lying on the ground under the map at
    intensity 1 comes out mid grey, so ``intensity`` brightens or darkens the whole frame."""
    from simreal.render.compositing import environment_background, finish, scene_irradiance, shadow_ratio

    ratio = None
    if cfg.background.hdr_shadows:
        ratio = shadow_ratio(be, scene, cfg.background.hdr_shadow_spp, rgba[..., 3], scale=2)
    # a grey card of albedo a under upward irradiance E reflects a E / pi; E scales with the intensity, so
    # pi x intensity / E takes the card to a at intensity 1 and scales the frame with the intensity
    exposure = float(np.pi * intensity / max(scene_irradiance(scene), 1e-9))
    image, k = finish(rgba, ratio, environment=environment_background(scene), key=None, curve="filmic",
                      ev=float(np.log2(exposure)))
    return image, k


def render_view(cfg: PeopleConfig, ch: Character, view: dict[str, Any], photos: list[Any], seed: int
                ) -> tuple[np.ndarray, np.ndarray, dict[str, Any], float | None]:
    """One crop: image (H, W, 3) uint8, instance mask (person = 1), the person annotation, and for an
    ``envmap`` view the exposure factor from linear radiance (else None)."""
    w, h = cfg.resolution
    body, parts, xf, inst, cam = posed_view(cfg, ch, view)
    bg = view["background"]
    scene = view_scene(cfg, view, cam, inst, seed)
    be = backend(cfg.render.variant)
    rgba, labels = be.render_with_labels(scene)
    assert labels is not None
    person = np.array([0] + [i.label for i in scene.instances])[labels]
    mask = (person == 1).astype(np.uint16)
    ann = person_annotation(be, scene, body, xf, [k for k, i in enumerate(scene.instances) if i.label == 1],
                            mask.astype(bool), hair=[p for p in parts if p.kind in ("hair", "hat")])
    exposure = None
    if bg["kind"] == "envmap":
        image, exposure = envmap_image(be, cfg, scene, rgba, bg["envmap"]["intensity"])
    else:
        backdrop = (photo_background(photos, bg, w, h) if bg["kind"] == "photo"
                    else np.broadcast_to(np.asarray(bg["color"], np.float32), (h, w, 3)))
        image = composite(rgba, backdrop)
    return image, mask, ann, exposure


def render_character(task: tuple[str, int, int]) -> dict[str, Any]:
    """Build character ``index`` once and render its views (files, records and timings)."""
    cfg_json, root_seed, index = task
    t0 = time.perf_counter()
    cfg, tex_files, photos, hdr_maps = parse_config(cfg_json)
    record = sample_character(sample_rng(root_seed, index), cfg.character, index)
    ch = Character.build(record, tex_files, cfg.character.clothing.texture_size)
    build_s = time.perf_counter() - t0
    be = backend(cfg.render.variant)
    be.render_seconds = be.scene_seconds = 0.0
    ext = cfg.image_format
    files: dict[str, bytes] = {}
    records = []
    for v in range(cfg.views):
        rng = sample_rng(root_seed, index, stream=1 + v)
        view = sample_view(rng, cfg, v, hdr_maps)
        seed = sample_seed(root_seed, index, stream=1 + v)
        image, mask, ann, exposure = render_view(cfg, ch, view, photos, seed)
        if exposure is not None:  # what took the map's radiance to the image (before the tone curve)
            view["background"]["envmap"]["exposure"] = exposure
        name = f"{index:06d}_{v:03d}"
        files[f"{IMAGES_DIR}/{name}.{ext}"] = encode_image(image, ext)
        files[f"masks/{name}.png"] = encode_mask(mask)
        rec = {"file_name": f"{name}.{ext}", "mask_file": f"masks/{name}.png", "width": cfg.resolution[0],
               "height": cfg.resolution[1], "label": 1, "identity": index + 1, "camera": view["camera_id"],
               "person_id": index + 1, "camera_id": view["camera_id"], "view": v, "domain": "synthetic",
               "sample": index, "seed": seed, "params": {"character": record, "view": view}}
        records.append({"record": rec, "anns": [ann] if ann else []})
    total = time.perf_counter() - t0
    return {"index": index, "seed": sample_seed(root_seed, index), "files": files, "records": records,
            "params": {"character": record},
            "timings": {"total": total, "render": be.render_seconds, "scene": be.scene_seconds,
                        "other": total - be.render_seconds, "build": build_s}}


def mask_annotation(mask: np.ndarray) -> dict[str, Any] | None:
    """bbox, area and RLE of a boolean mask (None when empty)."""
    bb = mask_bbox(mask)
    if bb is None:
        return None
    return {"bbox": bb, "area": float(mask.sum()), "segmentation": mask_to_rle(mask)}


def people_dry_run(cfg: PeopleConfig) -> None:
    """Build the anny cache if needed, check every folder, build character 0 and pose it, so bad input
    fails here once with one line, not in every worker."""
    from simreal.errors import AssetError, ConfigError
    from simreal.render.people.anny_cache import require_cache

    require_cache(build=True)
    try:
        _, tex, photos, hdr_maps = parse_config(cfg.model_dump_json())
    except AssetError as exc:
        raise AssetError(f"people config: {exc}") from None
    if cfg.character.clothing.texture_folder and not tex:
        raise AssetError(f"character.clothing.texture_folder: no images in {cfg.character.clothing.texture_folder}")
    if cfg.background.weights.get("photo", 0) > 0 and not photos:
        raise ConfigError("background.weights.photo > 0 needs 'background.photo_folder' with images")
    rec = sample_character(sample_rng(cfg.seed, 0), cfg.character, 0)
    Character.build(rec, tex, cfg.character.clothing.texture_size).dressed(
        sample_view(sample_rng(cfg.seed, 0, 1), cfg, 0, hdr_maps)["pose"])
