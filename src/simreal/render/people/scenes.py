"""Ceiling-fisheye people scenes: people sitting (on chairs) and standing or walking, placed without
collisions on the floor plan of a background photo (or procedural room) and composited into it as
the calibrated fisheye sees them, with furniture occlusion, floor shadows, motion blur and random light.

``render_scene((config_json, root_seed, index))`` is a pure function of its arguments (image ``index``
is drawn from (seed, index); identities, poses and rooms from their own streams) and returns what the
render driver (:mod:`simreal.render.job`) expects. Workers cache backgrounds, built identities and posed,
dressed bodies, so a pool of identities x pose variants is built once per worker.

Pipeline per image: sample the people and the light -> place their footprints -> one Mitsuba scene of
the people (and chairs) -> each person's fisheye region rendered through a native pinhole tile and
warped (:mod:`simreal.render.fisheye_tiles`), exact labels and depths through the fisheye sensor on a
cropped film -> furniture occlusion, shadows, motion blur, gain (:mod:`simreal.render.people.composite`)
-> annotations (mask, box, COCO keypoints with visibility, head point and box, rotation towards the
image centre)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from simreal.datasets.coco import IMAGES_DIR, SIMREAL
from simreal.datasets.imageio import encode_image, encode_mask
from simreal.errors import AssetError, ConfigError
from simreal.render.camera import Camera
from simreal.render.mesh import Mesh
from simreal.render.people import composite as comp
from simreal.render.people.floorplan import (
    FloorPlan,
    default_calibration,
    floor_points,
    furniture_hits,
    read_floor_plan,
    visible_region,
)
from simreal.render.people.labels import JOINT_DEPTH, first_hits, person_annotation
from simreal.render.people.outfit import Part
from simreal.render.people.placement import Placed, PlacementError, footprint_template, place_people
from simreal.render.people.scene_spec import PeopleSceneConfig
from simreal.render.primitives import concatenate, primitive
from simreal.render.scene import Instance, Light, Material, SceneData
from simreal.runtime.seeding import sample_rng, sample_seed

STREAM_IDENTITY = 1_000_001
STREAM_POSE = 2_000_000
STREAM_ROOM = 3_000_001
STREAM_PLACE = 4_000_001


@dataclass
class Site:
    """One background: a photo (``path``) or a procedural room (``room`` record), with its floor plan at
    the output resolution."""

    key: str
    plan: FloorPlan
    path: Path | None = None
    room: dict[str, Any] | None = None


@dataclass
class PersonAsset:
    """A posed, dressed identity in its body frame, its chair (seated people) and its footprint."""

    body: Any
    parts: list[Part]
    chair: list[Mesh]
    template: Any
    radius: float


# config, backgrounds -------------------------------------------------------------------------------------

def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = sorted(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _photo_sites(cfg: PeopleSceneConfig) -> list[Site]:
    from PIL import Image

    from simreal.render.library import resolve_folder
    from simreal.render.textures import load_texture_folder

    folder = str(resolve_folder(cfg.background.photo_folder or ""))
    try:
        photos = load_texture_folder(folder)
    except AssetError as exc:
        raise AssetError(f"background.photo_folder: {exc}") from None
    w_out, h_out = cfg.resolution
    sites = []
    for p in photos:
        with Image.open(p) as im:
            size = (int(im.size[0]), int(im.size[1]))
        if abs(size[0] * h_out - size[1] * w_out) > 0.01 * size[0] * h_out:
            raise AssetError(f"{p}: the photo is {size[0]}x{size[1]}, but resolution {list(cfg.resolution)} has "
                             "another aspect ratio (the fisheye calibration must scale uniformly)")
        base = default_calibration(size, cfg.camera.focal, cfg.camera.center, cfg.camera.fov)
        js = p.with_suffix(".json")
        if js.is_file():
            plan = read_floor_plan(js, size, base, p.name)
        elif cfg.background.require_json:
            raise AssetError(f"{p}: no furniture JSON {js.name} next to it (background.require_json is on)")
        else:
            plan = FloorPlan(base)
        plan.calibration = plan.calibration.scaled((w_out, h_out))
        sites.append(Site(p.name, plan, path=p))
    return sites


def _room_sites(cfg: PeopleSceneConfig) -> list[Site]:
    from simreal.render.people.room import room_calibration, room_plan, sample_room

    calib = room_calibration(cfg)
    sites = []
    for i in range(cfg.background.rooms.count):
        room = sample_room(sample_rng(cfg.seed, i, STREAM_ROOM), cfg, i)
        sites.append(Site(f"room{i:04d}", room_plan(room, calib), room=room))
    return sites


@functools.lru_cache(maxsize=4)
def parse_config(cfg_json: str) -> tuple[PeopleSceneConfig, list[Site]]:
    """Worker-side cache: the config and its backgrounds (every photo's JSON checked)."""
    cfg = PeopleSceneConfig.model_validate_json(cfg_json)
    sites = _photo_sites(cfg) if cfg.background.photo_folder else _room_sites(cfg)
    return cfg, sites


@functools.lru_cache(maxsize=32)
def plate(cfg_json: str, site_index: int) -> np.ndarray:
    """A background at the output resolution (sRGB uint8): the resized photo or the rendered room."""
    from PIL import Image

    from simreal.render.build import cached_photo

    cfg, sites = parse_config(cfg_json)
    site = sites[site_index]
    w, h = cfg.resolution
    if site.path is not None:
        img = cached_photo(str(site.path))
        if img.shape[1] != w or img.shape[0] != h:
            img = np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BICUBIC))
        return img
    from simreal.render.people.room import render_room

    assert site.room is not None
    return render_room(backend(cfg.render.variant), site.room, site.plan.calibration,
                       cfg.background.rooms.spp, sample_seed(cfg.seed, site_index, STREAM_ROOM))


