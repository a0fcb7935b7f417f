"""Turn sampled params into a :class:`SceneData` (world-space meshes, materials, lights) and a
background image. Pure: the same params always give the same scene."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from simreal.render.camera import camera_from_params
from simreal.render.film import srgb_decode as srgb_to_linear
from simreal.render.film import srgb_encode as linear_to_srgb
from simreal.render.library import AssetLibrary, resolve_folder
from simreal.render.mesh import Mesh
from simreal.render.primitives import primitive
from simreal.render.randomize import _temperature_rgb
from simreal.render.scene import Instance, Light, Material, SceneData
from simreal.render.spec import SceneConfig
from simreal.render.textures import load_texture, make_texture
from simreal.render.wear import apply_wear


@functools.lru_cache(maxsize=64)
def cached_primitive(kind: str, segments: int = 0) -> Mesh:
    """A primitive mesh (pure, so cached per process); ``segments`` 0 keeps the default tessellation."""
    if segments and kind in ("sphere", "cylinder", "cone", "torus"):
        kw = {"segments": segments}
        if kind == "sphere":
            kw["rings"] = max(4, segments // 2)
        return primitive(kind, **kw)
    return primitive(kind)


@functools.lru_cache(maxsize=64)
def cached_photo(path: str) -> np.ndarray:
    """A decoded photo (uint8 RGB), cached per process: backgrounds repeat across images."""
    return load_texture(path)


def _rot_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _rot_axis(axis: np.ndarray, deg: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = np.deg2rad(deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def _quat(q: list[float]) -> np.ndarray:
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _affine(rot: np.ndarray, scale: float, pos: list[float]) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rot * scale
    m[:3, 3] = pos
    return m


def object_transform(o: dict[str, Any]) -> np.ndarray:
    """4x4 object-to-world transform of a sampled target."""
    r = o["rotation"]
    ax = r["tilt_axis"]
    tilt_axis = np.array([np.cos(np.deg2rad(ax)), np.sin(np.deg2rad(ax)), 0.0])
    rot = _rot_axis(tilt_axis, r["tilt"]) @ _rot_z(r["yaw"])
    return _affine(rot, o["size"], o["position"])


def material_from(m: dict[str, Any], cfg: SceneConfig, lib: AssetLibrary) -> Material:
    """A Material from sampled material params."""
    tex = None
    size = cfg.material.textures.size
    if m.get("texture"):
        t = m["texture"]
        if t.get("kind") == "file":
            folder = resolve_folder(str(cfg.material.textures.folder))
            tex = load_texture(folder / t["file"], (size, size))
        else:
            tex = make_texture(t, (size, size))
    roughness = float(m["roughness"])
    if m.get("wear"):  # dust, grime and scratches over the texture (or the plain colour)
        if tex is None:
            tex = make_texture({"kind": "solid", "colors": [m["base_color"]]}, (size, size))
        tex, rough_map = apply_wear(tex, np.full(tex.shape[:2], roughness, np.float32), m["wear"])
        roughness = float(rough_map.mean())
    return Material(tuple(m["base_color"]), tex, roughness, m["metallic"])


def _target_instances(o: dict[str, Any], cfg: SceneConfig, lib: AssetLibrary, label: int) -> list[Instance]:
    xf = object_transform(o)
    if o["kind"] == "canister":
        from simreal.render.canister import canister_parts, canister_textures

        parts = canister_parts(o["canister"])
        centre = np.eye(4)
        centre[2, 3] = -0.5  # object space has the base at z=0 and the cap top at z=1
        xf = xf @ centre
        size = cfg.material.textures.size
        texs = canister_textures(o["canister"], size=(size, 2 * size), small_part_step=2 if size <= 64 else 1)
        out = []
        for name, mesh in parts.items():
            tex = texs.get(name)
            rough = texs.get(f"{name}_roughness")
            metallic = o["canister"].get("metallic", {}).get(name, 0.0)
            mat = Material((0.6, 0.6, 0.6), tex, float(np.mean(rough)) if rough is not None else 0.5,
                           float(metallic))
            out.append(Instance(mesh.transformed(xf), mat, label, o["category_id"], "target"))
        return out
    mesh: Mesh = lib.meshes[o["object"]] if o["kind"] == "mesh" else cached_primitive(o["shape"])
    return [Instance(mesh.transformed(xf), material_from(o["material"], cfg, lib), label, o["category_id"])]


def build_scene(cfg: SceneConfig, lib: AssetLibrary, params: dict[str, Any], seed: int) -> SceneData:
    """The scene described by ``params``; targets carry labels 1..N in sampling order."""
    w, h = cfg.resolution
    cam = camera_from_params(params["camera"], w, h)
    instances: list[Instance] = []
    for k, o in enumerate(params["objects"], start=1):
        parts = _target_instances(o, cfg, lib, k)
        if "placement" in o:
            parts = _placed(parts, o, cfg, lib)
        instances.extend(parts)
    for d in params["distractors"]:
        xf = _affine(_quat(d["quaternion"]), d["size"], d["position"])
        mesh = cached_primitive(d["shape"], cfg.distractors.segments).transformed(xf)
        if d.get("grounded"):
            mesh = mesh.transformed(_affine(np.eye(3), 1.0, [0.0, 0.0, -float(mesh.vertices[:, 2].min())]))
        instances.append(Instance(mesh, material_from(d["material"], cfg, lib),
                                  0, 0, "distractor"))
    bg = params["background"]
    if bg["kind"] == "ground":
        zmin = min((float(i.mesh.vertices[:, 2].min()) for i in instances if i.role == "target"), default=-0.5)
        if cfg.placement.grounded:
            zmin = 0.0
        plane = primitive("plane", size=40.0)
        instances.append(Instance(plane.transformed(_affine(np.eye(3), 1.0, [0.0, 0.0, zmin - 1e-3])),
                                  material_from(bg["material"], cfg, lib), 0, 0, "ground"))
    lights = []
    for light in params["lights"]:
        rgb = np.asarray(_temperature_rgb(light["temperature"])) * light["intensity"]
        if light["kind"] in ("point", "spot"):
            d2 = float(np.sum(np.subtract(light["position"], light["target"]) ** 2))
            rgb = rgb * d2  # "intensity" is the irradiance at the target
        lights.append(Light(light["kind"], tuple(light["position"]), tuple(light["target"]),
                            tuple(float(c) for c in rgb), light.get("cutoff", 30.0)))
    env = params["environment"]
    env_rgb = None
    env_image = None
    env_to_world = None
    env_tint = None
    env_scale = float(env["intensity"])
    if env["kind"] == "constant":
        env_rgb = tuple(float(c) * env["intensity"] for c in _temperature_rgb(env["temperature"]))
    elif env["kind"] == "image":
        env_image = load_texture(resolve_folder(str(cfg.lighting.environment.folder)) / env["file"], (256, 512))
    elif env["kind"] == "hdr":
        from simreal.render.lighting import hdr_lighting

        env_image, env_to_world, env_scale, tint = hdr_lighting(str(cfg.lighting.environment.folder), env,
                                                                bake=bool(lights))
        env_tint = None if tint is None else tuple(float(c) for c in tint)
    if bg["kind"] == "photo" and bg.get("mode") == "envmap":
        env_image = load_texture(resolve_folder(str(cfg.background.photo_folder)) / bg["file"], (256, 512))
        env_rgb = None
    hide = bg["kind"] in ("procedural",) or (bg["kind"] == "photo" and bg.get("mode") != "envmap")
    if cfg.photographic:  # the environment behind is composited exactly (compositing.finish), EV applied there
        hide = True
    return SceneData(
        camera=cam, instances=instances, lights=lights, env_rgb=env_rgb, env_image=env_image,
        env_scale=env_scale, env_to_world=env_to_world, env_tint=env_tint, hide_environment=hide, spp=cfg.render.spp,
        max_depth=cfg.render.max_depth, pixel_filter=cfg.render.filter, seed=seed,
        exposure=0.0 if cfg.photographic else params["camera"]["exposure"],
    )


def _placed(parts: list[Instance], o: dict[str, Any], cfg: SceneConfig, lib: AssetLibrary) -> list[Instance]:
    """A target's parts resting per its placement params, plus its support box."""
    from simreal.render.placement import place

    pl = o["placement"]
    meshes = [p.mesh for p in parts]
    if pl["mode"] == "floating":
        lift = pl.get("lift", 0.0) * o["size"] - min(float(m.vertices[:, 2].min()) for m in meshes)
        moved = [m.transformed(_affine(np.eye(3), 1.0, [0.0, 0.0, lift])) for m in meshes]
        return [dataclasses.replace(p, mesh=m) for p, m in zip(parts, moved, strict=True)]
    moved, support = place(meshes, pl, o["rotation"]["tilt_axis"], o["size"])
    out = [dataclasses.replace(p, mesh=m) for p, m in zip(parts, moved, strict=True)]
    if support is not None:
        out.append(Instance(support, material_from(pl["support"]["material"], cfg, lib), 0, 0, "support"))
    return out


