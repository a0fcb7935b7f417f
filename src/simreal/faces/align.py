"""Face alignment from dlib's 5 landmarks: a similarity transform onto dlib's 5-point template,
then a bilinear warp to a square chip; and head-pose signals from the same 5 points.

Coordinates are pixel-index coordinates (the centre of pixel (0, 0) is (0, 0)), as dlib reports
landmarks. The template is dlib's own (``get_face_chip_details``): the unit-square positions of the
outer and inner corner of the eye on the image's right, the same for the eye on the image's left,
and the base of the nose, padded by ``padding`` on every side and scaled to the chip size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

TEMPLATE5 = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
])


def template_points(size: int, padding: float = 0.3) -> np.ndarray:
    """The 5 template landmarks (x, y) in a ``size`` x ``size`` chip with ``padding``."""
    return (padding + TEMPLATE5) / (2.0 * padding + 1.0) * size


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity (rotation, uniform scale, translation; no reflection)
    mapping ``src`` points onto ``dst`` points (Umeyama 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1.0
    rot = u @ e @ vt
    var_s = (s**2).sum() / len(src)
    scale = float((sig * np.diag(e)).sum() / var_s) if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points (N, 2) mapped by the 2x3 matrix ``m``."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix."""
    a = np.linalg.inv(m[:, :2])
    return np.hstack([a, (-a @ m[:, 2])[:, None]])


def warp(rgb: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` image whose pixel p shows ``rgb`` at ``m^-1 p`` (bilinear; black outside)."""
    inv = invert_affine(m)
    # PIL samples output pixel centres at (x + 0.5, y + 0.5) in continuous coordinates; convert
    # the index-coordinate inverse to that convention: x_in = A (x_out - 0.5) + t + 0.5
    a, t = inv[:, :2], inv[:, 2]
    t_c = t + 0.5 - a @ np.array([0.5, 0.5])
    data = (a[0, 0], a[0, 1], t_c[0], a[1, 0], a[1, 1], t_c[1])
    img = Image.fromarray(rgb)
    out = img.transform((size, size), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)
    return np.asarray(out)


@dataclass
class AlignedFace:
    """A chip with the transform that made it (frame -> chip) and its landmarks in chip pixels."""

    chip: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int = 112, padding: float = 0.3) -> AlignedFace:
    """Align the face with 5 ``landmarks`` (frame pixels) to a ``size`` chip on dlib's template."""
    m = similarity_transform(landmarks, template_points(size, padding))
    return AlignedFace(warp(rgb, m, size), m, apply_affine(m, landmarks))


def head_pose(landmarks: np.ndarray) -> dict[str, float]:
    """Head-pose signals from the 5 points, in units of the distance between the eye centres.

    ``roll``: angle of the eye line (radians). After removing roll: ``yaw`` is the nose's
    sideways offset from the eye midpoint (0 frontal; changes sign as the head turns), ``pitch``
    the nose's drop below the eye line (changes as the head nods). Landmark jitter is ~0.01.
    """
    p = np.asarray(landmarks, dtype=np.float64)
    eye_a, eye_b = p[0:2].mean(0), p[2:4].mean(0)
    d = eye_a - eye_b
    iod = float(np.hypot(*d))
    if iod <= 1e-9:
        return {"roll": 0.0, "yaw": 0.0, "pitch": 0.0, "iod": 0.0}
    roll = float(np.arctan2(d[1], d[0]))
    c, s = np.cos(-roll), np.sin(-roll)
    v = p[4] - (eye_a + eye_b) / 2.0
    x, y = c * v[0] - s * v[1], s * v[0] + c * v[1]
    return {"roll": roll, "yaw": float(x / iod), "pitch": float(y / iod), "iod": iod}
