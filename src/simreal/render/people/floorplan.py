"""Floor plans of ceiling-fisheye scenes: the camera calibration of a background, its furniture (polygons
on the floor plane extruded to their heights), the walkable floor, and exact ray casts against them.

Floor-plan frame: metres, origin on the floor straight below the camera, +x to the image's right, +y
to the image's top, +z up; the camera looks straight down from (0, 0, height).

A photo ``room.jpg`` may have a ``room.json`` next to it::

    {"image": "room.jpg",                       # optional; must name this photo
     "size": [1280, 960],                       # the photo's [width, height] in pixels (required)
     "camera": {"height": 2.9, "focal": 410.0, "center": [642.5, 481.0], "fov": 190},   # all optional
     "floor": {"polygon": [[x, y], ...]},       # walkable floor (metres), or "polygon_px": outline on the photo
     "furniture": [{"name": "desk", "height": 0.75, "polygon": [[x, y], ...]},
                   {"name": "sofa", "height": 0.8, "polygon_px": [[u, v], ...]}]}

``polygon_px`` outlines are drawn on the photo where the object meets the floor and are
back-projected onto the floor through the calibrated camera.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simreal.errors import AssetError
from simreal.render.camera import Camera, look_at


@dataclass
class Furniture:
    """A piece of furniture: a floor polygon (K, 2) in metres extruded from the floor to ``height``."""

    name: str
    polygon: np.ndarray
    height: float

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "height": round(float(self.height), 4),
                "polygon": [[round(float(x), 4), round(float(y), 4)] for x, y in self.polygon]}


@dataclass
class Calibration:
    """Equidistant fisheye intrinsics in the pixels of an image of ``size`` (width, height)."""

    size: tuple[int, int]
    focal: float
    center: tuple[float, float]
    fov: float

    def scaled(self, size: tuple[int, int]) -> Calibration:
        """The same camera for the image resized to ``size`` (same aspect ratio)."""
        s = size[0] / self.size[0]
        return Calibration(size, self.focal * s, (self.center[0] * s, self.center[1] * s), self.fov)

    def camera(self, height: float) -> Camera:
        """The ceiling camera at ``height`` m looking straight down (image up = +y)."""
        xf = look_at(np.array([0.0, 0.0, height]), np.zeros(3), np.array([0.0, 1.0, 0.0]))
        return Camera(xf, self.size[0], self.size[1], "fisheye", self.fov, focal=self.focal, center=self.center)


@dataclass
class FloorPlan:
    """What is known about one background: calibration, camera height (None: drawn per image), furniture
    and the walkable floor (None: anywhere the camera sees)."""

    calibration: Calibration
    camera_height: float | None = None
    furniture: list[Furniture] = field(default_factory=list)
    floor: np.ndarray | None = None


def default_calibration(size: tuple[int, int], focal: float | None, center: tuple[float, float] | None,
                        fov: float) -> Calibration:
    """A calibration from config values: ``focal`` None means ``fov`` spans the shorter image side."""
    w, h = size
    f = focal if focal is not None else (min(w, h) / 2.0) / (np.deg2rad(fov) / 2.0)
    c = center if center is not None else (w / 2.0, h / 2.0)
    return Calibration((int(w), int(h)), float(f), (float(c[0]), float(c[1])), float(fov))


def backproject(cam: Camera, uv: np.ndarray, z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Floor-plan points (N, 2) where the rays through pixel coordinates ``uv`` (N, 2) meet the plane at
    height ``z``, and a mask of rays that reach it (inside the image circle and going down)."""
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    cx, cy = cam.principal_point
    dx, dy = cx - uv[:, 0], cy - uv[:, 1]
    theta = np.hypot(dx, dy) / cam.focal_px
    phi = np.arctan2(dy, dx)
    d_cam = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], 1)
    d = d_cam @ cam.to_world[:3, :3].T
    o = cam.origin
    ok = (theta <= np.deg2rad(cam.fov) / 2.0) & (d[:, 2] < -1e-6)
    t = np.where(ok, (z - o[2]) / np.where(ok, d[:, 2], -1.0), 0.0)
    return (o[None, :2] + t[:, None] * d[:, :2]), ok