def background_image(cfg: SceneConfig, params: dict[str, Any]) -> np.ndarray | None:
    """The sRGB float (H, W, 3) image composited behind the render, or None."""
    w, h = cfg.resolution
    bg = params["background"]
    if bg["kind"] == "procedural":
        return make_texture(bg["texture"], (h, w)).astype(np.float32) / 255.0
    if bg["kind"] == "photo" and bg.get("mode") != "envmap":
        from PIL import Image

        from simreal.render.randomize import photo_crop_box

        img = cached_photo(str(resolve_folder(str(cfg.background.photo_folder)) / bg["file"]))
        x0, y0, side_w, side_h = photo_crop_box(bg, (img.shape[1], img.shape[0]), (w, h))

        resample = (Image.Resampling.LANCZOS if cfg.background.photo_resample == "lanczos"
                    else Image.Resampling.BILINEAR)
        crop = Image.fromarray(img).resize((w, h), resample, box=(x0, y0, x0 + side_w, y0 + side_h))
        arr = np.asarray(crop, dtype=np.float32) / 255.0
        return arr[:, ::-1] if bg.get("flip") else arr
    return None


def composite(rgba_linear: np.ndarray, background_srgb: np.ndarray | None) -> np.ndarray:
    """Premultiplied linear RGBA over a background, tone-mapped to sRGB uint8."""
    rgb = rgba_linear[..., :3]
    if background_srgb is not None:
        alpha = np.clip(rgba_linear[..., 3:4], 0.0, 1.0)
        rgb = rgb + (1.0 - alpha) * srgb_to_linear(background_srgb)
    return (linear_to_srgb(rgb) * 255.0 + 0.5).astype(np.uint8)
