"""Fast fisheye images from pinhole tiles that share the fisheye's optical centre.

Mitsuba's fisheye sensor is a Python plugin, so in scalar mode every camera sample pays a Python call.
Because a pinhole camera at the same centre sees exactly the same ray for a given direction, a fisheye
region can instead be rendered through one or more native pinhole sensors and resampled per
direction: each output pixel averages ``sub x sub`` ray directions inside it, each looked up
(bilinearly, premultiplied RGBA) in the tile that sees it closest to the tile's centre. The geometry is
exact; only the resampling filter differs from rendering the fisheye directly.

Exact per-pixel-centre labels of a fisheye region are cast ray by ray (:func:`region_labels`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simreal.render.camera import Camera, look_at

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, end exclusive)


def _pixel_dirs(cam: Camera, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World directions of fisheye pixel coordinates (continuous) and their validity."""
    cx, cy = cam.principal_point
    dx, dy = cx - xs, cy - ys
    theta = np.hypot(dx, dy) / cam.focal_px
    phi = np.arctan2(dy, dx)
    d = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    return d @ cam.to_world[:3, :3].T, theta <= np.deg2rad(cam.fov) / 2.0


def _tan_coords(tile: Camera, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tangent-plane coordinates (..., 2) of world directions in a pinhole tile, and in-front mask."""
    local = dirs @ tile.to_world[:3, :3]
    z = local[..., 2]
    front = z > 1e-6
    zs = np.where(front, z, 1.0)
    return np.stack([local[..., 0] / zs, local[..., 1] / zs], -1), front


def pinhole_tile(cam: Camera, region: Region, supersample: float, margin_px: float = 2.0) -> Camera:
    """A pinhole camera at the fisheye's centre that sees the whole ``region`` of the fisheye image,
    with pixels at least ``supersample`` times finer than the fisheye's there."""
    x0, y0, x1, y1 = region
    n = 9
    xs, ys = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    dirs, _ = _pixel_dirs(cam, xs, ys)
    up = cam.to_world[:3, 1]
    aim = dirs.reshape(-1, 3).mean(axis=0)
    aim /= np.linalg.norm(aim)
    for _ in range(3):  # re-aim at the middle of the tangent extent
        tile = Camera(look_at(cam.origin, cam.origin + aim, up), 16, 16, "pinhole", 60.0)
        t, _ = _tan_coords(tile, dirs)
        mid = (t.reshape(-1, 2).min(axis=0) + t.reshape(-1, 2).max(axis=0)) / 2
        aim = tile.to_world[:3, :3] @ np.array([mid[0], mid[1], 1.0])
        aim /= np.linalg.norm(aim)
    tile = Camera(look_at(cam.origin, cam.origin + aim, up), 16, 16, "pinhole", 60.0)
    t, _ = _tan_coords(tile, dirs)
    # finest fisheye pixel spacing in tangent units over the region
    step = min(np.abs(np.diff(t, axis=1)).max(axis=-1).min(), np.abs(np.diff(t, axis=0)).max(axis=-1).min())
    step = step * (n - 1) / max(x1 - x0, y1 - y0, 1)
    pix = max(step / supersample, 1e-5)
    half = np.abs(t.reshape(-1, 2)).max(axis=0) + margin_px * pix * supersample
    w = int(np.ceil(2 * half[0] / pix))
    h = int(np.ceil(2 * half[1] / pix))
    w, h = max(w, 4), max(h, 4)
    fov = float(np.degrees(2 * np.arctan(w * pix / 2)))
    return Camera(tile.to_world, w, h, "pinhole", fov)


def cube_tiles(cam: Camera, face_res: int) -> list[Camera]:
    """The cube faces (90.5 degree pinholes at the fisheye's centre) that some valid pixel looks through."""
    dirs, valid = cam.pixel_rays()
    d = dirs[valid][:: max(1, valid.sum() // 4096)]
    tiles = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            fwd = np.zeros(3)
            fwd[axis] = sign
            if not (np.abs(d).argmax(axis=1) == axis)[np.sign(d[:, axis]) == sign].any():
                continue
            up = np.array([0.0, 0.0, 1.0]) if axis != 2 else np.array([0.0, 1.0, 0.0])
            tiles.append(Camera(look_at(cam.origin, cam.origin + fwd, up), face_res, face_res, "pinhole", 90.5))
    return tiles


def render_tile(backend: Any, mscene: Any, tile: Camera, spp: int, seed: int, pixel_filter: str = "gaussian"
                ) -> np.ndarray:
    """Linear premultiplied RGBA (h, w, 4) of a loaded Mitsuba scene through a pinhole ``tile``."""
    sensor = backend.mi.load_dict(backend._sensor(tile, False, spp, pixel_filter))
    out = backend._timed_render(mscene, sensor=sensor, seed=int(seed) & 0x7FFFFFFF)
    if out.shape[-1] == 3:
        out = np.concatenate([out, np.ones(out.shape[:2] + (1,), np.float32)], -1)
    return out


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    x = np.clip(x - 0.5, 0, w - 1)
    y = np.clip(y - 0.5, 0, h - 1)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def warp(cam: Camera, region: Region, tiles: list[Camera], images: list[np.ndarray], sub: int = 2
         ) -> np.ndarray:
    """The fisheye ``region`` (h, w, 4) resampled from pinhole ``tiles`` and their RGBA ``images``
    (box filter of ``sub x sub`` directions per pixel; zero outside the image circle)."""
    x0, y0, x1, y1 = region
    offs = (np.arange(sub) + 0.5) / sub
    acc = np.zeros((y1 - y0, x1 - x0, images[0].shape[-1]), np.float64)
    for oy in offs:
        for ox in offs:
            xs, ys = np.meshgrid(np.arange(x0, x1) + ox, np.arange(y0, y1) + oy)
            dirs, valid = _pixel_dirs(cam, xs, ys)
            best = np.full(xs.shape, np.inf)
            val = np.zeros(acc.shape)
            for tile, img in zip(tiles, images, strict=True):
                t, front = _tan_coords(tile, dirs)
                f = tile.focal_px
                u = tile.width / 2.0 - f * t[..., 0]
                v = tile.height / 2.0 - f * t[..., 1]
                score = np.maximum(np.abs(u / tile.width - 0.5), np.abs(v / tile.height - 0.5))
                use = front & valid & (score < 0.5) & (score < best)
                if use.any():
                    val[use] = _bilinear(img, u[use], v[use])
                    best = np.where(use, score, best)
            acc += val
    return (acc / (sub * sub)).astype(np.float32)


def region_labels(backend: Any, mscene: Any, cam: Camera, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """Exact labels of a fisheye region: instance index + 1 hit by each pixel-centre ray (0: none) and the
    hit distance (inf: none)."""
    x0, y0, x1, y1 = region
    xs, ys = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
    dirs, valid = _pixel_dirs(cam, xs, ys)
    idx = np.full(xs.shape, -1, dtype=np.int64)
    dist = np.full(xs.shape, np.inf)
    if valid.any():
        idx[valid], dist[valid] = backend.cast_rays(mscene, cam.origin, dirs[valid])
    return (idx + 1).astype(np.int32), dist