def _polygon(points: Any, where: str) -> np.ndarray:
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssetError(f"{where}: expected a list of [x, y] points") from None
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 3 or not np.isfinite(p).all():
        raise AssetError(f"{where}: expected at least 3 finite [x, y] points, got {points!r:.80}")
    from shapely.geometry import Polygon

    poly = Polygon(p)
    if not poly.is_valid or poly.area <= 1e-6:
        raise AssetError(f"{where}: the polygon is self-intersecting or has no area")
    return p


def _floor_polygon(item: dict[str, Any], where: str, cam: Camera) -> np.ndarray:
    """A floor polygon in metres from ``polygon`` (metres) or ``polygon_px`` (photo pixels)."""
    if ("polygon" in item) == ("polygon_px" in item):
        raise AssetError(f"{where}: expected exactly one of 'polygon' (metres) or 'polygon_px' (pixels)")
    if "polygon" in item:
        return _polygon(item["polygon"], f"{where}.polygon")
    px = _polygon(item["polygon_px"], f"{where}.polygon_px")
    w, h = cam.width, cam.height
    outside = [i for i, (u, v) in enumerate(px) if not (0 <= u <= w and 0 <= v <= h)]
    if outside:
        i = outside[0]
        raise AssetError(f"{where}.polygon_px[{i}]: {px[i].tolist()} lies outside the {w}x{h} photo")
    pts, ok = backproject(cam, px)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise AssetError(f"{where}.polygon_px[{i}]: {px[i].tolist()} does not see the floor through the "
                         "calibrated camera (outside the image circle or above the horizon)")
    return _polygon(pts, f"{where}.polygon_px")


def read_floor_plan(path: Path, photo_size: tuple[int, int], base: Calibration, photo_name: str) -> FloorPlan:
    """Read and check a photo's furniture JSON (``base``: the calibration from the config at the photo's
    size). Anything that does not match the photo is one AssetError naming the file and key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AssetError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise AssetError(f"{path}: expected a JSON object at the top level")
    unknown = sorted(set(data) - {"image", "size", "camera", "floor", "furniture"})
    if unknown:
        raise AssetError(f"{path}: unknown key(s) {unknown} (expected image, size, camera, floor, furniture)")
    if "image" in data and data["image"] != photo_name:
        raise AssetError(f"{path}: 'image' is {data['image']!r}, but this JSON sits next to {photo_name!r}")
    size = data.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise AssetError(f"{path}: 'size' must be the photo's [width, height] in pixels, got {size!r}")
    if tuple(size) != tuple(photo_size):
        raise AssetError(f"{path}: 'size' {size} does not match its photo {photo_name} "
                         f"({photo_size[0]}x{photo_size[1]} pixels)")
    cam_d = data.get("camera") or {}
    if not isinstance(cam_d, dict) or sorted(set(cam_d) - {"height", "focal", "center", "fov"}):
        raise AssetError(f"{path}: 'camera' must be an object with height, focal, center, fov")
    try:
        focal = float(cam_d.get("focal", base.focal))
        center = tuple(float(c) for c in cam_d.get("center", base.center))
        fov = float(cam_d.get("fov", base.fov))
        height = float(cam_d["height"]) if "height" in cam_d else None
    except (TypeError, ValueError):
        raise AssetError(f"{path}: camera values must be numbers (center: [x, y])") from None
    if focal <= 0 or len(center) != 2 or not 0 < fov <= 270 or (height is not None and not 1.0 <= height <= 20):
        raise AssetError(f"{path}: camera: expected focal > 0, center [x, y], fov in (0, 270], height in [1, 20] m")
    calib = Calibration(tuple(photo_size), focal, (center[0], center[1]), fov)  # type: ignore[arg-type]
    # pixel outlines need a camera height: the photo's, else the middle of nothing -> require it
    needs_px = any(isinstance(f, dict) and "polygon_px" in f for f in [data.get("floor") or {},
                                                                         *(data.get("furniture") or [])])
    if needs_px and height is None:
        raise AssetError(f"{path}: 'polygon_px' outlines need 'camera.height' (to back-project onto the floor)")
    cam = calib.camera(height or 3.0)
    floor = None
    if data.get("floor") is not None:
        if not isinstance(data["floor"], dict):
            raise AssetError(f"{path}: 'floor' must be an object with 'polygon' or 'polygon_px'")
        floor = _floor_polygon(data["floor"], f"{path}: floor", cam)
    items = data.get("furniture") or []
    if not isinstance(items, list):
        raise AssetError(f"{path}: 'furniture' must be a list of objects")
    furniture = []
    for i, item in enumerate(items):
        where = f"{path}: furniture[{i}]"
        if not isinstance(item, dict) or sorted(set(item) - {"name", "height", "polygon", "polygon_px"}):
            raise AssetError(f"{where}: expected an object with name, height and polygon or polygon_px")
        h = item.get("height")
        if not isinstance(h, (int, float)) or h <= 0 or (height is not None and h >= height):
            raise AssetError(f"{where}.height: expected a number of metres > 0 and below the camera, got {h!r}")
        furniture.append(Furniture(str(item.get("name", f"furniture{i}")), _floor_polygon(item, where, cam),
                                   float(h)))
    return FloorPlan(calib, height, furniture, floor)


def floor_points(cam: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel centre: the ray's world direction (H, W, 3), its floor point (H, W, 2) and whether it
    reaches the floor (H, W)."""
    dirs, valid = cam.pixel_rays()
    o = cam.origin
    down = valid & (dirs[..., 2] < -1e-6)
    t = np.where(down, -o[2] / np.where(down, dirs[..., 2], -1.0), 0.0)
    return dirs, o[:2] + t[..., None] * dirs[..., :2], down