def backend(variant: str) -> Any:
    from simreal.render.people.reid import backend as reid_backend

    return reid_backend(variant)


# people -------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=128)
def _character(cfg_json: str, identity: int) -> Any:
    from simreal.render.people.character import Character, sample_character

    cfg, _ = parse_config(cfg_json)
    record = sample_character(sample_rng(cfg.seed, identity, STREAM_IDENTITY), cfg.people.character, identity)
    return Character.build(record, [], cfg.people.character.clothing.texture_size)


def chair_meshes(body: Any) -> list[Mesh]:
    """A chair under a seated body (body frame): seat at the bottom of the buttocks, four legs, a back."""
    hips = (body.joint("upperleg01.L") + body.joint("upperleg01.R")) / 2
    v = body.vertices
    near = (np.hypot(v[:, 0] - hips[0], v[:, 1] - hips[1]) < 0.12) & (v[:, 2] < hips[2])
    seat_z = float(v[near, 2].min()) if near.any() else float(hips[2] - 0.1)
    behind = (v[:, 2] > seat_z) & (v[:, 2] < seat_z + 0.45) & (np.abs(v[:, 0] - hips[0]) < 0.2)
    back_y = float(v[behind, 1].max()) + 0.03 if behind.any() else float(hips[1] + 0.2)
    cy = hips[1] + 0.02

    def box(cx: float, cy: float, cz: float, sx: float, sy: float, sz: float) -> Mesh:
        m = np.diag([sx, sy, sz, 1.0])
        m[:3, 3] = [cx, cy, cz]
        return primitive("cube").transformed(m)

    seat_t = 0.04
    parts = [box(hips[0], cy, seat_z - seat_t / 2, 0.46, 0.46, seat_t),
             box(hips[0], back_y + 0.02, seat_z + 0.25, 0.44, 0.03, 0.45)]
    for dx in (-0.2, 0.2):
        for dy in (-0.2, 0.2):
            parts.append(box(hips[0] + dx, cy + dy, (seat_z - seat_t) / 2, 0.03, 0.03, seat_z - seat_t))
    return [concatenate(parts, "chair")]


