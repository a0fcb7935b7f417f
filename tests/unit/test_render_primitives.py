"""Primitive meshes: closed, outward-facing, and measuring what the closed forms say."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from simreal.errors import ConfigError
from simreal.render.primitives import PRIMITIVES, primitive, signed_volume, surface_area, vertex_normals


def _tm(mesh) -> trimesh.Trimesh:
    return trimesh.Trimesh(mesh.vertices, mesh.faces)  # welds seam duplicates


@pytest.mark.parametrize("kind", [k for k in PRIMITIVES if k != "plane"])
def test_closed_and_outward(kind):
    m = primitive(kind)
    t = _tm(m)
    assert t.is_watertight and t.is_winding_consistent
    assert signed_volume(m) > 0
    # per-vertex normals agree with the face winding
    face_n = t.face_normals
    vert_n = m.normals[m.faces].mean(axis=1)
    assert (np.einsum("ij,ij->i", face_n, vert_n) > 0).all()
    assert np.allclose(np.linalg.norm(m.normals, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", PRIMITIVES)
def test_types_uvs_and_centre(kind):
    m = primitive(kind)
    assert m.vertices.dtype == np.float32 and m.faces.dtype == np.int32
    assert m.uvs is not None and m.uvs.shape == (len(m.vertices), 2)
    assert m.uvs.min() >= 0.0 and m.uvs.max() <= 1.0
    assert np.allclose(m.bounds.mean(axis=0), 0.0, atol=1e-6)
    assert m.meta["primitive"] == kind


def test_cube_closed_forms():
    m = primitive("cube")
    assert signed_volume(m) == pytest.approx(1.0, abs=1e-6)
    assert surface_area(m) == pytest.approx(6.0, abs=1e-6)
    assert len(m.vertices) == 24 and len(m.faces) == 12
    box = primitive("cube", size=(1.0, 2.0, 3.0))
    assert signed_volume(box) == pytest.approx(6.0, abs=1e-5)


def test_sphere_volume_within_one_percent():
    assert signed_volume(primitive("sphere")) == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.01)
    r = 2.0
    s = primitive("sphere", radius=r)
    assert signed_volume(s) == pytest.approx(4 / 3 * math.pi * r**3, rel=0.01)
    assert surface_area(s) == pytest.approx(4 * math.pi * r**2, rel=0.01)
    assert np.allclose(np.linalg.norm(s.vertices, axis=1), r, atol=1e-5)


def test_cylinder_cone_torus_closed_forms():
    cyl = primitive("cylinder", radius=0.3, height=2.0)
    assert signed_volume(cyl) == pytest.approx(math.pi * 0.09 * 2.0, rel=0.005)
    assert cyl.bounds[:, 2].tolist() == pytest.approx([-1.0, 1.0])
    cone = primitive("cone", radius=0.5, height=1.0)
    assert signed_volume(cone) == pytest.approx(math.pi * 0.25 / 3, rel=0.005)
    tor = primitive("torus", major_radius=0.35, minor_radius=0.15)
    assert signed_volume(tor) == pytest.approx(2 * math.pi**2 * 0.35 * 0.15**2, rel=0.01)


def test_open_variants_and_plane():
    assert not _tm(primitive("cylinder", capped=False)).is_watertight
    p = primitive("plane", size=4.0, subdivisions=3)
    assert surface_area(p) == pytest.approx(16.0)
    assert np.allclose(p.normals, [0, 0, 1])
    assert _tm(p).face_normals[:, 2].min() > 0.99  # faces point up


def test_segments_parameter_and_errors():
    coarse, fine = primitive("sphere", segments=8, rings=4), primitive("sphere", segments=128, rings=64)
    assert len(coarse.faces) < len(fine.faces)
    exact = 4 / 3 * math.pi * 0.125
    assert abs(signed_volume(fine) - exact) < abs(signed_volume(coarse) - exact)
    with pytest.raises(ConfigError, match="teapot"):
        primitive("teapot")
    with pytest.raises(ConfigError, match="sphere"):
        primitive("sphere", height=2)


def test_vertex_normals_match_analytic_sphere():
    s = primitive("sphere")
    n = vertex_normals(s.vertices, s.faces)
    assert np.einsum("ij,ij->i", n, s.normals).min() > 0.99
