"""Camera poses that match a photograph's perspective: a level camera (no roll unless the photo has
one) at a height above the ground plane z = 0, pitched so the horizon falls on a given image row.

For a pinhole camera with focal length f (pixels) pitched down by alpha, the horizon (directions
with zero elevation) projects to the row ``H/2 - f tan(alpha)``; so a horizon at fraction ``y_h`` of
the image height (0 = top) needs ``tan(alpha) = (0.5 - y_h) H / f``. A horizon above the frame
(``y_h < 0``) is a camera looking down; below it (``y_h > 1``), looking up.

A photo may carry its perspective in a JSON file next to it (``street.jpg`` -> ``street.json`` or
``street.jpg.json``)::

    {"horizon": 0.42, "camera_height": 1.6, "fov": 65.0, "roll": 0.0}

``horizon``: row of the horizon as a fraction of the photo's height from the top (may lie outside
[0, 1]); ``camera_height``: metres above the ground; ``fov``: horizontal field of view of the whole
photo in degrees (optional); ``roll``: degrees the horizon is turned clockwise (optional, 0). The
background crop of the photo is taken into account (the crop's own horizon row and field of view).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from simreal.errors import AssetError

PHOTO_KEYS = ("horizon", "camera_height", "fov", "roll")


def photo_meta_path(photo: Path) -> Path | None:
    """The JSON file describing ``photo``'s perspective, if there is one."""
    for cand in (photo.with_suffix(".json"), photo.with_name(photo.name + ".json")):
        if cand.is_file():
            return cand
    return None


def read_photo_meta(photo: Path) -> dict[str, float]:
    """A photo's perspective (the keys present in its JSON), or {} when it has none."""
    path = photo_meta_path(photo)
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AssetError(f"{path}: unreadable photo perspective JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AssetError(f"{path}: expected a JSON object with keys {list(PHOTO_KEYS)}")
    unknown = sorted(set(data) - set(PHOTO_KEYS))
    if unknown:
        raise AssetError(f"{path}: unknown key(s) {unknown}; expected {list(PHOTO_KEYS)}")
    out: dict[str, float] = {}
    for k, v in data.items():
        if v is None:
            continue
        if not isinstance(v, (int, float)) or not np.isfinite(v):
            raise AssetError(f"{path}: {k}: expected a number, got {v!r}")
        out[k] = float(v)
    if out.get("camera_height", 1.0) <= 0:
        raise AssetError(f"{path}: camera_height: expected metres above the ground (> 0)")
    if not 0 < out.get("fov", 60.0) < 180:
        raise AssetError(f"{path}: fov: expected a horizontal field of view in (0, 180) degrees")
    return out


def crop_perspective(meta: dict[str, float], crop: tuple[float, float, float, float], photo_size: tuple[int, int]
                     ) -> dict[str, float]:
    """A photo's perspective seen through the crop box ``(x0, y0, width, height)`` (photo pixels) of a
    photo of ``photo_size`` (width, height): horizon row as a fraction of the crop, crop fov."""
    x0, y0, cw, ch = crop
    pw, ph = photo_size
    out = dict(meta)
    if "horizon" in meta:
        out["horizon"] = (meta["horizon"] * ph - y0) / ch
    if "fov" in meta:
        out["fov"] = float(np.degrees(2 * np.arctan(cw / pw * np.tan(np.radians(meta["fov"]) / 2))))
    return out


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    return v * np.cos(angle) + np.cross(axis, v) * np.sin(angle) + axis * axis.dot(v) * (1 - np.cos(angle))


def ground_camera(rng: np.random.Generator, width: int, height: int, fov: float, horizon: float,
                  target: np.ndarray, distance: tuple[float, float], camera_height: float | None = None,
                  rows: tuple[float, float] = (0.35, 0.8), cols: tuple[float, float] = (0.3, 0.7),
                  roll: float = 0.0, tries: int = 32) -> dict[str, Any]:
    """Camera params (as ``camera.sample_camera_params`` returns) for a level camera whose horizon
    lies at row fraction ``horizon``, looking at ``target`` (a point on or above the ground).

    Without ``camera_height``, the target is placed at a sampled image position (``rows``, ``cols``
    fractions; rows below the horizon where possible) at a sampled ``distance``, and the height
    follows. With it, the distance follows from the height and the sampled row (the target then
    appears at whatever size that perspective gives)."""
    f = (width / 2.0) / np.tan(np.radians(fov) / 2.0)
    pitch = float(np.arctan((0.5 - horizon) * height / f))  # > 0: looking down
    target = np.asarray(target, dtype=np.float64)
    best: dict[str, Any] | None = None
    for _ in range(tries):
        lo = max(rows[0], min(horizon + 0.08, rows[1]))
        row = float(rng.uniform(lo, max(lo, rows[1])))
        col = float(rng.uniform(*cols))
        yaw = float(rng.uniform(0.0, 2 * np.pi))
        r = float(rng.uniform(*distance))
        below = pitch + float(np.arctan((row - 0.5) * height / f))  # elevation of the target ray, down
        if camera_height is None:
            cam_z = target[2] + r * np.sin(below)
            if cam_z < 0.05:
                continue
        else:
            cam_z = camera_height
            if below <= 1e-3 or cam_z <= target[2]:
                below = max(below, 1e-3)
                if cam_z <= target[2]:
                    continue
            r = (cam_z - target[2]) / np.sin(below)
        horiz = np.array([np.cos(yaw), np.sin(yaw), 0.0])  # camera -> target, horizontal part
        origin = target - r * (np.cos(below) * horiz - np.array([0.0, 0.0, np.sin(below)]))
        side = float(np.arctan((col - 0.5) * width / f))  # target right of centre -> turn camera left
        fwd_h = _rotate(horiz, np.array([0.0, 0.0, 1.0]), side)
        forward = np.cos(pitch) * fwd_h - np.array([0.0, 0.0, np.sin(pitch)])
        best = {
            "model": "pinhole", "origin": origin.tolist(), "target": (origin + forward).tolist(),
            "roll": float(roll), "fov": float(fov), "aperture": 0.0,
            "focus_distance": float(np.linalg.norm(target - origin)),
            "theta": float(np.degrees(np.arccos(np.clip((origin - target)[2] / max(r, 1e-9), -1, 1)))),
            "radius": float(r), "height": float(cam_z), "horizon": float(horizon), "pitch": float(np.degrees(pitch)),
        }
        break
    if best is None:  # no row/height combination worked: look at the target from its side, level
        origin = target + np.array([distance[0], 0.0, 0.0])
        origin[2] = max(origin[2], 0.1)
        best = {"model": "pinhole", "origin": origin.tolist(), "target": target.tolist(), "roll": 0.0,
                "fov": float(fov), "aperture": 0.0, "focus_distance": float(distance[0]), "theta": 90.0,
                "radius": float(distance[0]), "height": float(origin[2]), "horizon": 0.5, "pitch": 0.0}
    return best


def horizon_row(to_world: np.ndarray, width: int, height: int, fov: float) -> float:
    """Where the horizon crosses the image's vertical centre line, as a fraction of the height
    (pinhole camera, ``to_world`` from ``camera.look_at``: +X left, +Y up, +Z forward)."""
    fwd = to_world[:3, 2]
    up = to_world[:3, 1]
    f = (width / 2.0) / np.tan(np.radians(fov) / 2.0)
    # The horizon direction in the plane of forward and up: d = fwd + t up with d_z = 0.
    t = -fwd[2] / up[2]
    return float((height / 2.0 - f * t) / height)
