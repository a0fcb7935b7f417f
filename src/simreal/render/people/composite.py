"""Compositing rendered people into a background plate (a photo, or a procedural room's plate):

- **occlusion**: furniture prisms that the camera ray meets before a person hide that person's pixels;
- **shadows on the floor**: the key light's shadow of each person (its mesh projected onto the floor
  along the light, looked up at every floor point the camera sees), plus a soft contact shadow
  (ambient occlusion) under each person; the plate is darkened by a differential factor, only where
  the camera sees the floor (not furniture, not outside the floor polygon);
- **motion blur**: each person's layer (and its mask) smeared along a short line;
- **lighting**: a random gain on the whole image.

Kept in its own module so it can later be unified with a shadow catcher in the high-fidelity tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage


@dataclass
class ShadowGrid:
    """A person's shadow on the floor: occupancy (0..1) on a grid of ``cell``-metre squares whose corner
    (0, 0) sits at floor point ``origin``."""

    origin: np.ndarray
    cell: float
    occupancy: np.ndarray


def project_to_floor(points: np.ndarray, light: dict[str, Any]) -> np.ndarray:
    """Where the key light's rays through world ``points`` (N, 3) meet the floor (N, 2): from the lamp's
    position, or along the window light's direction (pointing towards the light)."""
    p = np.asarray(points, np.float64)
    if light["kind"] == "lamp":
        lamp = np.asarray(light["position"], np.float64)
        s = lamp[2] / np.maximum(lamp[2] - p[:, 2], 1e-6)
        return lamp[None, :2] + s[:, None] * (p[:, :2] - lamp[None, :2])
    u = np.asarray(light["direction"], np.float64)
    return p[:, :2] - (p[:, 2] / max(u[2], 1e-6))[:, None] * u[None, :2]


def shadow_grid(vertices: np.ndarray, light: dict[str, Any], cell: float = 0.02) -> ShadowGrid:
    """A person's shadow: its mesh vertices projected onto the floor along the key light and splatted
    into ``cell``-sized squares; closing and hole filling turn the dense splats into the solid shadow
    (the mesh's vertex spacing is a centimetre or two, stretched by at most 1/sin(elevation))."""
    q = project_to_floor(vertices, light)
    lo = q.min(axis=0) - 4 * cell
    ij = np.floor((q - lo) / cell).astype(np.int64)
    shape = tuple(ij.max(axis=0)[::-1] + 5)
    occ = np.zeros(shape, bool)
    occ[ij[:, 1], ij[:, 0]] = True
    occ = ndimage.binary_closing(occ, structure=np.ones((3, 3), bool), iterations=2)
    occ = ndimage.binary_fill_holes(occ)
    return ShadowGrid(lo, cell, ndimage.gaussian_filter(occ.astype(np.float32), 1.5))  # a soft penumbra


def key_shadow(grids: list[ShadowGrid], floor_xy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fraction (0..1) of the key light blocked by people at floor points ``floor_xy`` (H, W, 2) where
    ``mask``; bilinear look-ups give soft edges."""
    from simreal.render.fisheye_tiles import _bilinear

    out = np.zeros(mask.shape, np.float32)
    if not grids or not mask.any():
        return out
    pts = floor_xy[mask]
    acc = np.zeros(len(pts), np.float32)
    for g in grids:
        uv = (pts - g.origin) / g.cell  # continuous grid coordinates (cell centres at +0.5)
        h, w = g.occupancy.shape
        inside = (uv[:, 0] >= 0) & (uv[:, 1] >= 0) & (uv[:, 0] < w) & (uv[:, 1] < h)
        if inside.any():
            v = _bilinear(g.occupancy[..., None], uv[inside, 0], uv[inside, 1])[:, 0]
            acc[inside] = np.maximum(acc[inside], v)
    out[mask] = acc
    return out


def contact_shadow(discs: list[tuple[float, float, float]], floor_xy: np.ndarray, mask: np.ndarray,
                   sigma: float = 0.18) -> np.ndarray:
    """Soft darkening (0..1) under people: 1 inside each disc (x, y, radius) of the floor under a person,
    falling off as a Gaussian of the distance outside it (an ambient-occlusion stand-in)."""
    out = np.zeros(mask.shape, np.float32)
    if not discs or not mask.any():
        return out
    p = floor_xy[mask]
    acc = np.zeros(len(p), np.float64)
    for x, y, r in discs:
        d = np.maximum(np.hypot(p[:, 0] - x, p[:, 1] - y) - r, 0.0)
        acc = np.maximum(acc, np.exp(-0.5 * (d / sigma) ** 2))
    out[mask] = acc
    return out


def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised motion-blur kernel: a line of ``length`` pixels at ``angle_deg`` (anti-aliased)."""
    n = int(np.ceil(length)) | 1
    n = max(n, 3)
    k = np.zeros((n, n), np.float64)
    c = (n - 1) / 2
    a = np.deg2rad(angle_deg)
    for t in np.linspace(-length / 2, length / 2, max(8, int(length * 8))):
        x, y = c + t * np.cos(a), c - t * np.sin(a)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy),
                          (1, 1, fx * fy)):
            if 0 <= x0 + dx < n and 0 <= y0 + dy < n:
                k[y0 + dy, x0 + dx] += w
    return k / k.sum()


def owner_map(person_of_pixel: np.ndarray) -> np.ndarray:
    """Each pixel's nearest person (-1 where there is none at all): assigns anti-aliased edge pixels,
    whose centres miss the person, to the person they belong to."""
    has = person_of_pixel >= 0
    if not has.any():
        return person_of_pixel
    _, (iy, ix) = ndimage.distance_transform_edt(~has, return_indices=True)
    return person_of_pixel[iy, ix]


def blur_people(rgba: np.ndarray, owner: np.ndarray, kernels: dict[int, np.ndarray]) -> np.ndarray:
    """Premultiplied RGBA with each person's pixels (by ``owner``) convolved with its kernel."""
    if not kernels:
        return rgba
    out = rgba.copy()
    for k, ker in kernels.items():
        sel = (owner == k)[..., None]
        layer = np.where(sel, rgba, 0.0)
        out = np.where(sel, 0.0, out) + np.stack([ndimage.convolve(layer[..., c], ker, mode="constant")
                                                  for c in range(rgba.shape[-1])], -1)
    return out


def blur_mask(mask: np.ndarray, kernel: np.ndarray | None) -> np.ndarray:
    """A person's mask after the same motion blur as its pixels (coverage >= 0.5)."""
    if kernel is None:
        return mask
    return ndimage.convolve(mask.astype(np.float64), kernel, mode="constant") >= 0.5


def composite(plate_srgb: np.ndarray, people: np.ndarray, floor_factor: np.ndarray, gain: float) -> np.ndarray:
    """Premultiplied linear people over the plate darkened by ``floor_factor``, times ``gain``, as sRGB
    uint8."""
    from simreal.render.build import linear_to_srgb, srgb_to_linear

    back = srgb_to_linear(plate_srgb.astype(np.float32) / 255.0) * floor_factor[..., None]
    alpha = np.clip(people[..., 3:4], 0.0, 1.0)
    rgb = (people[..., :3] + (1.0 - alpha) * back) * gain
    return (linear_to_srgb(rgb) * 255.0 + 0.5).astype(np.uint8)
