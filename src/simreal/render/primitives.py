"""Built-in primitive meshes: cube, sphere, cylinder, cone, torus and ground plane.

Conventions (shared by every asset in ``simreal.render``): right-handed, **+Z up**, centred at the
origin, faces counter-clockwise seen from outside, outward per-vertex normals, UVs in [0, 1] with
``v = 0`` at the *bottom* of a texture image (OpenGL/OBJ convention: image row = ``(1 - v) * H``).
Vertices are duplicated along UV seams and sharp edges, so a mesh is watertight *after welding
coincident positions* (``trimesh.Trimesh(v, f)`` welds on construction); every primitive except
``plane`` (and ``cylinder``/``cone`` with ``capped=False``) is closed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simreal.errors import ConfigError
from simreal.render.mesh import Mesh

PRIMITIVES: tuple[str, ...] = ("cube", "sphere", "cylinder", "cone", "torus", "plane")


class LathePiece:
    """One smooth piece of a surface of revolution around +Z.

    ``r``, ``z``: profile points (traversed so that the outward normal is d(theta) x d(profile),
    i.e. bottom-to-top on an outer wall, centre-outwards on a bottom disk); ``nr``, ``nz``: the
    2-D outward profile normal per point; ``v``: texture v per point. ``planar=True`` maps UVs by
    projecting x, y onto the disk of radius ``planar_radius`` instead (caps).
    """

    def __init__(self, r: Sequence[float], z: Sequence[float], nr: Sequence[float], nz: Sequence[float],
                 v: Sequence[float] | None = None, planar: bool = False, planar_radius: float = 1.0):
        self.r = np.asarray(r, dtype=np.float64)
        self.z = np.asarray(z, dtype=np.float64)
        self.nr = np.asarray(nr, dtype=np.float64) * np.ones_like(self.r)
        self.nz = np.asarray(nz, dtype=np.float64) * np.ones_like(self.r)
        self.v = np.linspace(0.0, 1.0, len(self.r)) if v is None else np.asarray(v, dtype=np.float64)
        self.planar = planar
        self.planar_radius = planar_radius


def lathe(pieces: Sequence[LathePiece], segments: int, name: str = "lathe") -> Mesh:
    """Revolve profile pieces around +Z into one mesh (seam duplicated, axis points as triangles)."""
    segments = int(segments)
    if segments < 3:
        raise ConfigError(f"lathe segments: expected >= 3, got {segments}")
    theta = np.linspace(0.0, 2.0 * np.pi, segments + 1)
    theta[-1] = 0.0  # exact seam closure
    cos, sin = np.cos(theta), np.sin(theta)
    u = np.arange(segments + 1) / segments
    verts, norms, uvs, faces = [], [], [], []
    base = 0
    for p in pieces:
        k = len(p.r)
        on_axis = p.r <= 1e-12
        x = p.r[:, None] * cos[None, :]
        y = p.r[:, None] * sin[None, :]
        z = np.broadcast_to(p.z[:, None], x.shape)
        nx = p.nr[:, None] * cos[None, :]
        ny = p.nr[:, None] * sin[None, :]
        nz = np.broadcast_to(p.nz[:, None], x.shape)
        if p.planar:
            uu = 0.5 + x / (2.0 * p.planar_radius)
            vv = 0.5 + y / (2.0 * p.planar_radius)
        else:
            uu = np.where(on_axis[:, None], (np.arange(segments + 1) + 0.5)[None, :] / segments, u[None, :])
            uu = np.minimum(uu, 1.0)
            vv = np.broadcast_to(p.v[:, None], x.shape)
        verts.append(np.stack([x, y, z], -1).reshape(-1, 3))
        n = np.stack([nx, ny, nz], -1).reshape(-1, 3)
        n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
        norms.append(n)
        uvs.append(np.stack([uu, vv], -1).reshape(-1, 2))
        ring = np.arange(k - 1)[:, None] * (segments + 1)
        j = np.arange(segments)[None, :]
        a = (base + ring + j).ravel()
        b = a + 1
        d = a + (segments + 1)
        c = d + 1
        lower_axis = np.repeat(on_axis[:-1], segments)
        upper_axis = np.repeat(on_axis[1:], segments)
        t1 = np.stack([a, b, c], -1)[~lower_axis]
        t2 = np.stack([a, c, d], -1)[~upper_axis]
        faces.append(np.concatenate([t1, t2]))
        base += k * (segments + 1)
    return Mesh(np.concatenate(verts), np.concatenate(faces), np.concatenate(norms),
                np.clip(np.concatenate(uvs), 0.0, 1.0), name=name)


def _cube(size: float | Sequence[float] = 1.0) -> Mesh:
    s = np.broadcast_to(np.asarray(size, dtype=np.float64), (3,)) / 2.0
    verts, norms, uvs, faces = [], [], [], []
    for axis in range(3):
        for sign in (1.0, -1.0):
            n = np.zeros(3)
            n[axis] = sign
            # tangent t1, t2 with t1 x t2 = n so (0,0),(1,0),(1,1),(0,1) is CCW from outside
            t1 = np.zeros(3)
            t1[(axis + 1) % 3] = sign
            t2 = np.cross(n, t1)
            corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
            i0 = len(verts)
            for cu, cv in corners:
                verts.append((n + cu * t1 + cv * t2) * s)
                norms.append(n)
                uvs.append(((cu + 1) / 2, (cv + 1) / 2))
            faces += [(i0, i0 + 1, i0 + 2), (i0, i0 + 2, i0 + 3)]
    return Mesh(np.array(verts), np.array(faces), np.array(norms), np.array(uvs), name="cube")


def _sphere(radius: float = 0.5, segments: int = 64, rings: int = 32) -> Mesh:
    phi = np.linspace(-np.pi / 2, np.pi / 2, int(rings) + 1)
    r, z = np.cos(phi), np.sin(phi)
    r[0] = r[-1] = 0.0
    piece = LathePiece(radius * r, radius * z, r, z, v=(phi + np.pi / 2) / np.pi)
    m = lathe([piece], segments, name="sphere")
    return m


def _cylinder(radius: float = 0.5, height: float = 1.0, segments: int = 64, capped: bool = True,
              height_segments: int = 1) -> Mesh:
    h = height / 2.0
    zs = np.linspace(-h, h, int(height_segments) + 1)
    pieces = [LathePiece(np.full_like(zs, radius), zs, 1.0, 0.0, v=(zs + h) / height)]
    if capped:
        pieces.insert(0, LathePiece([0.0, radius], [-h, -h], 0.0, -1.0, planar=True, planar_radius=radius))
        pieces.append(LathePiece([radius, 0.0], [h, h], 0.0, 1.0, planar=True, planar_radius=radius))
    return lathe(pieces, segments, name="cylinder")


def _cone(radius: float = 0.5, height: float = 1.0, segments: int = 64, capped: bool = True) -> Mesh:
    h = height / 2.0
    slant = np.hypot(radius, height)
    pieces = [LathePiece([radius, 0.0], [-h, h], height / slant, radius / slant, v=[0.0, 1.0])]
    if capped:
        pieces.insert(0, LathePiece([0.0, radius], [-h, -h], 0.0, -1.0, planar=True, planar_radius=radius))
    return lathe(pieces, segments, name="cone")


def _torus(major_radius: float = 0.35, minor_radius: float = 0.15, segments: int = 64,
           minor_segments: int = 32) -> Mesh:
    if minor_radius >= major_radius:
        raise ConfigError(f"torus: minor_radius ({minor_radius}) must be < major_radius ({major_radius})")
    phi = np.linspace(-np.pi, np.pi, int(minor_segments) + 1)
    c, s = np.cos(phi), np.sin(phi)
    c[-1], s[-1] = c[0], s[0]
    piece = LathePiece(major_radius + minor_radius * c, minor_radius * s, c, s, v=(phi + np.pi) / (2 * np.pi))
    return lathe([piece], segments, name="torus")


def _plane(size: float | Sequence[float] = 1.0, subdivisions: int = 1) -> Mesh:
    sx, sy = np.broadcast_to(np.asarray(size, dtype=np.float64), (2,))
    n = int(subdivisions) + 1
    t = np.linspace(0.0, 1.0, n)
    uu, vv = np.meshgrid(t, t)  # rows along y
    verts = np.stack([(uu - 0.5) * sx, (vv - 0.5) * sy, np.zeros_like(uu)], -1).reshape(-1, 3)
    i = np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]
    a = i.ravel()
    b, d = a + 1, a + n
    c = d + 1
    faces = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)])
    norms = np.tile([0.0, 0.0, 1.0], (len(verts), 1))
    return Mesh(verts, faces, norms, np.stack([uu, vv], -1).reshape(-1, 2), name="plane")


_BUILDERS = {"cube": _cube, "sphere": _sphere, "cylinder": _cylinder, "cone": _cone, "torus": _torus,
             "plane": _plane}


def primitive(kind: str, **params) -> Mesh:
    """Build a primitive mesh centred at the origin (+Z up).

    kinds and parameters (defaults): ``cube(size=1.0)`` (scalar or (sx, sy, sz)), ``sphere(radius=0.5,
    segments=64, rings=32)``, ``cylinder(radius=0.5, height=1.0, segments=64, capped=True,
    height_segments=1)`` (axis +Z), ``cone(radius=0.5, height=1.0, segments=64, capped=True)`` (apex
    at +Z), ``torus(major_radius=0.35, minor_radius=0.15, segments=64, minor_segments=32)`` (in the XY
    plane), ``plane(size=1.0, subdivisions=1)`` (z = 0, normal +Z, open).
    """
    if kind not in _BUILDERS:
        raise ConfigError(f"primitive kind {kind!r}: expected one of {', '.join(PRIMITIVES)}")
    try:
        mesh = _BUILDERS[kind](**params)
    except TypeError as exc:
        raise ConfigError(f"primitive {kind!r}: bad parameters {sorted(params)} ({exc})") from None
    mesh.meta.update({"primitive": kind, "params": {k: _plain(v) for k, v in params.items()}})
    return mesh


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def signed_volume(mesh: Mesh) -> float:
    """Signed enclosed volume (positive for a closed mesh with outward-facing triangles)."""
    v = mesh.vertices.astype(np.float64)[mesh.faces]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def surface_area(mesh: Mesh) -> float:
    """Total triangle area."""
    v = mesh.vertices.astype(np.float64)[mesh.faces]
    return float(np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1).sum() / 2.0)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, weld: bool = True) -> np.ndarray:
    """Area-weighted smooth vertex normals; with ``weld`` vertices at the same position share one."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    if weld:
        _, inv = np.unique(np.round(v, 6), axis=0, return_inverse=True)
        inv = inv.ravel()
    else:
        inv = np.arange(len(v))
    acc = np.zeros((inv.max() + 1, 3))
    for k in range(3):
        np.add.at(acc, inv[f[:, k]], fn)
    n = acc[inv]
    return (n / np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)


def concatenate(meshes: Sequence[Mesh], name: str = "mesh") -> Mesh:
    """Join meshes into one (normals/UVs kept only if every part has them)."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=True)])
    has_n = all(m.normals is not None for m in meshes)
    has_uv = all(m.uvs is not None for m in meshes)
    return Mesh(np.concatenate([m.vertices for m in meshes]), faces,
                np.concatenate([m.normals for m in meshes]) if has_n else None,
                np.concatenate([m.uvs for m in meshes]) if has_uv else None, name=name)
