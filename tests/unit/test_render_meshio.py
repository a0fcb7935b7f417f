"""Mesh import: every format round-trips through trimesh; bad files name themselves."""

from __future__ import annotations

import os

import numpy as np
import pytest
import trimesh

from simreal.errors import AssetError
from simreal.render import meshio
from simreal.render.meshio import load_mesh


def _box() -> trimesh.Trimesh:
    box = trimesh.creation.box((2.0, 3.0, 4.0))
    box.apply_translation((5.0, -1.0, 2.0))
    uv = np.random.default_rng(0).random((len(box.vertices), 2))
    box.visual = trimesh.visual.TextureVisuals(uv=uv)
    return box


@pytest.mark.parametrize("ext", ["obj", "ply", "stl", "glb"])
def test_round_trip_and_normalisation(tmp_path, ext):
    path = tmp_path / f"box.{ext}"
    _box().export(path)
    raw = load_mesh(path, normalize=False)
    assert raw.faces.shape == (12, 3) and raw.vertices.dtype == np.float32
    assert np.allclose(raw.bounds, [[4.0, -2.5, 0.0], [6.0, 0.5, 4.0]], atol=1e-5)
    assert raw.normals is not None and np.allclose(np.linalg.norm(raw.normals, axis=1), 1.0, atol=1e-5)
    assert trimesh.Trimesh(raw.vertices, raw.faces).volume == pytest.approx(24.0, rel=1e-5)
    m = load_mesh(path)
    assert np.allclose(m.bounds, [[-0.25, -0.375, -0.5], [0.25, 0.375, 0.5]], atol=1e-6)
    assert m.meta["normalize_scale"] == pytest.approx(0.25)
    assert np.allclose(m.meta["normalize_offset"], [5.0, -1.0, 2.0])
    if ext != "stl":  # STL has no texture coordinates
        assert m.uvs is not None and m.uvs.shape == (len(m.vertices), 2)


def test_scene_is_concatenated(tmp_path):
    a = trimesh.creation.box()
    b = trimesh.creation.icosphere(radius=0.5)
    b.apply_translation((3.0, 0.0, 0.0))
    path = tmp_path / "scene.glb"
    trimesh.Scene([a, b]).export(path)
    m = load_mesh(path, normalize=False)
    assert len(m.faces) == len(a.faces) + len(b.faces)
    assert m.meta["parts"] == 2
    assert m.bounds[1, 0] == pytest.approx(3.5, abs=1e-3)


def test_gltf_with_external_buffers(tmp_path):
    path = tmp_path / "s.gltf"
    trimesh.Scene([trimesh.creation.icosphere()]).export(path)
    assert len(load_mesh(path).faces) == len(trimesh.creation.icosphere().faces)


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("missing.obj", None, "not found"),
        ("model.fbx", b"whatever", "unsupported extension"),
        ("broken.glb", b"glTF\x00\x01\x02\x03junk", "could not be read"),
        ("points.ply", b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                       b"property float z\nend_header\n0 0 0\n", "no faces"),
        ("empty.stl", b"", "no faces"),
        ("nofaces.obj", b"v 0 0 0\nv 1 0 0\n", "no faces"),
    ],
)
def test_bad_files_raise_asset_error_naming_file(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AssetError, match=match) as err:
        load_mesh(path)
    assert name in str(err.value)


def test_cache_returns_copies_and_sees_changes(tmp_path, monkeypatch):
    path = tmp_path / "box.ply"
    _box().export(path)
    meshio.clear_mesh_cache()
    calls = []
    real = meshio._read
    monkeypatch.setattr(meshio, "_read", lambda p, n: calls.append(p) or real(p, n))
    a = load_mesh(path)
    a.vertices[:] = 0.0  # callers may scribble on their copy
    b = load_mesh(path)
    assert len(calls) == 1 and np.abs(b.vertices).max() == pytest.approx(0.5)
    trimesh.creation.icosphere().export(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    c = load_mesh(path)
    assert len(calls) == 2 and len(c.faces) == len(trimesh.creation.icosphere().faces)


def test_disk_cache_serves_another_process_without_trimesh(tmp_path, monkeypatch):
    """A render worker reads the arrays the driver cached: same mesh, no trimesh import; a corrupt
    cache file is read past, and turning the cache off writes nothing."""
    import json
    import subprocess
    import sys

    monkeypatch.setenv("SIMREAL_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "box.glb"
    _box().export(path)
    meshio.clear_mesh_cache()
    here = load_mesh(path)
    cached = list((tmp_path / "cache" / "meshes").glob("*.npz"))
    assert len(cached) == 1
    code = ("import json, sys; from simreal.render.meshio import load_mesh; m = load_mesh(sys.argv[1]); "
            "print(json.dumps({'trimesh': 'trimesh' in sys.modules, 'v': m.vertices.tolist(), 'f': m.faces.tolist(), "
            "'n': m.normals.tolist(), 'uv': m.uvs.tolist(), 'meta': m.meta, 'name': m.name}))")
    out = json.loads(subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                                    check=True, env={**os.environ}).stdout)
    assert not out["trimesh"]
    assert np.array_equal(np.array(out["v"], np.float32), here.vertices)
    assert np.array_equal(out["f"], here.faces) and np.array_equal(np.array(out["n"], np.float32), here.normals)
    assert np.array_equal(np.array(out["uv"], np.float32), here.uvs)
    assert out["meta"] == here.meta and out["name"] == here.name

    cached[0].write_bytes(b"not an npz")
    meshio.clear_mesh_cache()
    again = load_mesh(path)
    assert np.array_equal(again.vertices, here.vertices)
    monkeypatch.setenv("SIMREAL_MESH_CACHE", "0")
    monkeypatch.setenv("SIMREAL_CACHE_DIR", str(tmp_path / "off"))
    meshio.clear_mesh_cache()
    load_mesh(path)
    assert not (tmp_path / "off").exists()
