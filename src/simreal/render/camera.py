"""Camera sampling and projection. World frame is Z-up. Camera frames follow Mitsuba's look-at
convention: local +X points to the image's left, +Y up, +Z forward. Pixel coordinates are
continuous with pixel (c, r) covering [c, c+1) x [r, r+1), so its centre is (c + 0.5, r + 0.5).

The same model generates the label rays and projects points, so labels agree with the image for
pinhole, thin-lens (through the lens centre) and equidistant fisheye cameras."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simreal.render.spec import CameraSpec


def sample_on_sphere_segment(
    rng: np.random.Generator, theta_deg: tuple[float, float], phi_deg: tuple[float, float], n: int | None = None
) -> np.ndarray:
    """Unit vectors uniform *by area* on the segment theta1..theta2 (polar, from +Z), phi1..phi2.

    Archimedes' hat-box theorem: area on a sphere between two heights is proportional to the height
    difference, so z = cos(theta) is uniform on [cos theta2, cos theta1].
    """
    t1, t2 = np.deg2rad(theta_deg)
    p1, p2 = np.deg2rad(phi_deg)
    size = () if n is None else (n,)
    z = rng.uniform(np.cos(t2), np.cos(t1), size)
    phi = rng.uniform(p1, p2, size)
    s = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    return np.stack([s * np.cos(phi), s * np.sin(phi), z], axis=-1)


def look_at(origin: np.ndarray, target: np.ndarray, up: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """4x4 camera-to-world matrix (Mitsuba's look_at), then a roll about the viewing axis."""
    origin = np.asarray(origin, dtype=np.float64)
    d = np.asarray(target, dtype=np.float64) - origin
    d /= np.linalg.norm(d)
    up = np.asarray(up, dtype=np.float64)
    left = np.cross(up, d)
    if np.linalg.norm(left) < 1e-8:  # looking straight along up: pick another up
        left = np.cross(np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.9 else np.array([1.0, 0.0, 0.0]), d)
    left /= np.linalg.norm(left)
    new_up = np.cross(d, left)
    r = np.deg2rad(roll_deg)
    c, s = np.cos(r), np.sin(r)
    left, new_up = c * left + s * new_up, -s * left + c * new_up
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = left, new_up, d, origin
    return m


@dataclass
class Camera:
    """A posed camera with an intrinsic model; all angles in degrees."""

    to_world: np.ndarray
    width: int
    height: int
    model: str = "pinhole"
    fov: float = 40.0  # horizontal field of view (pinhole/thinlens) or fisheye field of view
    aperture: float = 0.0
    focus_distance: float = 1.0

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (fisheye: pixels per radian)."""
        if self.model == "fisheye":
            return (self.width / 2.0) / (np.deg2rad(self.fov) / 2.0)
        return (self.width / 2.0) / np.tan(np.deg2rad(self.fov) / 2.0)

    @property
    def origin(self) -> np.ndarray:
        return self.to_world[:3, 3]

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) in the camera frame."""
        inv = np.linalg.inv(self.to_world)
        return points @ inv[:3, :3].T + inv[:3, 3]

    @property
    def half_fov(self) -> float:
        """Half the field of view in radians (fisheye: the largest angle from the axis in view)."""
        return float(np.deg2rad(self.fov) / 2.0)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuous pixel coordinates (N, 2) of world points and a mask of those in view of the
        model (in front of a pinhole; inside the fisheye's field of view)."""
        return self.project_camera(self.to_camera(np.asarray(points, dtype=np.float64)))

    def project_camera(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`project` for points (or, for the fisheye, directions) already in the camera frame."""
        f = self.focal_px
        cx, cy = self.width / 2.0, self.height / 2.0
        if self.model == "fisheye":
            theta = np.arctan2(np.hypot(p[:, 0], p[:, 1]), p[:, 2])
            phi = np.arctan2(p[:, 1], p[:, 0])
            r = f * theta
            uv = np.stack([cx - r * np.cos(phi), cy - r * np.sin(phi)], axis=1)
            ok = theta <= self.half_fov
        else:
            z = np.where(p[:, 2] > 1e-9, p[:, 2], 1e-9)
            uv = np.stack([cx - f * p[:, 0] / z, cy - f * p[:, 1] / z], axis=1)
            ok = p[:, 2] > 1e-9
        return uv, ok

    def pixel_rays(self) -> tuple[np.ndarray, np.ndarray]:
        """World-space unit directions (H, W, 3) through every pixel centre, and a validity mask."""
        cols = np.arange(self.width) + 0.5
        rows = np.arange(self.height) + 0.5
        u, v = np.meshgrid(cols, rows)
        dx = self.width / 2.0 - u
        dy = self.height / 2.0 - v
        f = self.focal_px
        if self.model == "fisheye":
            r = np.hypot(dx, dy)
            theta = r / f
            phi = np.arctan2(dy, dx)
            d = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
            valid = theta <= self.half_fov
        else:
            d = np.stack([dx / f, dy / f, np.ones_like(dx)], -1)
            d /= np.linalg.norm(d, axis=-1, keepdims=True)
            valid = np.ones(d.shape[:2], dtype=bool)
        world = d @ self.to_world[:3, :3].T
        return world, valid


def sample_camera_params(
    rng: np.random.Generator, spec: CameraSpec, target: np.ndarray, object_radius: float
) -> dict:
    """Sample a camera pose and intrinsics (JSON-ready) around ``target``."""
    direction = sample_on_sphere_segment(rng, spec.theta, spec.phi)
    radius = float(rng.uniform(*spec.radius))
    origin = np.asarray(target) + radius * direction
    jitter = rng.normal(0.0, spec.look_at_jitter * max(object_radius, 1e-6), 3)
    look = np.asarray(target) + jitter
    fov = spec.fisheye_fov if spec.model == "fisheye" else float(rng.uniform(*spec.fov))
    aperture = float(rng.uniform(*spec.aperture)) if spec.model == "thinlens" else 0.0
    focus = float(np.linalg.norm(look - origin) * (1.0 + rng.uniform(-1, 1) * spec.focus_jitter))
    return {
        "model": spec.model,
        "origin": origin.tolist(),
        "target": look.tolist(),
        "roll": float(rng.uniform(*spec.roll)),
        "fov": float(fov),
        "aperture": aperture,
        "focus_distance": focus,
        "exposure": float(rng.uniform(*spec.exposure)),
        "theta": float(np.degrees(np.arccos(np.clip(direction[2], -1, 1)))),
        "radius": radius,
    }


def camera_from_params(p: dict, width: int, height: int) -> Camera:
    """Rebuild the Camera described by sampled params."""
    to_world = look_at(np.array(p["origin"]), np.array(p["target"]), np.array([0.0, 0.0, 1.0]), p["roll"])
    return Camera(to_world, width, height, p["model"], p["fov"], p.get("aperture", 0.0),
                  p.get("focus_distance", 1.0))
