"""Domain randomization: draw everything one image needs, as JSON-ready params, from the
sample's own generator. ``build.build_scene`` turns params into geometry; nothing else is random."""

from __future__ import annotations

from typing import Any

import numpy as np

from simreal.render.camera import sample_camera_params, sample_on_sphere_segment
from simreal.render.library import AssetLibrary, object_radius
from simreal.render.lighting import sample_hdr_params
from simreal.render.spec import MaterialSpec, SceneConfig
from simreal.render.textures import random_color, sample_texture_params
from simreal.render.wear import sample_wear_params


def _rotation_params(rng: np.random.Generator, tilt: tuple[float, float]) -> dict[str, float]:
    return {"yaw": float(rng.uniform(0.0, 360.0)), "tilt": float(rng.uniform(*tilt)),
            "tilt_axis": float(rng.uniform(0.0, 360.0))}


def _random_rotation(rng: np.random.Generator) -> list[float]:
    """A uniformly random rotation as a unit quaternion (w, x, y, z)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return q.tolist()


def sample_material(rng: np.random.Generator, spec: MaterialSpec, lib: AssetLibrary,
                    textured: bool = True) -> dict[str, Any]:
    """Base colour, roughness, metallic and an optional texture (procedural or from the folder)."""
    m: dict[str, Any] = {
        "base_color": random_color(rng, saturation=spec.saturation, value=spec.value),
        "roughness": float(rng.uniform(*spec.roughness)),
        "metallic": float(rng.uniform(*spec.metallic)),
        "texture": None,
    }
    if textured and rng.random() < spec.textures.probability:
        if lib.textures and (not spec.textures.procedural or rng.random() < 0.5):
            m["texture"] = {"kind": "file", "file": lib.textures[int(rng.integers(len(lib.textures)))].name}
        elif spec.textures.procedural:
            m["texture"] = sample_texture_params(rng, spec.textures.procedural, spec.saturation, spec.value)
    m["wear"] = sample_wear_params(rng, spec.wear) if textured and rng.random() < spec.wear_probability else None
    return m


def _choose(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = sorted(weights)
    w = np.array([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _temperature_rgb(kelvin: float) -> list[float]:
    """Approximate sRGB colour of a black body (Tanner Helland's fit), normalised to max 1."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * np.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307)
    rgb = np.clip(np.array([r, g, b]) / 255.0, 0.0, 1.0)
    return (rgb / rgb.max()).tolist()


def sample_params(cfg: SceneConfig, lib: AssetLibrary, rng: np.random.Generator) -> dict[str, Any]:
    """Everything sampled for one image."""
    from simreal.render.canister import sample_canister_params
    from simreal.render.post import sample_post_params

    cats = cfg.category_names
    grounded = cfg.placement.grounded
    negative = bool(rng.random() < cfg.negatives)
    objects: list[dict[str, Any]] = []
    for i, o in enumerate(cfg.objects):
        n = 0 if negative else int(rng.integers(o.count[0], o.count[1] + 1))
        for _ in range(n):
            offset = [0.0, 0.0, 0.0] if not objects else (rng.uniform(-1, 1, 2) * o.spread).tolist() + [0.0]
            obj: dict[str, Any] = {
                "object": i,
                "category": o.category,
                "category_id": cats.index(o.category) + 1,
                "kind": o.asset.kind,
                "size": float(rng.uniform(*o.size)),
                "position": [float(x) for x in offset],
                "rotation": _rotation_params(rng, o.tilt),
            }
            if o.asset.kind == "canister":
                obj["canister"] = sample_canister_params(rng, o.asset.canister)
            else:
                obj["shape"] = o.asset.shape if o.asset.kind == "primitive" else None
                obj["material"] = sample_material(rng, cfg.material, lib)
            if grounded:
                obj["placement"] = _sample_grounding(rng, cfg, obj)
            objects.append(obj)

    r_obj = object_radius(cfg, lib)
    target = np.mean([o["position"] for o in objects], axis=0) if objects else np.zeros(3)
    if grounded:
        target = target + np.array([0.0, 0.0, np.mean([_centre_height(o) for o in objects]) if objects else 0.5])
        bg = _sample_background(rng, cfg, lib)
        camera = _ground_camera(rng, cfg, lib, bg, target)
    else:
        camera = sample_camera_params(rng, cfg.camera, target, r_obj)

    cam_pos = np.asarray(camera["origin"])
    distractors = []
    nd = int(rng.integers(cfg.distractors.count[0], cfg.distractors.count[1] + 1))
    to_cam = cam_pos - target
    dist = float(np.linalg.norm(to_cam))
    axis = to_cam / max(dist, 1e-9)
    for _ in range(nd):
        size = float(rng.uniform(*cfg.distractors.size))
        along = float(rng.uniform(0.0, 0.6)) * dist
        lateral = rng.normal(size=3)
        lateral -= axis * lateral.dot(axis)
        lateral /= max(np.linalg.norm(lateral), 1e-9)
        lateral *= float(rng.uniform(*cfg.distractors.distance)) * max(r_obj, 0.5)
        pos = target + axis * along + lateral
        if np.linalg.norm(pos - cam_pos) < 2.0 * size + 0.05:  # never swallow the camera
            pos = target + lateral
        d_params = {
            "shape": cfg.distractors.shapes[int(rng.integers(len(cfg.distractors.shapes)))],
            "size": size,
            "position": pos.tolist(),
            "quaternion": _random_rotation(rng),
            "material": sample_material(rng, cfg.material, lib),
        }
        if grounded:  # clutter resting on the ground, turned about the vertical only
            yaw = float(rng.uniform(0.0, np.pi))
            d_params.update(grounded=True, quaternion=[float(np.cos(yaw)), 0.0, 0.0, float(np.sin(yaw))])
        distractors.append(d_params)

    lights = []
    ls = cfg.lighting.lights
    for _ in range(int(rng.integers(ls.count[0], ls.count[1] + 1))):
        kind = ls.kinds[int(rng.integers(len(ls.kinds)))]
        d = sample_on_sphere_segment(rng, ls.theta, (0.0, 360.0))
        distance = float(rng.uniform(*ls.distance))
        lights.append({
            "kind": kind,
            "position": (target + d * distance).tolist(),
            "target": target.tolist(),
            "intensity": float(rng.uniform(*ls.intensity)),
            "temperature": float(rng.uniform(*ls.temperature)),
            "cutoff": float(rng.uniform(20.0, 45.0)),
        })
    env_spec = cfg.lighting.environment
    env: dict[str, Any] = {"kind": env_spec.kind, "intensity": float(rng.uniform(*env_spec.intensity))}
    if env_spec.kind == "image":
        env["file"] = lib.env_images[int(rng.integers(len(lib.env_images)))].name
    elif env_spec.kind == "constant":
        env["temperature"] = float(rng.uniform(4000.0, 9000.0))
    elif env_spec.kind == "hdr":
        env.update(sample_hdr_params(rng, lib.hdr_maps, env_spec.intensity, env_spec.rotation,
                                     env_spec.white_balance))

    if not grounded:
        bg = _sample_background(rng, cfg, lib)
    post = sample_post_params(rng, cfg.post, sorted(lib.luts))
    out = {
        "negative": negative or not objects,
        "objects": objects,
        "distractors": distractors,
        "camera": camera,
        "lights": lights,
        "environment": env,
        "background": bg,
        "post": post,
    }
    if cfg.photographic:
        out["film"] = {"key": float(rng.uniform(*cfg.film.key))}
    return out


def _sample_background(rng: np.random.Generator, cfg: SceneConfig, lib: AssetLibrary) -> dict[str, Any]:
    """The background kind and its params."""
    bg_kind = _choose(rng, cfg.background.weights)
    bg: dict[str, Any] = {"kind": bg_kind}
    if bg_kind == "photo":
        bg.update({
            "file": lib.photos[int(rng.integers(len(lib.photos)))].name,
            "mode": cfg.background.photo_mode,
            "scale": float(rng.uniform(*cfg.background.photo_scale)),
            "cx": float(rng.random()), "cy": float(rng.random()),
            "flip": bool(rng.random() < 0.5),
        })
    elif bg_kind == "procedural":
        bg["texture"] = sample_texture_params(rng, cfg.material.textures.procedural or ["noise"])
    elif bg_kind == "ground":
        bg["material"] = sample_material(rng, cfg.material, lib)
        bg["material"]["metallic"] = 0.0
    return bg


def _support_material(rng: np.random.Generator) -> dict[str, Any]:
    """A crate, kerb or step: muted colour, rough, often with a noise texture."""
    from simreal.render.textures import sample_texture_params

    colour = random_color(rng, saturation=(0.0, 0.35), value=(0.25, 0.8))
    tex = sample_texture_params(rng, ["noise"])
    tex["colors"] = [colour, [float(c) * float(rng.uniform(0.6, 0.9)) for c in colour]]
    return {"base_color": colour, "roughness": float(rng.uniform(0.6, 1.0)), "metallic": 0.0,
            "texture": tex if rng.random() < 0.7 else None, "wear": None}


def _sample_grounding(rng: np.random.Generator, cfg: SceneConfig, obj: dict[str, Any]) -> dict[str, Any]:
    """Placement params of one object in a grounded scene (its rotation's tilt follows the mode)."""
    from simreal.render.placement import sample_placement

    pl = sample_placement(rng, cfg.placement.weights, cfg.placement.lean, cfg.placement.support_height)
    lift = float(rng.uniform(0.2, 1.0))
    if pl["mode"] == "floating":
        pl["lift"] = lift  # above the ground, never through it
    else:
        obj["rotation"]["tilt"] = pl["tilt"]
    if "support" in pl:
        pl["support"]["material"] = _support_material(rng)
    return pl


def _centre_height(obj: dict[str, Any]) -> float:
    """Roughly how high an object's centre sits once placed (for aiming the camera)."""
    pl = obj.get("placement", {})
    size = obj["size"]
    mode = pl.get("mode", "floating")
    base = pl["support"]["height"] * size if mode == "supported" else 0.0
    if mode == "floating":
        base = pl.get("lift", 0.0) * size
    tilt = np.deg2rad(obj["rotation"]["tilt"])
    return base + 0.5 * size * (abs(np.cos(tilt)) + 0.4 * abs(np.sin(tilt)))


def _ground_camera(rng: np.random.Generator, cfg: SceneConfig, lib: AssetLibrary, bg: dict[str, Any],
                   target: np.ndarray) -> dict[str, Any]:
    """A level camera matching the background's perspective (the photo's JSON, else sampled)."""
    from simreal.render.perspective import crop_perspective, ground_camera

    spec, g = cfg.camera, cfg.background.ground
    w, h = cfg.resolution
    meta: dict[str, float] = {}
    if bg["kind"] == "photo" and bg.get("mode") != "envmap":
        size, photo_meta = lib.photo_info[bg["file"]]
        meta = crop_perspective(photo_meta, photo_crop_box(bg, size, (w, h)), size)
    fov = meta.get("fov", float(rng.uniform(*spec.fov)))
    horizon = meta.get("horizon", float(rng.uniform(*g.horizon)))
    height_m = meta.get("camera_height", float(rng.uniform(*g.camera_height)) if g.camera_height else None)
    cam = ground_camera(rng, w, h, fov, horizon, target, spec.radius,
                        None if height_m is None else height_m / g.unit_m, rows=g.object_rows,
                        roll=meta.get("roll", 0.0))
    cam["exposure"] = float(rng.uniform(*spec.exposure))
    return cam


def photo_crop_box(bg: dict[str, Any], photo_size: tuple[int, int], resolution: tuple[int, int]
                   ) -> tuple[float, float, float, float]:
    """(x0, y0, width, height) in photo pixels of the crop a photo background shows."""
    iw, ih = photo_size
    w, h = resolution
    side_w = bg["scale"] * min(iw, ih * w / h)
    side_h = side_w * h / w
    return bg["cx"] * (iw - side_w), bg["cy"] * (ih - side_h), side_w, side_h
