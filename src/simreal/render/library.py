"""Files a render job reads (meshes, texture and photo folders, LUTs), checked once by the driver
and cached per process in workers."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simreal.errors import AssetError, ConfigError
from simreal.render.luts import Lut3D
from simreal.render.mesh import Mesh
from simreal.render.spec import SceneConfig


@dataclass
class AssetLibrary:
    """Resolved assets of one SceneConfig."""

    meshes: dict[int, Mesh] = field(default_factory=dict)  # object index -> normalised mesh
    textures: list[Path] = field(default_factory=list)
    photos: list[Path] = field(default_factory=list)
    env_images: list[Path] = field(default_factory=list)
    hdr_maps: list[Path] = field(default_factory=list)
    photo_info: dict[str, tuple[tuple[int, int], dict[str, float]]] = field(default_factory=dict)  # size, perspective
    luts: dict[str, Lut3D] = field(default_factory=dict)


BUILTIN_PHOTOS = "builtin:photos"
BUILTIN_GROUND_PHOTOS = "builtin:ground-photos"
#: Builtin photos that show a ground plane an object can stand on, with their perspective (estimated
#: by eye: horizon row, camera height in metres, horizontal field of view; see render.perspective).
GROUND_PHOTO_PERSPECTIVES: dict[str, dict[str, float]] = {
    "skimage-camera.png": {"horizon": 0.45, "camera_height": 1.1, "fov": 50.0},
    "skimage-motorcycle_left.png": {"horizon": 0.3, "camera_height": 1.0, "fov": 55.0},
    "skimage-motorcycle_right.png": {"horizon": 0.3, "camera_height": 1.0, "fov": 55.0},
    "skimage-coffee.png": {"horizon": -0.5, "camera_height": 0.35, "fov": 50.0},
    "skimage-brick.png": {"horizon": -1.0, "camera_height": 1.0, "fov": 50.0},
    "skimage-grass.png": {"horizon": -2.5, "camera_height": 0.8, "fov": 45.0},
    "skimage-gravel.png": {"horizon": -2.5, "camera_height": 0.8, "fov": 45.0},
}


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it (workers start faster)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def builtin_photos() -> Path:
    """A folder of the photographs that ship inside installed packages (scikit-learn, matplotlib,
    scikit-image when present), linked into a per-user cache folder."""
    import os
    import tempfile

    sources = []
    for package, sub in (("sklearn", "datasets/images"), ("matplotlib", "mpl-data/sample_data"), ("skimage", "data")):
        base = _package_dir(package)
        if base is not None:
            sources.append((package, base / sub))
    uid = os.getuid() if hasattr(os, "getuid") else 0
    folder = Path(tempfile.gettempdir()) / f"simreal-builtin-photos-{uid}"
    folder.mkdir(parents=True, exist_ok=True)
    for package, src in sources:
        if not src.is_dir():
            continue
        for f in sorted(src.iterdir()):
            if f.suffix.lower() in (".jpg", ".jpeg", ".png") and f.stat().st_size > 20_000:
                link = folder / f"{package}-{f.name}"
                if not link.exists():
                    try:
                        link.symlink_to(f)
                    except FileExistsError:
                        pass
    return folder


@functools.lru_cache(maxsize=1)
def builtin_ground_photos() -> Path:
    """The builtin photos that show a ground plane, each with its perspective JSON (per-user cache)."""
    import json

    from simreal.runtime.io import atomic_write_text

    src = builtin_photos()
    folder = src.parent / f"{src.name}-ground"
    folder.mkdir(parents=True, exist_ok=True)
    for name, meta in GROUND_PHOTO_PERSPECTIVES.items():
        if not (src / name).exists():
            continue
        link = folder / name
        if not link.exists():
            try:
                link.symlink_to((src / name).resolve())
            except FileExistsError:
                pass
        sidecar = folder / (Path(name).stem + ".json")
        text = json.dumps(meta, sort_keys=True)
        if not sidecar.exists() or sidecar.read_text() != text:
            atomic_write_text(sidecar, text)
    return folder


def resolve_folder(path: str) -> Path:
    """A folder path from a config, resolving ``builtin:photos`` and ``builtin:ground-photos``."""
    if path == BUILTIN_PHOTOS:
        return builtin_photos()
    if path == BUILTIN_GROUND_PHOTOS:
        return builtin_ground_photos()
    return Path(path)


def _folder(path: str, key: str) -> list[Path]:
    from simreal.render.textures import load_texture_folder

    path = str(resolve_folder(path))
    try:
        return load_texture_folder(path)
    except AssetError as exc:
        raise AssetError(f"{key}: {exc}") from None


def _photo_info(photos: list[Path]) -> dict[str, tuple[tuple[int, int], dict[str, float]]]:
    """Size and perspective JSON (``simreal.render.perspective``) of every photo, by file name."""
    from PIL import Image

    from simreal.render.perspective import read_photo_meta

    out = {}
    for p in photos:
        with Image.open(p) as im:
            size = im.size
        out[p.name] = (size, read_photo_meta(p))
    return out


def object_radius(cfg: SceneConfig, lib: AssetLibrary) -> float:
    """Largest bounding-sphere radius a target can have (size x unit-normalised mesh)."""
    r = 0.0
    for i, o in enumerate(cfg.objects):
        if o.asset.kind == "mesh" and i in lib.meshes:
            v = lib.meshes[i].vertices
            rad = float(np.linalg.norm(v, axis=1).max())
        else:
            rad = 0.5 * np.sqrt(3.0)  # a unit-extent object fits in the unit cube
        r = max(r, rad * o.size[1] + o.spread)
    return r


def build_library(cfg: SceneConfig) -> AssetLibrary:
    """Load and check every file the config names; raise AssetError/ConfigError naming the key."""
    from simreal.render.meshio import load_mesh

    lib = AssetLibrary()
    for i, o in enumerate(cfg.objects):
        if o.asset.kind == "mesh":
            try:
                lib.meshes[i] = load_mesh(o.asset.path, normalize=True)
            except AssetError as exc:
                raise AssetError(f"objects[{i}].asset.path: {exc}") from None
    if cfg.material.textures.folder:
        lib.textures = _folder(cfg.material.textures.folder, "material.textures.folder")
    if cfg.background.photo_folder and cfg.background.weights.get("photo", 0) > 0:
        lib.photos = _folder(cfg.background.photo_folder, "background.photo_folder")
    if cfg.lighting.environment.kind == "image":
        lib.env_images = _folder(str(cfg.lighting.environment.folder), "lighting.environment.folder")
    if cfg.lighting.environment.kind == "hdr":
        from simreal.render.lighting import hdr_files

        lib.hdr_maps = hdr_files(str(cfg.lighting.environment.folder))
    if lib.photos and cfg.placement.grounded:
        lib.photo_info = _photo_info(lib.photos)
    from simreal.render.luts import generated_luts, load_cube_folder

    lib.luts = dict(generated_luts())
    lut_folder = cfg.post.get("lut_folder") if isinstance(cfg.post, dict) else None
    if lut_folder:
        try:
            lib.luts.update(load_cube_folder(lut_folder))
        except AssetError as exc:
            raise AssetError(f"post.lut_folder: {exc}") from None
    r_obj = object_radius(cfg, lib)
    if cfg.camera.radius[0] <= r_obj * 1.05:
        raise ConfigError(
            f"camera.radius: minimum {cfg.camera.radius[0]} places the camera inside or against the object "
            f"(its bounding radius is up to {r_obj:.3f}); expected a radius above {r_obj * 1.05:.3f}"
        )
    return lib


@functools.lru_cache(maxsize=4)
def cached_library(cfg_json: str) -> tuple[SceneConfig, AssetLibrary]:
    """Worker-side cache: parse the config JSON and build its library once per process."""
    cfg = SceneConfig.model_validate_json(cfg_json)
    return cfg, build_library(cfg)
