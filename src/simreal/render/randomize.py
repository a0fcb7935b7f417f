"""Domain randomization: draw everything one image needs, as JSON-ready params, from the
sample's own generator. ``build.build_scene`` turns params into geometry; nothing else is random."""

from __future__ import annotations

from typing import Any

import numpy as np

from simreal.render.camera import sample_camera_params, sample_on_sphere_segment
from simreal.render.library import AssetLibrary, object_radius
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
        "base_color": random_color(rng),
        "roughness": float(rng.uniform(*spec.roughness)),
        "metallic": float(rng.uniform(*spec.metallic)),
        "texture": None,
    }
    if textured and rng.random() < spec.textures.probability:
        if lib.textures and (not spec.textures.procedural or rng.random() < 0.5):
            m["texture"] = {"kind": "file", "file": lib.textures[int(rng.integers(len(lib.textures)))].name}
        elif spec.textures.procedural:
            m["texture"] = sample_texture_params(rng, spec.textures.procedural)
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
            objects.append(obj)

    r_obj = object_radius(cfg, lib)
    target = np.mean([o["position"] for o in objects], axis=0) if objects else np.zeros(3)
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
        distractors.append({
            "shape": cfg.distractors.shapes[int(rng.integers(len(cfg.distractors.shapes)))],
            "size": size,
            "position": pos.tolist(),
            "quaternion": _random_rotation(rng),
            "material": sample_material(rng, cfg.material, lib),
        })

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

    bg_kind = _choose(rng, cfg.background.weights)
    bg: dict[str, Any] = {"kind": bg_kind}
    if bg_kind == "photo":
        bg.update({
            "file": lib.photos[int(rng.integers(len(lib.photos)))].name,
            "mode": cfg.background.photo_mode,
            "scale": float(rng.uniform(0.5, 1.0)),
            "cx": float(rng.random()), "cy": float(rng.random()),
            "flip": bool(rng.random() < 0.5),
        })
    elif bg_kind == "procedural":
        bg["texture"] = sample_texture_params(rng, cfg.material.textures.procedural or ["noise"])
    elif bg_kind == "ground":
        bg["material"] = sample_material(rng, cfg.material, lib)
        bg["material"]["metallic"] = 0.0
    post = sample_post_params(rng, cfg.post, sorted(lib.luts))
    return {
        "negative": negative or not objects,
        "objects": objects,
        "distractors": distractors,
        "camera": camera,
        "lights": lights,
        "environment": env,
        "background": bg,
        "post": post,
    }