def furniture_hits(origin: np.ndarray, dirs: np.ndarray, furniture: list[Furniture]) -> tuple[np.ndarray,
                                                                                             np.ndarray]:
    """Exact first hits of rays (origin (3,), unit ``dirs`` (N, 3)) with the furniture prisms (top face
    and vertical sides): distance (inf: none) and furniture index (-1: none)."""
    import shapely

    dirs = np.asarray(dirs, np.float64).reshape(-1, 3)
    best = np.full(len(dirs), np.inf)
    which = np.full(len(dirs), -1, dtype=np.int64)
    o = np.asarray(origin, np.float64)
    for k, f in enumerate(furniture):
        poly = shapely.Polygon(f.polygon)
        cand = np.full(len(dirs), np.inf)
        dz = dirs[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            t_top = (f.height - o[2]) / dz
        hit_top = np.isfinite(t_top) & (t_top > 0)
        if hit_top.any():
            p = o[None, :2] + t_top[hit_top, None] * dirs[hit_top, :2]
            inside = shapely.contains_xy(poly, p[:, 0], p[:, 1])
            idx = np.flatnonzero(hit_top)[inside]
            cand[idx] = t_top[idx]
        ring = np.vstack([f.polygon, f.polygon[:1]])
        for a, b in zip(ring[:-1], ring[1:], strict=True):
            e = b - a
            # o.xy + t d.xy = a + s e  ->  [d.xy, -e] [t, s]^T = a - o.xy
            det = dirs[:, 0] * (-e[1]) - dirs[:, 1] * (-e[0])
            rx, ry = a[0] - o[0], a[1] - o[1]
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (rx * (-e[1]) - ry * (-e[0])) / det
                s = (dirs[:, 0] * ry - dirs[:, 1] * rx) / det
            z = o[2] + t * dz
            ok = np.isfinite(t) & (t > 0) & (s >= 0) & (s <= 1) & (z >= 0) & (z <= f.height)
            cand = np.where(ok & (t < cand), t, cand)
        closer = cand < best
        best = np.where(closer, cand, best)
        which = np.where(closer, k, which)
    return best, which


def visible_region(cam: Camera, max_angle: float, samples: int = 180) -> np.ndarray:
    """The floor polygon (metres) seen inside the image rectangle and within ``max_angle`` degrees of
    straight down: the boundary of the valid pixels, back-projected."""
    cx, cy = cam.principal_point
    theta_max = min(np.deg2rad(max_angle), np.deg2rad(cam.fov) / 2.0)
    r_max = cam.focal_px * theta_max
    phis = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    pts = []
    for phi in phis:
        u, v = np.cos(phi), -np.sin(phi)  # image direction (x right, y down) of floor direction phi
        # furthest radius along this direction inside the image rectangle
        lim = [r_max]
        if u > 1e-9:
            lim.append((cam.width - 1e-3 - cx) / u)
        if u < -1e-9:
            lim.append((1e-3 - cx) / u)
        if v > 1e-9:
            lim.append((cam.height - 1e-3 - cy) / v)
        if v < -1e-9:
            lim.append((1e-3 - cy) / v)
        r = max(min(lim), 0.0)
        pts.append([cx + r * u, cy + r * v])
    floor, ok = backproject(cam, np.asarray(pts))
    return floor[ok]
