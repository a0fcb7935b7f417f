"""Clothes, hair and accessories built procedurally on a posed anny body.

- **Garments** are shells of the body surface: the faces of a region (selected once per character on
  the neutral body, by each vertex's dominant bone and its position along the limb or torso) are
  copied from the posed body and pushed out along the posed normals by the garment's thickness. Tops:
  ``tshirt`` (sleeves to mid upper arm), ``shirt`` (long sleeves), ``jacket`` (long sleeves, longer
  hem, thicker); bottoms: ``trousers``, ``shorts``, ``skirt`` (a flared surface of revolution around
  the legs; on a seated body a tube over the thighs); ``shoes`` cover the feet.
- **Hair** is a scalp shell (``short``, ``bob``, ``long`` adds a card down the back, ``bun`` adds a
  sphere, ``bald`` has none).
- **Accessories** (``backpack``, ``bag``, ``hat``, ``glasses``) are primitives placed on the neutral
  body and moved rigidly with a bone.

Everything is a pure function of (record, posed body, neutral body); UVs of shells are cylindrical
about the body axis on the neutral body, so textures stick to the cloth when the body moves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from simreal.errors import ConfigError
from simreal.render.mesh import Mesh
from simreal.render.people.body import PosedBody, topology
from simreal.render.primitives import LathePiece, concatenate, lathe, primitive

# sleeve: fraction of the arm (shoulder 0 -> wrist 1); hem: metres below the hip joint
TOPS: dict[str, dict[str, float]] = {
    "tshirt": {"sleeve": 0.33, "hem": 0.06, "thickness": 0.008},
    "shirt": {"sleeve": 0.97, "hem": 0.08, "thickness": 0.009},
    "jacket": {"sleeve": 1.0, "hem": 0.16, "thickness": 0.018},
}
BOTTOMS: dict[str, dict[str, float]] = {  # length: fraction of the leg (hip 0 -> ankle 1)
    "trousers": {"length": 0.97, "thickness": 0.006},
    "shorts": {"length": 0.42, "thickness": 0.006},
    "skirt": {"length": 0.6, "thickness": 0.01},
}
GARMENTS: tuple[str, ...] = (*TOPS, *BOTTOMS, "shoes")
HAIR_STYLES: tuple[str, ...] = ("short", "bob", "long", "bun", "bald")
ACCESSORIES: tuple[str, ...] = ("backpack", "bag", "hat", "glasses")

_TORSO = ("root", "spine05", "spine04", "spine03", "spine02", "spine01", "pelvis.L", "pelvis.R", "clavicle.L",
          "clavicle.R", "shoulder01.L", "shoulder01.R", "breast.L", "breast.R")
_ARM = ("upperarm01", "upperarm02", "lowerarm01", "lowerarm02")
_LEG = ("upperleg01", "upperleg02", "lowerleg01", "lowerleg02")


@dataclass
class Part:
    """One piece of a dressed character: world-space mesh, sRGB colour or texture, roughness, and
    ``kind`` (``skin``, a garment, ``hair`` or an accessory name)."""

    mesh: Mesh
    kind: str
    color: tuple[float, float, float]
    roughness: float = 0.7
    texture: np.ndarray | None = None


def _group_of_bones() -> np.ndarray:
    """Per bone: 0 other, 1 torso, 2 arm, 3 leg, 4 hand, 5 foot, 6 neck, 7 head."""
    names = topology().bone_names
    g = np.zeros(len(names), dtype=np.int8)
    for i, n in enumerate(names):
        base = n.split(".")[0]
        if n in _TORSO:
            g[i] = 1
        elif base in _ARM:
            g[i] = 2
        elif base in _LEG:
            g[i] = 3
        elif base in ("wrist",) or base.startswith(("finger", "metacarpal")):
            g[i] = 4
        elif base in ("foot",) or base.startswith("toe"):
            g[i] = 5
        elif base.startswith("neck"):
            g[i] = 6
        elif base in ("head", "eye"):
            g[i] = 7
    return g


@functools.lru_cache(maxsize=1)
def vertex_groups() -> np.ndarray:
    """(V,) body-region code of each vertex (see ``_group_of_bones``)."""
    return _group_of_bones()[topology().dominant_bone]


def _chain_param(v: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    return (v - a) @ d / float(d @ d)


@dataclass
class Regions:
    """Vertex masks and parameters measured once on the neutral body of a character."""

    groups: np.ndarray
    arm_t: np.ndarray  # position along the arm of the same side (0 shoulder, 1 wrist)
    leg_t: np.ndarray  # position along the leg (0 hip joint, 1 ankle)
    z: np.ndarray
    hip_z: float
    waist_z: float
    neck_z: float
    uv: np.ndarray


def measure_regions(neutral: PosedBody) -> Regions:
    v = neutral.vertices.astype(np.float64)
    groups = vertex_groups()
    arm_t = np.full(len(v), -1.0)
    leg_t = np.full(len(v), -1.0)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        mine = (v[:, 0] * sign) > 0
        arm_t[mine] = _chain_param(v[mine], neutral.joint(f"upperarm01.{side}"), neutral.joint(f"wrist.{side}"))
        leg_t[mine] = _chain_param(v[mine], neutral.joint(f"upperleg01.{side}"), neutral.joint(f"foot.{side}"))
    u = np.arctan2(v[:, 0], -v[:, 1]) / (2 * np.pi) + 0.5
    uv = np.stack([u * 3.0, v[:, 2] / 0.6], axis=1)  # ~0.6 m per texture tile vertically
    return Regions(groups, arm_t, leg_t, v[:, 2], float(neutral.joint("upperleg01.L")[2]),
                   float(neutral.joint("spine04")[2]), float(neutral.joint("neck01")[2]), uv.astype(np.float32))


def garment_mask(kind: str, r: Regions, sitting: bool = False) -> np.ndarray:
    """(V,) vertices a garment covers (selected on the neutral body)."""
    g = r.groups
    if kind in TOPS:
        p = TOPS[kind]
        torso = (g == 1) & (r.z < r.neck_z) & (r.z > r.hip_z - p["hem"])
        arms = (g == 2) & (r.arm_t <= p["sleeve"])
        legs = (g == 3) & (r.z > r.hip_z - p["hem"]) & (r.leg_t < 0.25)
        return torso | arms | legs
    if kind in BOTTOMS:
        p = BOTTOMS[kind]
        length = 0.5 if kind == "skirt" and sitting else p["length"]
        torso = (g == 1) & (r.z < r.waist_z)
        legs = (g == 3) & (r.leg_t <= length)
        return torso | legs
    if kind == "shoes":
        return (g == 5) | ((g == 3) & (r.leg_t > 0.98))
    raise ConfigError(f"garment: unknown garment {kind!r} (expected one of {', '.join(GARMENTS)})")


def shell(body: PosedBody, mask: np.ndarray, thickness: float, uv: np.ndarray | None = None) -> Mesh:
    """The faces whose three vertices are in ``mask``, pushed out along the posed normals."""
    f = body.faces
    keep = mask[f].all(axis=1)
    faces = f[keep]
    used = np.unique(faces)
    remap = np.full(len(body.vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    v = body.vertices[used].astype(np.float64) + thickness * body.normals[used].astype(np.float64)
    return Mesh(v, remap[faces], body.normals[used], None if uv is None else uv[used])


def skirt_mesh(body: PosedBody, r: Regions, length: float, flare: float, segments: int = 40) -> Mesh:
    """A flared surface of revolution from the waist to ``length`` of the leg, around the legs."""
    v = body.vertices.astype(np.float64)
    lower = (r.groups == 1) | (r.groups == 3)
    top = float(body.joint("spine04")[2])
    knee = float(body.joint("lowerleg01.L")[2])
    hip = float(body.joint("upperleg01.L")[2])
    bottom = hip - length * (hip - knee) / 0.5
    zs = np.linspace(top, bottom, 9)
    cx, cy = 0.0, float(np.mean(v[lower & (np.abs(v[:, 2] - hip) < 0.1), 1]))
    radii = []
    for z in zs:
        band = v[lower & (np.abs(v[:, 2] - z) < 0.04)]
        rad = float(np.hypot(band[:, 0] - cx, band[:, 1] - cy).max()) if len(band) else 0.15
        radii.append(rad + 0.012)
    radii = np.maximum.accumulate(np.asarray(radii))  # never narrower below
    radii = radii * (1.0 + flare * np.linspace(0.0, 1.0, len(radii)) ** 2)
    piece = LathePiece(radii[::-1], zs[::-1], np.ones(len(zs)), np.zeros(len(zs)))
    m = lathe([piece], segments)
    m.vertices[:, 1] += cy
    uv = np.stack([np.arctan2(m.vertices[:, 0], -m.vertices[:, 1]) / (2 * np.pi) * 3.0 + 1.5,
                   m.vertices[:, 2] / 0.6], axis=1)
    return Mesh(m.vertices, m.faces, m.normals, uv)


def hair_mask(style: str, neutral: PosedBody) -> np.ndarray:
    """Scalp vertices of a hair style, relative to the head on the neutral body."""
    if style not in HAIR_STYLES:
        raise ConfigError(f"hair: unknown style {style!r} (expected one of {', '.join(HAIR_STYLES)})")
    head = topology().head_mask
    v = neutral.vertices
    hv = v[head]
    top = float(hv[:, 2].max())
    eye_z = float(neutral.keypoint("left_eye")[2])
    ear_y = float(neutral.keypoint("left_ear")[1])
    if style == "bald":
        return np.zeros(len(v), dtype=bool)
    hairline = eye_z + 0.35 * (top - eye_z)
    scalp = head & (v[:, 2] > hairline)
    back = head & (v[:, 1] > ear_y - 0.01) & (v[:, 2] > eye_z - (0.02 if style == "short" else 0.07))
    sides = head & (v[:, 1] > ear_y - 0.045) & (v[:, 2] > eye_z + 0.01)
    mask = scalp | back | sides
    if style in ("bob", "long"):
        neck = (vertex_groups() == 6) & (v[:, 1] > ear_y) & (v[:, 2] > eye_z - 0.11)
        mask |= neck
    return mask


def _attached(neutral_mesh: Mesh, body: PosedBody, neutral: PosedBody, bone: str) -> Mesh:
    return neutral_mesh.transformed(body.motion_from(neutral, bone))


def _box(size: tuple[float, float, float], centre: np.ndarray) -> Mesh:
    m = primitive("cube", size=tuple(float(s) for s in size))
    xf = np.eye(4)
    xf[:3, 3] = centre
    return m.transformed(xf)


def accessory_mesh(kind: str, rec: dict[str, Any], body: PosedBody, neutral: PosedBody) -> Mesh:
    """An accessory placed on the neutral body and moved with its bone to the posed body."""
    v = neutral.vertices
    g = vertex_groups()
    scale = float(rec.get("scale", 1.0))
    if kind == "backpack":
        z = float(neutral.joint("spine02")[2]) - 0.05
        back = v[(g == 1) & (np.abs(v[:, 2] - z) < 0.12)]
        w, d, h = 0.30 * scale, 0.13 * scale, 0.40 * scale
        m = _box((w, d, h), np.array([0.0, back[:, 1].max() + d / 2 + 0.01, z]))
        return _attached(m, body, neutral, "spine02")
    if kind == "bag":
        side = 1.0 if rec.get("side", "L") == "L" else -1.0
        z = float(neutral.joint("upperleg01.L")[2])
        hips = v[((g == 1) | (g == 3)) & (np.abs(v[:, 2] - z) < 0.06)]
        w, d, h = 0.08 * scale, 0.28 * scale, 0.24 * scale
        x = side * (np.abs(hips[:, 0]).max() + w / 2 + 0.06)
        bag = _box((w, d, h), np.array([x, 0.0, z]))
        strap_top = neutral.joint(f"clavicle.{'R' if side > 0 else 'L'}")
        return concatenate([_attached(bag, body, neutral, "spine05"), _strap(strap_top, np.array([x, 0.0, z + h / 2]),
                                                                            body, neutral)])
    if kind == "hat":
        hv = v[topology().head_mask]
        top = float(hv[:, 2].max())
        rad = 0.5 * float(np.ptp(hv[:, 0])) + 0.012
        cy = float(hv[:, 1].mean())
        crown = primitive("cylinder", radius=rad, height=0.11 * scale, segments=32)
        brim = primitive("cylinder", radius=rad + 0.04 * scale, height=0.008, segments=32)
        xf = np.eye(4)
        xf[:3, 3] = [0.0, cy, top + 0.11 * scale / 2 - 0.035]
        xb = np.eye(4)
        xb[:3, 3] = [0.0, cy, top - 0.035]
        return _attached(concatenate([crown.transformed(xf), brim.transformed(xb)]), body, neutral, "head")
    if kind == "glasses":
        parts = []
        for eye in ("left_eye", "right_eye"):
            p = neutral.keypoint(eye).astype(np.float64)
            ring = primitive("torus", major_radius=0.021, minor_radius=0.0025, segments=24, minor_segments=8)
            xf = np.eye(4)
            xf[:3, :3] = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # ring faces -Y
            xf[:3, 3] = p + np.array([0.0, -0.018, -0.004])
            parts.append(ring.transformed(xf))
        mid = (neutral.keypoint("left_eye") + neutral.keypoint("right_eye")) / 2
        parts.append(_box((0.02, 0.004, 0.004), mid + np.array([0.0, -0.018, 0.0])))
        return _attached(concatenate(parts), body, neutral, "head")
    raise ConfigError(f"accessory: unknown accessory {kind!r} (expected one of {', '.join(ACCESSORIES)})")


def _strap(a: np.ndarray, b: np.ndarray, body: PosedBody, neutral: PosedBody) -> Mesh:
    d = b - a
    length = float(np.linalg.norm(d))
    m = primitive("cylinder", radius=0.008, height=length, segments=8)
    z = d / length
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    xf = np.eye(4)
    xf[:3, :3] = np.stack([x, y, z], axis=1)
    xf[:3, 3] = (a + b) / 2 + np.array([0.0, -0.02, 0.0])
    return _attached(m.transformed(xf), body, neutral, "spine02")


def hair_extras(style: str, body: PosedBody, neutral: PosedBody) -> list[Mesh]:
    """The card of long hair and the bun, attached to the head."""
    hv = neutral.vertices[topology().head_mask]
    back_y = float(hv[:, 1].max())
    out = []
    if style == "long":
        top = float(neutral.keypoint("left_eye")[2])
        card = _box((0.15, 0.025, 0.30), np.array([0.0, back_y + 0.005, top - 0.12]))
        out.append(_attached(card, body, neutral, "head"))
    if style == "bun":
        top = float(hv[:, 2].max())
        bun = primitive("sphere", radius=0.045, segments=16, rings=8)
        xf = np.eye(4)
        xf[:3, 3] = [0.0, back_y - 0.01, top - 0.05]
        out.append(_attached(bun.transformed(xf), body, neutral, "head"))
    return out


def dress(character: dict[str, Any], body: PosedBody, neutral: PosedBody, regions: Regions,
          textures: dict[str, np.ndarray], sitting: bool = False, cull_hidden: bool = False) -> list[Part]:
    """Every part of a character on a posed body: skin, garments, shoes, hair, accessories.
    ``cull_hidden`` drops the skin faces that a shell (garment, shoes, hair) covers: the same picture
    with about a third fewer triangles."""
    skin = character["skin"]
    parts = [Part(Mesh(body.vertices, body.faces, body.normals), "skin", tuple(skin["rgb"]), skin["roughness"])]
    covered = np.zeros(len(body.faces), dtype=bool)
    for gar in character["garments"]:
        kind = gar["kind"]
        if kind == "skirt" and not sitting:
            mesh = skirt_mesh(body, regions, BOTTOMS["skirt"]["length"], gar.get("flare", 0.2))
        else:
            thick = TOPS.get(kind, BOTTOMS.get(kind, {"thickness": 0.01}))["thickness"] * gar.get("fit", 1.0)
            mask = garment_mask(kind, regions, sitting)
            covered |= mask[body.faces].all(axis=1)
            mesh = shell(body, mask, thick, regions.uv)
        parts.append(Part(mesh, kind, tuple(gar["color"]), gar.get("roughness", 0.8), textures.get(kind)))
    hair = character["hair"]
    if hair["style"] != "bald":
        mask = hair_mask(hair["style"], neutral)
        covered |= mask[body.faces].all(axis=1)
        m = shell(body, mask, hair["thickness"])
        extras = hair_extras(hair["style"], body, neutral)
        mesh = concatenate([m, *extras]) if extras else m
        parts.append(Part(mesh, "hair", tuple(hair["color"]), 0.6))
    for acc in character["accessories"]:
        mesh = accessory_mesh(acc["kind"], acc, body, neutral)
        parts.append(Part(mesh, acc["kind"], tuple(acc["color"]), 0.5))
    if cull_hidden:
        parts[0].mesh = Mesh(body.vertices, body.faces[~covered], body.normals)
    return parts