@functools.lru_cache(maxsize=160)
def person_asset(cfg_json: str, identity: int, kind: str, variant: int) -> PersonAsset:
    """Identity ``identity`` in pose variant ``variant`` of ``kind`` (standing, walking, sitting)."""
    from simreal.render.people.poses import POSES, sample_pose

    cfg, _ = parse_config(cfg_json)
    ch = _character(cfg_json, identity)
    pose = sample_pose(sample_rng(cfg.seed, identity, STREAM_POSE + 100 * POSES.index(kind) + variant), kind)
    body, parts = ch.dressed(pose, cull_hidden=True)
    chair = chair_meshes(body) if kind == "sitting" else []
    pts = np.concatenate([p.mesh.vertices for p in parts] + [m.vertices for m in chair])
    tpl = footprint_template(pts[:: max(1, len(pts) // 4000), :2])
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    radius = float(np.linalg.norm(pts - centre, axis=1).max())
    return PersonAsset(body, parts, chair, tpl, radius)


# sampling -----------------------------------------------------------------------------------------------

def sample_light(rng: np.random.Generator, cfg: PeopleSceneConfig) -> dict[str, Any]:
    """The key light (lamp near the ceiling or window light) and ambient light of one image."""
    li = cfg.lighting
    kind = _choice(rng, dict(li.kinds))
    r, phi = float(rng.uniform(0.0, 3.0)), float(rng.uniform(0, 2 * np.pi))
    el, az = np.deg2rad(float(rng.uniform(*li.elevation))), float(rng.uniform(0, 2 * np.pi))
    return {"kind": kind, "offset": [r * np.cos(phi), r * np.sin(phi)],
            "direction": [float(np.cos(el) * np.cos(az)), float(np.cos(el) * np.sin(az)), float(np.sin(el))],
            "key": float(rng.uniform(*li.key)), "ambient": float(rng.uniform(*li.ambient)),
            "temperature": float(rng.uniform(*li.temperature)), "shadow": float(rng.uniform(*li.shadow)),
            "contact": float(rng.uniform(*li.contact))}


def sample_scene(rng: np.random.Generator, cfg: PeopleSceneConfig, n_sites: int) -> dict[str, Any]:
    """Everything drawn for one image (JSON-ready); placement happens at render time from its own stream."""
    from simreal.render.post import sample_post_params

    pp = cfg.people
    site = int(rng.integers(n_sites))
    height = float(rng.uniform(*cfg.camera.height))
    n_up = int(rng.integers(pp.standing[0], pp.standing[1] + 1))
    n_sit = int(rng.integers(pp.sitting[0], pp.sitting[1] + 1))
    n = n_up + n_sit
    ids = rng.choice(pp.identities, size=n, replace=pp.identities < n) if n else np.zeros(0, int)
    people = []
    for k in range(n):
        kind = "sitting" if k < n_sit else _choice(rng, dict(pp.upright_poses))
        blur_on = bool(rng.uniform() < cfg.motion_blur.probability)
        length = float(rng.uniform(*cfg.motion_blur.length)) * (1.0 if kind == "walking" else 1.0 / 3.0)
        people.append({"identity": int(ids[k]), "pose": kind, "variant": int(rng.integers(pp.pose_variants)),
                       "blur": {"on": blur_on, "length": length, "angle": float(rng.uniform(0, 180))}})
    return {"site": site, "camera_height": height, "people": people, "light": sample_light(rng, cfg),
            "gain": float(rng.uniform(*cfg.lighting.gain)), "post": sample_post_params(rng, cfg.post)}


def _light_of(site: Site, params_light: dict[str, Any], height: float) -> dict[str, Any]:
    """The key light in the floor-plan frame: a room's own lamp, else the sampled one."""
    light = dict(params_light)
    if site.room is not None:
        room = site.room["light"]
        light.update(kind="lamp", position=list(room["position"]), key=room["key"], ambient=room["ambient"],
                     temperature=room["temperature"])
    elif light["kind"] == "lamp":
        light["position"] = [light["offset"][0], light["offset"][1], height + 0.1]
    return light


def _scene_lights(light: dict[str, Any]) -> tuple[list[Light], tuple[float, float, float]]:
    from simreal.render.randomize import _temperature_rgb

    rgb = np.asarray(_temperature_rgb(light["temperature"]))
    if light["kind"] == "lamp":
        pos = np.asarray(light["position"])
        key = Light("point", tuple(pos), (0.0, 0.0, 0.0), tuple(float(c) for c in rgb * light["key"] * pos[2] ** 2))
    else:
        d = np.asarray(light["direction"])
        key = Light("directional", tuple(10.0 * d), (0.0, 0.0, 0.0), tuple(float(c) for c in rgb * light["key"]))
    return [key], tuple(float(c) * light["ambient"] for c in rgb)


def placement_area(plan: FloorPlan, cam: Camera, cfg: PeopleSceneConfig) -> tuple[Any, Any]:
    """Where people may stand (the floor seen within ``placement.max_angle``, inside the floor polygon)
    and the floor polygon that must hold their footprints (None: no walls known)."""
    import shapely

    seen = shapely.Polygon(visible_region(cam, cfg.placement.max_angle))
    floor = shapely.Polygon(plan.floor).buffer(-0.05) if plan.floor is not None else None
    area = seen.intersection(floor) if floor is not None else seen
    return area, floor


def _place(cfg: PeopleSceneConfig, plan: FloorPlan, cam: Camera, assets: list[PersonAsset], sitting: list[bool],
           rng: np.random.Generator, strict: bool) -> list[Placed | None]:
    area, floor = placement_area(plan, cam, cfg)
    pl = cfg.placement
    return place_people(rng, [a.template for a in assets], sitting, area, floor, plan.furniture, pl.clearance,
                        pl.attempts, pl.restarts, strict=strict)


# rendering ----------------------------------------------------------------------------------------------

def _xf(x: float, y: float, yaw: float) -> np.ndarray:
    from simreal.render.people.poses import rot_z

    m = np.eye(4)
    m[:3, :3] = rot_z(yaw)
    m[:3, 3] = [x, y, 0.0]
    return m


def _region(cam: Camera, pts: np.ndarray, pad: int = 3) -> tuple[int, int, int, int] | None:
    uv, ok = cam.project(pts)
    if not ok.any():
        return None
    lo, hi = uv[ok].min(axis=0), uv[ok].max(axis=0)
    x0, y0 = max(0, int(np.floor(lo[0])) - pad), max(0, int(np.floor(lo[1])) - pad)
    x1, y1 = min(cam.width, int(np.ceil(hi[0])) + pad), min(cam.height, int(np.ceil(hi[1])) + pad)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _rotation(cam: Camera, xy: tuple[float, float]) -> float:
    """Clockwise degrees from image-up to the direction from the optical centre to the person's floor
    point: the image direction a vertical body lies along in a downward-looking fisheye."""
    uv, _ = cam.project(np.array([[xy[0], xy[1], 0.0]]))
    cx, cy = cam.principal_point
    v = uv[0] - np.array([cx, cy])
    return 0.0 if np.hypot(*v) < 1e-6 else round(float(np.degrees(np.arctan2(v[0], -v[1]))), 2)


@dataclass
class Composed:
    """One composited image: sRGB image, instance mask (person k -> k + 1), COCO annotations, where
    everyone went, and the key light actually used."""

    image: np.ndarray
    mask: np.ndarray
    anns: list[dict[str, Any]]
    placed: list[dict[str, Any]]
    light: dict[str, Any]


def render_scene(task: tuple[str, int, int]) -> dict[str, Any]:
    """Render image ``index``: files, records and timings for the render driver."""
    cfg_json, root_seed, index = task
    t0 = time.perf_counter()
    cfg, sites = parse_config(cfg_json)
    params = sample_scene(sample_rng(root_seed, index), cfg, len(sites))
    site = sites[params["site"]]
    plan = site.plan
    height = plan.camera_height if plan.camera_height is not None else params["camera_height"]
    cam = plan.calibration.camera(height)
    be = backend(cfg.render.variant)
    be.render_seconds = be.scene_seconds = 0.0
    back = plate(cfg_json, params["site"])
    assets = [person_asset(cfg_json, p["identity"], p["pose"], p["variant"]) for p in params["people"]]
    found = _place(cfg, plan, cam, assets, [p["pose"] == "sitting" for p in params["people"]],
                   sample_rng(root_seed, index, STREAM_PLACE), strict=False)
    # the dry run checked that the maximum counts fit on every background; a rare unlucky draw that
    # does not is rendered with the people that fit (recorded as 'unplaced')
    keep = [k for k, f in enumerate(found) if f is not None]
    params["unplaced"] = len(found) - len(keep)
    params["people"] = [params["people"][k] for k in keep]
    assets = [assets[k] for k in keep]
    spots = [f for f in found if f is not None]
    out = compose_scene(cfg, site, back, cam, params, assets, spots, sample_seed(root_seed, index, stream=1))
    w, h = cam.width, cam.height
    ext = cfg.image_format
    name = f"{index:07d}"
    files = {f"{IMAGES_DIR}/{name}.{ext}": encode_image(out.image, ext), f"masks/{name}.png": encode_mask(out.mask)}
    params.update(placed=out.placed, light=out.light, camera_height=height, background=site.key)
    cx, cy = cam.principal_point
    rec = {"file_name": f"{name}.{ext}", "mask_file": f"masks/{name}.png", "width": w, "height": h,
           "label": 1 if out.anns else 0, "domain": "synthetic", "sample": index,
           "seed": sample_seed(root_seed, index),
           "camera": {"model": "fisheye", "focal": round(cam.focal_px, 4), "center": [round(cx, 4), round(cy, 4)],
                      "fov": cam.fov, "height": round(height, 4)},
           "image_center": [round(cx - 0.5, 4), round(cy - 0.5, 4)], "background": site.key, "params": params}
    total = time.perf_counter() - t0
    return {"index": index, "seed": rec["seed"], "files": files, "records": [{"record": rec, "anns": out.anns}],
            "params": params,
            "timings": {"total": total, "render": be.render_seconds, "scene": be.scene_seconds,
                        "other": total - be.render_seconds}}


@dataclass
class PeopleScene:
    """The people of one image as one Mitsuba scene: every part of person k (instance label k + 1) and
    its chair (label 0), with each instance's owner and whether it is body (else chair)."""

    scene: SceneData
    owner: np.ndarray
    is_body: np.ndarray
    xfs: list[np.ndarray]

    def members(self, k: int) -> list[int]:
        """Instance indices of person ``k``'s body, clothes, hair and accessories."""
        return [int(i) for i in np.flatnonzero((self.owner == k) & self.is_body)]


def people_scene(cfg: PeopleSceneConfig, cam: Camera, assets: list[PersonAsset], spots: list[Placed],
                 light: dict[str, Any], seed: int) -> PeopleScene:
    lights, ambient = _scene_lights(light)
    instances: list[Instance] = []
    owner: list[int] = []
    is_body: list[bool] = []
    xfs = []
    for k, (a, s) in enumerate(zip(assets, spots, strict=True)):
        xf = _xf(s.x, s.y, s.yaw)
        xfs.append(xf)
        for part in a.parts:
            instances.append(Instance(part.mesh.transformed(xf), Material(part.color, part.texture, part.roughness),
                                      k + 1, 1, "target"))
            owner.append(k)
            is_body.append(True)
        for m in a.chair:
            instances.append(Instance(m.transformed(xf), Material((0.25, 0.25, 0.28), None, 0.6), 0, 0, "chair"))
            owner.append(k)
            is_body.append(False)
    scene = SceneData(cam, instances, lights, env_rgb=ambient, hide_environment=True, spp=cfg.render.spp,
                      max_depth=cfg.render.max_depth, pixel_filter=cfg.render.filter, seed=seed)
    return PeopleScene(scene, np.asarray(owner, np.int64), np.asarray(is_body, bool), xfs)


def render_layer(be: Any, cfg: PeopleSceneConfig, ps: PeopleScene, n: int, light: dict[str, Any]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[comp.ShadowGrid]]:
    """The people layer (premultiplied linear RGBA), exact labels (instance index + 1) and depths of every
    person's fisheye region, and each person's floor shadow."""
    from simreal.render import fisheye_tiles as ft

    cam, scene = ps.scene.camera, ps.scene
    w, h = cam.width, cam.height
    rgba = np.zeros((h, w, 4), np.float32)
    labels = np.zeros((h, w), np.int32)
    depth = np.full((h, w), np.inf)
    shadows = []
    if not scene.instances:
        return rgba, labels, depth, shadows
    mscene = be._scene(scene, list(range(len(scene.instances))), True)
    be._last = (scene, mscene)
    for k in range(n):
        pts = np.concatenate([scene.instances[i].mesh.vertices for i in np.flatnonzero(ps.owner == k)])
        reg = _region(cam, pts)
        if reg is not None:
            x0, y0, x1, y1 = reg
            tile = ft.pinhole_tile(cam, reg, cfg.supersample)
            img = ft.render_tile(be, mscene, tile, cfg.render.spp, scene.seed + 7 * k, cfg.render.filter)
            rgba[y0:y1, x0:x1] = ft.warp(cam, reg, [tile], [img], sub=max(1, int(np.ceil(cfg.supersample))))
            labels[y0:y1, x0:x1], depth[y0:y1, x0:x1] = ft.region_labels(be, mscene, cam, reg)
        shadows.append(comp.shadow_grid(pts, light))
    return rgba, labels, depth, shadows


def floor_factor(plan: FloorPlan, floor_xy: np.ndarray, on_floor: np.ndarray, assets: list[PersonAsset],
                 spots: list[Placed], shadows: list[comp.ShadowGrid], light: dict[str, Any]) -> np.ndarray:
    """How much light the floor keeps (H, W): the key light's shadows and the contact shadows, only where
    the camera sees the floor inside the floor polygon."""
    if plan.floor is not None:
        import shapely

        inside = np.zeros_like(on_floor)
        inside[on_floor] = shapely.contains_xy(shapely.Polygon(plan.floor), floor_xy[on_floor, 0],
                                               floor_xy[on_floor, 1])
        on_floor = inside
    discs = [(s.x, s.y, float(np.sqrt(a.template.area / np.pi)) * 0.6) for a, s in zip(assets, spots, strict=True)]
    shade = light["shadow"] * comp.key_shadow(shadows, floor_xy, on_floor)
    shade = np.maximum(shade, light["contact"] * comp.contact_shadow(discs, floor_xy, on_floor))
    return 1.0 - ndimage.gaussian_filter(shade, 0.7)


def blur_kernels(cam: Camera, people: list[dict[str, Any]], spots: list[Placed]) -> dict[int, np.ndarray]:
    """Motion-blur kernels of the people that move: walkers along their walking direction in the image."""
    kernels: dict[int, np.ndarray] = {}
    for k, p in enumerate(people):
        b = p["blur"]
        if b["on"] and b["length"] >= 0.5:
            angle = b["angle"]
            if p["pose"] == "walking":  # body front is -y, turned by the yaw
                yaw = np.deg2rad(spots[k].yaw)
                fwd = 0.3 * np.array([np.sin(yaw), -np.cos(yaw), 0.0])
                base = np.array([spots[k].x, spots[k].y, 0.0])
                uv, _ = cam.project(np.stack([base, base + fwd]))
                dv = uv[1] - uv[0]
                angle = float(np.degrees(np.arctan2(-dv[1], dv[0])))
            kernels[k] = comp.line_kernel(b["length"], angle)
    return kernels


def compose_scene(cfg: PeopleSceneConfig, site: Site, back: np.ndarray, cam: Camera, params: dict[str, Any],
                  assets: list[PersonAsset], spots: list[Placed], seed: int) -> Composed:
    """Render the placed people and composite them into the plate ``back`` (pure given its arguments)."""
    from simreal.render.post import apply_post

    plan = site.plan
    people = params["people"]
    be = backend(cfg.render.variant)
    light = _light_of(site, params["light"], float(cam.origin[2]))
    ps = people_scene(cfg, cam, assets, spots, light, seed)
    rgba, labels, depth, shadows = render_layer(be, cfg, ps, len(assets), light)
    # what the camera sees first: people, furniture or the floor
    dirs, floor_xy, floor_ok = floor_points(cam)
    furn = np.full(labels.shape, np.inf)
    if plan.furniture:
        furn = furniture_hits(cam.origin, dirs.reshape(-1, 3), plan.furniture)[0].reshape(labels.shape)
    inst_person = np.concatenate([[-1], ps.owner])
    inst_body = np.concatenate([[False], ps.is_body])
    person_px = np.where(labels > 0, inst_person[labels], -1)
    # furniture in front of the person surface at the pixel centre; for anti-aliased edge pixels, whose
    # centre misses everyone, in front of the nearest surface around them
    hidden = furn < np.where(labels > 0, depth, nearest_depth(depth))
    rgba[hidden] = 0.0
    seen_person = (labels > 0) & ~hidden
    factor = floor_factor(plan, floor_xy, floor_ok & ~np.isfinite(furn), assets, spots, shadows, light)
    kernels = blur_kernels(cam, people, spots)
    rgba = comp.blur_people(rgba, comp.owner_map(person_px), kernels)
    image = apply_post(comp.composite(back, rgba, factor, params["gain"]), params["post"], {})
    mask = np.zeros(labels.shape, np.uint16)
    anns: list[dict[str, Any]] = []
    placed = []
    for k, (a, s) in enumerate(zip(assets, spots, strict=True)):
        vis = comp.blur_mask(seen_person & (person_px == k) & inst_body[labels], kernels.get(k)) & (mask == 0)
        mask[vis] = k + 1
        placed.append({**people[k], "x": round(s.x, 4), "y": round(s.y, 4), "yaw": round(s.yaw, 3),
                       "footprint": [[round(float(x), 4), round(float(y), 4)]
                                     for x, y in s.footprint.exterior.coords[:-1]]})
        anns += annotate_person(be, cfg, ps, k, a, s, people[k], vis, plan)
    return Composed(image, mask, anns, placed, light)


def annotate_person(be: Any, cfg: PeopleSceneConfig, ps: PeopleScene, k: int, a: PersonAsset, s: Placed,
                    person: dict[str, Any], visible: np.ndarray, plan: FloorPlan) -> list[dict[str, Any]]:
    """Person ``k``'s annotations (person and/or head category); none when no pixel of it is seen."""
    cam = ps.scene.camera

    def occluders(points: np.ndarray) -> np.ndarray:
        d = points - cam.origin
        return furniture_hits(cam.origin, d / np.linalg.norm(d, axis=1, keepdims=True), plan.furniture)[0]

    members = ps.members(k)
    ann = person_annotation(be, ps.scene, a.body, ps.xfs[k], members, visible,
                            hair=[pt for pt in a.parts if pt.kind in ("hair", "hat")], occluders=occluders)
    if ann is None:
        return []
    head_xyz = a.body.head_center @ ps.xfs[k][:3, :3].T + ps.xfs[k][:3, 3]
    ann[SIMREAL]["instance_id"] = k + 1
    info = {"person_id": person["identity"] + 1, "pose": person["pose"],
            "position": [round(s.x, 4), round(s.y, 4)], "head_position": [round(float(c), 4) for c in head_xyz],
            "rotation": _rotation(cam, (s.x, s.y))}
    ann.update(info)
    cats = {n: i for i, n in enumerate(cfg.categories, start=1)}
    out = []
    if "person" in cats:
        out.append({**ann, "category_id": cats["person"]})
    if "head" in cats:
        head = head_annotation(be, ps.scene, cam, a, ps.xfs[k], set(members), ann, occluders)
        if head is not None:
            out.append({**head, **info, SIMREAL: {"instance_id": k + 1, "ignore": 0}, "category_id": cats["head"]})
    return out


def nearest_depth(depth: np.ndarray) -> np.ndarray:
    """Nearest person depth in each pixel's 3x3 neighbourhood (anti-aliased edges belong to it)."""
    finite = np.where(np.isfinite(depth), depth, 1e30)
    out = ndimage.minimum_filter(finite, size=3, mode="nearest")
    return np.where(out >= 1e30, np.inf, out)


def head_annotation(be: Any, scene: SceneData, cam: Camera, asset: PersonAsset, xf: np.ndarray,
                    members: set[int], person: dict[str, Any], occluders: Any) -> dict[str, Any] | None:
    """A head box annotation (head and hair/hat, clipped to the image) when the head is seen: the ray to
    the head's centre meets this person first (within ``JOINT_DEPTH`` of it) and no furniture before."""
    centre = (asset.body.head_center @ xf[:3, :3].T + xf[:3, 3])[None]
    uv, ok = cam.project(centre)
    if not ok[0] or not (0 <= uv[0, 0] < cam.width and 0 <= uv[0, 1] < cam.height):
        return None
    hit, dist = first_hits(be, scene, centre)
    far = float(np.linalg.norm(centre[0] - cam.origin))
    if hit[0] not in members or dist[0] < far - JOINT_DEPTH - 0.1 or occluders(centre)[0] < dist[0]:
        return None
    box = person.get("head_bbox")
    if not box:
        return None
    x0, y0 = max(0.0, box[0]), max(0.0, box[1])
    x1, y1 = min(float(cam.width), box[0] + box[2]), min(float(cam.height), box[1] + box[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return {"bbox": [x0, y0, x1 - x0, y1 - y0], "area": float((x1 - x0) * (y1 - y0)), "iscrowd": 0,
            "point": person["head_point"]}


# checks -------------------------------------------------------------------------------------------------

def scene_dry_run(cfg: PeopleSceneConfig) -> None:
    """Check everything once before any image: the anny cache, every photo and its JSON, the post
    effects, and that the maximum counts of people fit without collisions on every background."""
    from simreal.render.people.anny_cache import require_cache
    from simreal.render.post import sample_post_params

    require_cache(build=True)
    cfg_json = cfg.model_dump_json()
    for cache in (parse_config, plate):  # files may have changed since this process last read them
        cache.cache_clear()
    _, sites = parse_config(cfg_json)
    sample_post_params(np.random.default_rng(0), cfg.post)
    n_sit, n_up = cfg.people.sitting[1], cfg.people.standing[1]
    n = n_sit + n_up
    upright = [k for k, w in sorted(cfg.people.upright_poses.items()) if w > 0]
    kinds = ["sitting"] * n_sit + [upright[i % len(upright)] for i in range(n_up)]
    assets = [person_asset(cfg_json, i % cfg.people.identities, kinds[i], 0) for i in range(n)]
    for k, site in enumerate(sites):
        height = site.plan.camera_height if site.plan.camera_height is not None else cfg.camera.height[0]
        cam = site.plan.calibration.camera(height)
        try:
            _place(cfg, site.plan, cam, assets, [kd == "sitting" for kd in kinds],
                   sample_rng(cfg.seed, k, STREAM_PLACE), strict=True)
        except PlacementError as exc:
            raise ConfigError(
                f"people: only {exc.placed} of {n} people ({n_up} upright + {n_sit} seated, the maxima of "
                f"people.standing and people.sitting) fit without collisions on background {site.key}; "
                "lower the counts, or free up floor (placement.clearance, placement.max_angle, furniture)"
            ) from None

