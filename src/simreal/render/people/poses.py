"""Body poses: standing, walking and sitting, sampled as small JSON records and turned into
:class:`~simreal.render.people.body.BodyPose` deterministically.

Walking replays DeepMimic's ``humanoid3d_walk`` clip (39 frames, 1.27 s, read from the installed
``pybullet_data``: bullet3, zlib licence; the motion comes from DeepMimic, Peng et al. 2018, MIT
licence; simreal ships no motion data) at a random phase, retargeted onto anny's rig: each DeepMimic
joint's world rotation is converted to anny's axes and composed with the rotation that takes anny's
rest limb direction (A-pose arms) onto DeepMimic's (limbs hanging straight down). Without
``pybullet_data`` a procedural sinusoidal gait stands in (the record's ``source`` says which).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from simreal.errors import ConfigError
from simreal.render.people.body import BodyPose, pose_from_world

POSES: tuple[str, ...] = ("standing", "walking", "sitting")

# DeepMimic axes (X forward, Y up, Z right) -> anny body frame (forward -Y, up +Z, right -X).
_DM_TO_BODY = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
_DOWN = np.array([0.0, 0.0, -1.0])


def rot_x(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction ``a`` onto direction ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else rot_x(180.0)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def quat_wxyz(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@functools.lru_cache(maxsize=1)
def rest_directions() -> dict[str, np.ndarray]:
    """Rest-pose limb directions of the default anny body (A-pose arms, slightly splayed legs)."""
    from simreal.render.people.body import pose_body

    b = pose_body({})
    out = {}
    for side in ("L", "R"):
        out[f"upperarm.{side}"] = b.joint(f"lowerarm01.{side}") - b.joint(f"upperarm01.{side}")
        out[f"lowerarm.{side}"] = b.joint(f"wrist.{side}") - b.joint(f"lowerarm01.{side}")
        out[f"upperleg.{side}"] = b.joint(f"lowerleg01.{side}") - b.joint(f"upperleg01.{side}")
        out[f"lowerleg.{side}"] = b.joint(f"foot.{side}") - b.joint(f"lowerleg01.{side}")
    return out


def _limbs_down() -> dict[str, np.ndarray]:
    d = rest_directions()
    return {k: align(v, _DOWN) for k, v in d.items()}


# DeepMimic clip -------------------------------------------------------------------------------------

def walk_clip_path() -> Path | None:
    """``humanoid3d_walk.txt`` of the installed pybullet_data, or None."""
    import importlib.util

    spec = importlib.util.find_spec("pybullet_data")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "data" / "motions" / "humanoid3d_walk.txt"
    return p if p.is_file() else None


@functools.lru_cache(maxsize=1)
def walk_clip() -> np.ndarray | None:
    """(frames, 44) DeepMimic walk frames, or None when pybullet_data is not installed."""
    p = walk_clip_path()
    if p is None:
        return None
    frames = np.asarray(json.loads(p.read_text())["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != 44:
        return None
    return frames


def _slerp_frames(frames: np.ndarray, phase: float) -> np.ndarray:
    """The frame at ``phase`` in [0, 1) of the looping clip (quaternions normalised-lerped)."""
    n = len(frames) - 1  # DeepMimic's last frame repeats the first pose one cycle later
    t = (phase % 1.0) * n
    i = int(np.floor(t))
    a, b = frames[i], frames[min(i + 1, n)]
    w = t - i
    out = (1 - w) * a + w * b
    for s in (4, 8, 12, 16, 21, 25, 30, 35, 39):  # quaternion blocks: flip b to a's hemisphere
        qa, qb = a[s:s + 4], b[s:s + 4]
        if qa @ qb < 0:
            qb = -qb
        q = (1 - w) * qa + w * qb
        out[s:s + 4] = q / np.linalg.norm(q)
    return out


def _dm_world(frame: np.ndarray) -> dict[str, np.ndarray]:
    """World rotations (DeepMimic axes) of the clip's joints, heading removed."""
    root = quat_wxyz(frame[4:8])
    fwd = root @ np.array([1.0, 0.0, 0.0])
    heading = np.degrees(np.arctan2(-fwd[2], fwd[0]))  # yaw about +Y
    root = _ry_dm(-heading) @ root
    chest = root @ quat_wxyz(frame[8:12])
    neck = chest @ quat_wxyz(frame[12:16])
    out = {"root": root, "chest": chest, "neck": neck}
    for side, (hip, knee, ankle, shoulder, elbow) in {"R": (16, 20, 21, 25, 29), "L": (30, 34, 35, 39, 43)}.items():
        h = root @ quat_wxyz(frame[hip:hip + 4])
        k = h @ _rz_rad(frame[knee])
        out[f"hip.{side}"], out[f"knee.{side}"] = h, k
        out[f"ankle.{side}"] = k @ quat_wxyz(frame[ankle:ankle + 4])
        s = chest @ quat_wxyz(frame[shoulder:shoulder + 4])
        out[f"shoulder.{side}"], out[f"elbow.{side}"] = s, s @ _rz_rad(frame[elbow])
    return out


def _ry_dm(deg: float) -> np.ndarray:
    return rot_y(deg)


def _rz_rad(rad: float) -> np.ndarray:
    return rot_z(float(np.degrees(rad)))


