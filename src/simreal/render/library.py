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
    luts: dict[str, Lut3D] = field(default_factory=dict)


BUILTIN_PHOTOS = "builtin:photos"


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


def resolve_folder(path: str) -> Path:
    """A folder path from a config, resolving ``builtin:photos``."""
    return builtin_photos() if path == BUILTIN_PHOTOS else Path(path)


def _folder(path: str, key: str) -> list[Path]:
    from simreal.render.textures import load_texture_folder

    path = str(resolve_folder(path))
    try:
        return load_texture_folder(path)
    except AssetError as exc:
        raise AssetError(f"{key}: {exc}") from None


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
