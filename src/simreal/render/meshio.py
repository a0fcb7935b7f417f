"""Mesh import through trimesh: OBJ, PLY, STL, GLB and glTF into one ``Mesh``.

Scenes (several geometries, node transforms) are flattened and concatenated into one mesh. UVs are
kept when every part has them; vertex normals are those in the file or computed by trimesh.
Loaded meshes are cached per process by (resolved path, mtime, size, normalize); each call returns
a fresh copy, so callers may modify the arrays. They are also cached on disk as plain arrays
(``$SIMREAL_CACHE_DIR/meshes``, default ``~/.cache/simreal/meshes``; ``SIMREAL_MESH_CACHE=0`` turns it
off), so that render workers, which each load the scene's meshes once, read them back with numpy
instead of importing trimesh and parsing the file again (about half a second per worker).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from simreal.errors import AssetError
from simreal.render.mesh import Mesh

MESH_SUFFIXES: tuple[str, ...] = (".obj", ".ply", ".stl", ".glb", ".gltf")
_EXPECTED = "an OBJ, PLY, STL, GLB or glTF mesh with faces"
_CACHE: OrderedDict[tuple, Mesh] = OrderedDict()
_CACHE_SIZE = 64


def _copy(m: Mesh) -> Mesh:
    return Mesh(m.vertices.copy(), m.faces.copy(), None if m.normals is None else m.normals.copy(),
                None if m.uvs is None else m.uvs.copy(), m.name, dict(m.meta))


def clear_mesh_cache() -> None:
    """Forget every cached mesh."""
    _CACHE.clear()


def load_mesh(path: str | Path, normalize: bool = True) -> Mesh:
    """Load a mesh file as one ``Mesh``; with ``normalize`` centre its bounding box at the origin and
    scale it so the largest extent is 1.0 (``meta["normalize_scale"]``, ``meta["normalize_offset"]``:
    ``v_normalised = (v - offset) * scale``).

    Raises AssetError naming the file for a missing file, an unsupported extension, a file trimesh
    cannot read, or a mesh without faces.
    """
    p = Path(path)
    if p.suffix.lower() not in MESH_SUFFIXES:
        raise AssetError(f"mesh file {p}: unsupported extension {p.suffix or '(none)'!r}; "
                         f"expected {_EXPECTED} ({', '.join(MESH_SUFFIXES)})")
    try:
        st = p.resolve().stat()
    except OSError:
        raise AssetError(f"mesh file not found: {p} (expected {_EXPECTED})") from None
    if not p.is_file():
        raise AssetError(f"mesh path {p} is not a file (expected {_EXPECTED})")
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size, bool(normalize))
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return _copy(hit)
    disk = _disk_path(key)
    mesh = _from_disk(disk) if disk is not None else None
    if mesh is None:
        mesh = _read(p, normalize)
        if disk is not None:
            _to_disk(disk, mesh)
    _CACHE[key] = mesh
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return _copy(mesh)


_DISK_FORMAT = 1  # bump when _read's output changes


def _disk_path(key: tuple) -> Path | None:
    if os.environ.get("SIMREAL_MESH_CACHE", "1") == "0":
        return None
    root = Path(os.environ.get("SIMREAL_CACHE_DIR") or Path.home() / ".cache" / "simreal") / "meshes"
    digest = hashlib.sha256(repr((_DISK_FORMAT, *key)).encode()).hexdigest()[:32]
    return root / f"{digest}.npz"


def _from_disk(path: Path) -> Mesh | None:
    """The cached mesh, or None when absent or unreadable (then the file is parsed again)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return Mesh(z["vertices"], z["faces"], z["normals"], z["uvs"] if "uvs" in z else None,
                        name=str(z["name"]), meta=json.loads(str(z["meta"])))
    except (OSError, ValueError, KeyError):
        return None


def _to_disk(path: Path, mesh: Mesh) -> None:
    """Store ``mesh`` (written to a temporary name, then renamed); a read-only cache is no error."""
    from simreal.runtime.io import atomic_write_bytes

    arrays = {"vertices": mesh.vertices, "faces": mesh.faces, "normals": mesh.normals,
              "name": np.array(mesh.name), "meta": np.array(json.dumps(mesh.meta))}
    if mesh.uvs is not None:
        arrays["uvs"] = mesh.uvs
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue(), durable=False)
    except OSError:
        pass


def _read(p: Path, normalize: bool) -> Mesh:
    import trimesh

    try:
        loaded = trimesh.load(str(p), force=None)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a broken file
        raise AssetError(f"mesh file {p} could not be read ({exc.__class__.__name__}: {exc}); "
                         f"expected {_EXPECTED}") from None
    parts: list[trimesh.Trimesh] = []
    if isinstance(loaded, trimesh.Scene):
        try:
            dumped = loaded.dump(concatenate=False)
        except Exception as exc:  # noqa: BLE001
            raise AssetError(f"mesh file {p}: scene could not be flattened ({exc}); "
                             f"expected {_EXPECTED}") from None
        parts = [g for g in dumped if isinstance(g, trimesh.Trimesh)]
    elif isinstance(loaded, trimesh.Trimesh):
        parts = [loaded]
    parts = [g for g in parts if len(g.faces) > 0]
    if not parts:
        raise AssetError(f"mesh file {p} has no faces (expected {_EXPECTED})")
    verts, faces, norms, uvs = [], [], [], []
    offset = 0
    for g in parts:
        verts.append(np.asarray(g.vertices, dtype=np.float64))
        faces.append(np.asarray(g.faces, dtype=np.int64) + offset)
        norms.append(np.asarray(g.vertex_normals, dtype=np.float64))
        uv = getattr(g.visual, "uv", None) if g.visual is not None else None
        uvs.append(None if uv is None or len(uv) != len(g.vertices) else np.asarray(uv, dtype=np.float64))
        offset += len(g.vertices)
    v = np.concatenate(verts)
    if not np.isfinite(v).all():
        raise AssetError(f"mesh file {p} has non-finite vertex coordinates (expected {_EXPECTED})")
    uv_all = None
    if all(u is not None for u in uvs):
        uv_all = np.concatenate(uvs)
        if uv_all.min() < 0.0 or uv_all.max() > 1.0:  # tiled UVs: wrap into [0, 1]
            uv_all = uv_all - np.floor(uv_all)
    meta: dict = {"source": str(p), "format": p.suffix.lower().lstrip("."), "parts": len(parts)}
    if normalize:
        lo, hi = v.min(axis=0), v.max(axis=0)
        extent = float((hi - lo).max())
        if extent <= 0.0:
            raise AssetError(f"mesh file {p} is degenerate (zero size); expected {_EXPECTED}")
        centre = (lo + hi) / 2.0
        scale = 1.0 / extent
        v = (v - centre) * scale
        meta.update(normalize_scale=scale, normalize_offset=centre.tolist(), source_extent=(hi - lo).tolist())
    return Mesh(v, np.concatenate(faces), np.concatenate(norms), uv_all, name=p.stem, meta=meta)