def _walk_from_clip(phase: float) -> dict[str, np.ndarray]:
    frames = walk_clip()
    assert frames is not None
    dm = _dm_world(_slerp_frames(frames, phase))
    c = _DM_TO_BODY
    g = {k: c @ v @ c.T for k, v in dm.items()}
    down = _limbs_down()
    world = {"root": g["root"], "spine04": g["chest"], "neck01": g["neck"]}
    for s in ("L", "R"):
        world[f"upperleg01.{s}"] = g[f"hip.{s}"] @ down[f"upperleg.{s}"]
        world[f"lowerleg01.{s}"] = g[f"knee.{s}"] @ down[f"lowerleg.{s}"]
        world[f"foot.{s}"] = g[f"ankle.{s}"]
        world[f"upperarm01.{s}"] = g[f"shoulder.{s}"] @ down[f"upperarm.{s}"]
        world[f"lowerarm01.{s}"] = g[f"elbow.{s}"] @ down[f"lowerarm.{s}"]
    return world


def _walk_procedural(phase: float, stride_deg: float = 25.0) -> dict[str, np.ndarray]:
    """A sinusoidal gait: hips swing +-stride, knees flex in swing, arms swing against the legs."""
    down = _limbs_down()
    a = 2 * np.pi * phase
    world: dict[str, np.ndarray] = {}
    for s, off in (("L", 0.0), ("R", np.pi)):
        hip = stride_deg * np.sin(a + off)
        knee = 30.0 * max(0.0, np.sin(a + off + np.pi / 2)) + 5.0
        world[f"upperleg01.{s}"] = rot_x(-hip) @ down[f"upperleg.{s}"]
        world[f"lowerleg01.{s}"] = rot_x(-hip + knee) @ down[f"lowerleg.{s}"]
        world[f"foot.{s}"] = rot_x(-hip + knee) @ rot_x(hip - knee)
        arm = -0.8 * stride_deg * np.sin(a + off)
        side = 1.0 if s == "L" else -1.0
        world[f"upperarm01.{s}"] = rot_x(-arm) @ rot_y(-side * 6.0) @ down[f"upperarm.{s}"]
        world[f"lowerarm01.{s}"] = rot_x(-arm - 15.0) @ rot_y(-side * 6.0) @ down[f"lowerarm.{s}"]
    return world


# sampling and building ---------------------------------------------------------------------------------

def sample_pose(rng: np.random.Generator, name: str) -> dict[str, Any]:
    """A JSON-ready pose record: ``name`` plus everything drawn for it."""
    if name not in POSES:
        raise ConfigError(f"pose: unknown pose {name!r} (expected one of {', '.join(POSES)})")
    rec: dict[str, Any] = {"name": name, "head_yaw": float(rng.uniform(-25, 25)),
                           "head_pitch": float(rng.uniform(-10, 12))}
    if name == "standing":
        rec.update(arm_abduction=float(rng.uniform(4, 14)), elbow_flex=float(rng.uniform(5, 25)),
                   arm_swing=float(rng.uniform(-10, 10)), weight_shift=float(rng.uniform(-3, 3)))
    elif name == "walking":
        rec.update(phase=float(rng.uniform(0, 1)), source="deepmimic" if walk_clip() is not None else "procedural")
    else:
        rec.update(hip_flex=float(rng.uniform(80, 100)), knee_flex=float(rng.uniform(75, 105)),
                   torso_tilt=float(rng.uniform(-8, 20)), leg_spread=float(rng.uniform(0, 12)),
                   upperarm_forward=float(rng.uniform(15, 45)), elbow_flex=float(rng.uniform(50, 95)))
    return rec


def build_pose(rec: Mapping[str, Any]) -> BodyPose:
    """The :class:`BodyPose` of a pose record (pure)."""
    name = rec.get("name")
    down = _limbs_down()
    if name == "walking":
        if rec.get("source") == "procedural" or walk_clip() is None:
            world = _walk_procedural(float(rec["phase"]))
        else:
            world = _walk_from_clip(float(rec["phase"]))
        root = world.get("root", np.eye(3))
        torso = world.get("spine04", root)
    elif name == "standing":
        root = rot_y(float(rec["weight_shift"]))
        torso = root
        world = {}
        for s, side in (("L", 1.0), ("R", -1.0)):
            upper = root @ rot_x(-side * float(rec["arm_swing"])) @ rot_y(-side * float(rec["arm_abduction"]))
            world[f"upperarm01.{s}"] = upper @ down[f"upperarm.{s}"]
            world[f"lowerarm01.{s}"] = upper @ rot_x(-float(rec["elbow_flex"])) @ down[f"lowerarm.{s}"]
    elif name == "sitting":
        root = np.eye(3)
        torso = rot_x(-float(rec["torso_tilt"]))
        hip, knee = float(rec["hip_flex"]), float(rec["knee_flex"])
        world = {"spine04": torso}
        for s, side in (("L", 1.0), ("R", -1.0)):
            spread = rot_z(side * float(rec["leg_spread"]))
            world[f"upperleg01.{s}"] = spread @ rot_x(-hip) @ down[f"upperleg.{s}"]
            world[f"lowerleg01.{s}"] = spread @ rot_x(-hip + knee) @ down[f"lowerleg.{s}"]
            world[f"foot.{s}"] = spread
            upper = torso @ rot_x(-float(rec["upperarm_forward"])) @ rot_y(-side * 8.0)
            world[f"upperarm01.{s}"] = upper @ down[f"upperarm.{s}"]
            world[f"lowerarm01.{s}"] = upper @ rot_x(-float(rec["elbow_flex"])) @ down[f"lowerarm.{s}"]
    else:
        raise ConfigError(f"pose: unknown pose {name!r} (expected one of {', '.join(POSES)})")
    world["root"] = root
    world["head"] = world.get("neck01", torso) @ rot_z(float(rec.get("head_yaw", 0.0))) @ rot_x(
        -float(rec.get("head_pitch", 0.0)))
    return pose_from_world(world)
