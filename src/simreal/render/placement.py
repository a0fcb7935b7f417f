"""How a target meets the ground (the plane z = 0): floating (as sampled), upright, lying on its side,
leaning against a support, or standing on a support (a box: a crate, a step, a kerb).

``sample_placement`` draws JSON-ready params; ``place`` applies them to the object's world-space
meshes (pure): it drops the object so its lowest vertex touches the ground (or the support's top),
and returns the support mesh. Supports are plain boxes: for leaning, the box's face touches the
object's outermost point in the direction it leans (so nothing interpenetrates); for standing on
one, the box is centred under the object and wider than its footprint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simreal.render.mesh import Mesh
from simreal.render.primitives import primitive

MODES: tuple[str, ...] = ("floating", "upright", "lying", "leaning", "supported")
#: Tilt (degrees from the object's +Z) per mode; leaning draws its own.
_TILT = {"upright": 0.0, "lying": 90.0}


def sample_placement(rng: np.random.Generator, weights: dict[str, float], lean: tuple[float, float],
                     support_height: tuple[float, float]) -> dict[str, Any]:
    """Mode and its params; the same number of draws whatever the mode."""
    names = sorted(weights)
    w = np.array([weights[n] for n in names], dtype=np.float64)
    mode = names[int(rng.choice(len(names), p=w / w.sum()))]
    tilt = float(rng.uniform(*lean))
    on_side = bool(rng.random() < 0.5)
    height = float(rng.uniform(*support_height))
    margin = float(rng.uniform(1.15, 1.8))
    depth = float(rng.uniform(0.3, 1.0))
    top = float(rng.uniform(1.05, 1.5))
    out: dict[str, Any] = {"mode": mode}
    if mode == "leaning":
        out.update(tilt=tilt, support={"depth": depth, "width": margin, "top": top})
    elif mode == "supported":
        out.update(tilt=90.0 if on_side else 0.0, support={"height": height, "margin": margin})
    elif mode in _TILT:
        out["tilt"] = _TILT[mode]
    return out


def lean_direction(tilt_axis_deg: float) -> np.ndarray:
    """Horizontal unit vector the object's top moves towards when tilted about the horizontal axis at
    ``tilt_axis_deg`` (right-hand rule): (axis x Z)."""
    a = np.deg2rad(tilt_axis_deg)
    return np.array([np.sin(a), -np.cos(a), 0.0])


def _translate(m: Mesh, offset: np.ndarray) -> Mesh:
    xf = np.eye(4)
    xf[:3, 3] = offset
    return m.transformed(xf)


def _box(size: tuple[float, float, float], centre: np.ndarray, yaw: float) -> Mesh:
    xf = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    xf[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    xf[:3, 3] = centre
    return primitive("cube", size=list(size)).transformed(xf)


def place(meshes: list[Mesh], placement: dict[str, Any], tilt_axis_deg: float, size: float
          ) -> tuple[list[Mesh], Mesh | None]:
    """The object's meshes resting per ``placement`` and its support box (or None).

    ``meshes``: the object's parts in world space (already rotated by the sampled tilt, centred on
    its xy position); ``size``: its sampled size (support dimensions scale with it)."""
    mode = placement.get("mode", "floating")
    if mode == "floating":
        return meshes, None
    verts = np.concatenate([m.vertices for m in meshes]).astype(np.float64)
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    centre = (lo + hi) / 2.0
    support = None
    base = 0.0
    if mode == "supported":
        sp = placement["support"]
        base = sp["height"] * size
        foot = (hi[:2] - lo[:2]) * sp["margin"]
        side = max(float(foot.max()), 0.3 * size)
        support = _box((side, side, base), np.array([centre[0], centre[1], base / 2.0]), 0.0)
    shifted = [_translate(m, np.array([0.0, 0.0, base - lo[2]])) for m in meshes]
    if mode == "leaning":
        sp = placement["support"]
        d = lean_direction(tilt_axis_deg)
        v = np.concatenate([m.vertices for m in shifted]).astype(np.float64)
        reach = v[:, :2] @ d[:2]
        k = int(np.argmax(reach))
        contact_z = float(v[k, 2])
        depth = sp["depth"] * size
        across = np.array([-d[1], d[0]])
        width = max(float(np.ptp(v[:, :2] @ across)) * sp["width"] * 2.0, 0.5 * size)
        height = contact_z * sp["top"]
        face = float(reach[k])
        c_xy = d[:2] * (face + depth / 2.0) + across * float(np.mean(v[:, :2] @ across))
        support = _box((depth, width, height), np.array([c_xy[0], c_xy[1], height / 2.0]),
                       float(np.arctan2(d[1], d[0])))
    return shifted, support
