"""Rendered objects over a photograph or an environment map, with their shadows (a shadow catcher).

The shadow catcher is differential rendering (Debevec 1998) reduced to a ratio. Two extra passes
see only direct light (emitter sampling: one shadow ray per sample) on a white diffuse ground
plane z = 0, with every scene object turned into a black hold-out (it blocks light, reflects none):

- ``with``: ground plus hold-outs -> the ground's radiance with the objects' shadows and occlusion;
- ``without``: the ground alone.

``1 - with / without`` is the shadow term: 0 where nothing blocks the light, up to 1 in a full
shadow. Both passes use the same seed, and Mitsuba's scalar variants seed every pixel on its own,
so a pixel whose shadow rays never meet an object draws the same random numbers in both passes and
its term is exactly 0: the photo comes through unchanged (bit for bit after encoding), not merely
unchanged on average. The term is taken on pixels that see only ground and smoothed (a few samples
per pixel are noisy), and the passes run only in the window where the objects can shade the
ground, at reduced resolution (``shadow_ratio``). The frame is then
``objects (premultiplied) + background x (1 - alpha) x (1 - term)``.

``finish`` turns the beauty pass, the background and the factor into display values with
auto-exposure and a tone curve (``simreal.render.film``). A photograph is already a display image:
only the objects are tone mapped (exposed to match the photo's brightness), and the photo is only
ever multiplied by the factor, in linear light. ``soften`` blurs the objects as much as an enlarged
photo crop is blurred. Everything here takes plain arrays and ``SceneData``, so other scene kinds
(people composited onto photos) reuse it as is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from simreal.render import film
from simreal.render.lighting import env_radiance, upward_irradiance
from simreal.render.primitives import primitive
from simreal.render.scene import Instance, Material, SceneData

GROUND_SIZE = 400.0  # scene units: far enough that its edge sits on the horizon
_HOLDOUT = Material((0.0, 0.0, 0.0), None, 1.0, 0.0, model="diffuse")
_WHITE = Material((1.0, 1.0, 1.0), None, 1.0, 0.0, model="diffuse")


def ground_plane(z: float = 0.0, size: float = GROUND_SIZE) -> Instance:
    """The catcher: a white diffuse plane at height ``z`` (role ``catcher``, never labelled)."""
    xf = np.eye(4)
    xf[2, 3] = z
    return Instance(primitive("plane", size=size).transformed(xf), _WHITE, 0, 0, "catcher")


def catcher_scenes(scene: SceneData, spp: int, z: float = 0.0) -> tuple[SceneData, SceneData]:
    """The ``with`` and ``without`` scenes of the shadow catcher for ``scene`` (direct light only,
    by emitter sampling: one shadow ray per sample)."""
    holdouts = [dataclasses.replace(i, material=_HOLDOUT) for i in scene.instances if i.role != "ground"]
    plane = ground_plane(z)
    common = {"hide_environment": True, "max_depth": 2, "spp": int(spp), "integrator": "direct"}
    with_objects = dataclasses.replace(scene, instances=[plane, *holdouts], **common)
    return with_objects, dataclasses.replace(scene, instances=[plane], **common)


def light_directions(scene: SceneData, max_dirs: int = 64, share: float = 0.2) -> np.ndarray:
    """Unit world directions (N, 3) towards the scene's strong lights above the horizon: directional
    lights, point/spot lights (from the scene centre), and the brightest texels of the environment map
    (those within ``share`` of its peak radiance x solid angle, at most ``max_dirs``)."""
    dirs = []
    for light in scene.lights:
        d = np.subtract(light.position, light.target).astype(np.float64)
        dirs.append(d / max(np.linalg.norm(d), 1e-12))
    if scene.env_image is not None:
        img = scene.env_image.astype(np.float32)
        h, w = img.shape[:2]
        lum = (img @ film.LUMA) * np.sin(np.arange(h) / max(h - 1, 1) * np.pi)[:, None]
        flat = lum.ravel()
        k = min(max_dirs, flat.size)
        top = np.argpartition(flat, flat.size - k)[flat.size - k:]
        top = top[np.argsort(flat[top])[::-1]]
        top = top[flat[top] >= share * flat[top[0]]] if flat[top[0]] > 0 else top[:0]
        rows, cols = np.divmod(top, w)
        theta = rows / max(h - 1, 1) * np.pi
        phi = (cols + 0.5) / w * 2 * np.pi
        local = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta), -np.sin(theta) * np.cos(phi)], -1)
        world = local @ np.asarray(scene.env_to_world if scene.env_to_world is not None else np.eye(3)).T
        dirs.extend(world)
    out = np.asarray(dirs, dtype=np.float64).reshape(-1, 3)
    return out[out[:, 2] > 1e-3]


def shadow_window(scene: SceneData, z: float = 0.0, reach: float = 1.5, max_length: float = 12.0,
                  pad: int = 4) -> tuple[int, int, int, int] | None:
    """The image rectangle (x0, y0, w, h) outside which the objects darken the ground by nothing
    worth drawing: the objects themselves, the ground within ``reach`` object heights of them
    (contact occlusion under a sky), and their shadows cast away from every strong light (at most
    ``max_length`` heights long). None: the whole image."""
    occluders = [i for i in scene.instances if i.role not in ("ground", "catcher")]
    if not occluders or scene.camera.model == "fisheye":
        return None
    verts = np.concatenate([i.mesh.vertices for i in occluders]).astype(np.float64)
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    height = max(hi[2] - z, 1e-3)
    corners = np.array([[x, y, zz] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for zz in (max(lo[2], z), hi[2])])
    ring = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    centre = (lo + hi) / 2.0
    radius = np.linalg.norm(hi[:2] - lo[:2]) / 2.0 + reach * height
    pts = [corners, np.stack([centre[0] + radius * np.cos(ring), centre[1] + radius * np.sin(ring),
                              np.full(16, z)], -1)]
    for d in light_directions(scene):
        t = np.minimum((corners[:, 2] - z) / d[2], max_length * height)
        pts.append(corners - t[:, None] * d)
    uv, ok = scene.camera.project(np.concatenate(pts))
    if not ok.all():
        return None  # part of the region is behind the camera: render everything
    w, h = scene.camera.width, scene.camera.height
    x0, y0 = np.floor(uv.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return (0, 0, 1, 1)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def shadow_ratio(backend: Any, scene: SceneData, spp: int, alpha: np.ndarray, z: float = 0.0,
                 eps: float = 1e-6, window: bool = True, smooth: float = 1.0, scale: int = 1) -> np.ndarray:
    """(H, W, 3) factor for the background: shadows and occlusion by every object of ``scene`` on the
    plane at height ``z``, times the objects' non-coverage ``1 - alpha`` (``alpha`` from the beauty
    pass). Only ``shadow_window`` is rendered (``window=False``: the whole image), at 1/``scale`` of
    the resolution (the shadow term is then upsampled bilinearly).

    The shadow term ``1 - with/without`` is taken on pixels that see only ground and smoothed by a
    gaussian of ``smooth`` (catcher) pixels normalised over those pixels (the Monte Carlo noise of a
    few samples per pixel, averaged out; 0 turns it off), truncated at 3 sigma; terms under 1/512
    are dropped, so where no shadow falls the factor stays exactly ``1 - alpha``."""
    from scipy.ndimage import binary_dilation, gaussian_filter, zoom

    h, w = alpha.shape
    cover = np.clip(1.0 - alpha, 0.0, 1.0)[..., None].astype(np.float32)
    cam = scene.camera
    hs, ws = -(-h // scale), -(-w // scale)
    small = dataclasses.replace(cam, width=ws, height=hs) if scale > 1 else cam
    lowres = dataclasses.replace(scene, camera=small)
    win = shadow_window(lowres, z) if window else None
    with_objects, without = catcher_scenes(dataclasses.replace(lowres, window=win), spp, z)
    a = backend.render(with_objects)[..., :3]
    b = backend.render(without)[..., :3]
    x0, y0, ww, hh = win if win is not None else (0, 0, ws, hs)
    covered = alpha > 1e-3
    if scale > 1:  # any coverage inside a catcher pixel's footprint
        padded = np.zeros((hs * scale, ws * scale), bool)
        padded[:h, :w] = covered
        covered = padded.reshape(hs, scale, ws, scale).any(axis=(1, 3))
    # ground-only pixels: a pixel away from the objects' silhouettes (the passes estimate the coverage
    # of edge pixels with their own samples)
    ground = (b > eps).all(axis=-1) & ~binary_dilation(covered)[y0:y0 + hh, x0:x0 + ww]
    shade = np.where(ground[..., None], 1.0 - np.clip(a / np.where(b > eps, b, 1.0), 0.0, 1.0), 0.0)
    if smooth > 0:
        blur = {"sigma": smooth, "mode": "constant", "truncate": 3.0}  # reaches 3 sigma, no further
        weight = gaussian_filter(ground.astype(np.float32), **blur)
        shade = np.stack([gaussian_filter(shade[..., c].astype(np.float32), **blur) for c in range(3)],
                         -1) / np.maximum(weight, 1e-6)[..., None]
    shade[shade < 1.0 / 512] = 0.0
    full = np.zeros((hs, ws, 3), np.float32)
    full[y0:y0 + hh, x0:x0 + ww] = np.clip(shade, 0.0, 1.0)
    if scale > 1:
        full = zoom(full, (scale, scale, 1), order=1, mode="nearest", grid_mode=True)[:h, :w]
    return (cover * (1.0 - full)).astype(np.float32)


def environment_background(scene: SceneData) -> np.ndarray:
    """Linear radiance (H, W, 3) of the environment behind every pixel centre (as Mitsuba shows it
    when the environment is visible), including the scene's exposure (EV)."""
    dirs, valid = scene.camera.pixel_rays()
    if scene.env_image is not None:
        img = scene.env_image
        img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img
        rgb = env_radiance(img, dirs, scene.env_to_world) * float(scene.env_scale)
    else:
        rgb = np.broadcast_to(np.asarray(scene.env_rgb or (0.0, 0.0, 0.0), np.float32), dirs.shape).copy()
    rgb[~valid] = 0.0
    if scene.env_tint is not None:
        rgb = rgb * np.asarray(scene.env_tint, np.float32)
    return (rgb * float(2.0 ** scene.exposure)).astype(np.float32)


def environment_upsampling(scene: SceneData) -> float:
    """How many times the environment map is enlarged behind the image centre: camera pixels per radian
    over map texels per radian (1 when there is no map). A 1024-texel-wide map seen at 256 px through a
    40° lens is enlarged 2.2 times."""
    if scene.env_image is None:
        return 1.0
    texels_per_radian = scene.env_image.shape[1] / (2.0 * np.pi)
    return float(scene.camera.focal_px / texels_per_radian)


def scene_irradiance(scene: SceneData) -> float:
    """Luminance of the irradiance on an upward-facing surface from the environment and the
    directional lights (point and spot lights: at their target), before exposure."""
    if scene.env_image is not None:
        img = scene.env_image.astype(np.float32) / 255.0 if scene.env_image.dtype == np.uint8 else scene.env_image
        e = upward_irradiance(img, scene.env_to_world) * float(scene.env_scale)
        if scene.env_tint is not None:
            e = e * np.asarray(scene.env_tint, np.float64)
    else:
        e = np.pi * np.asarray(scene.env_rgb or (0.0, 0.0, 0.0), np.float64)
    for light in scene.lights:
        d = np.subtract(light.position, light.target).astype(np.float64)
        cos = max(d[2] / max(np.linalg.norm(d), 1e-12), 0.0)
        rgb = np.asarray(light.rgb, np.float64)
        if light.kind != "directional":
            rgb = rgb / max(float(d @ d), 1e-12)
        e = e + rgb * cos
    return float(np.asarray(e, np.float32) @ film.LUMA)


def soften(rgba: np.ndarray, upsampling: float) -> np.ndarray:
    """Blur premultiplied RGBA as much as a background enlarged ``upsampling`` times is blurred, so
    objects are not sharper than the photo or environment map behind them (gaussian, sigma 0.5 sqrt(u^2 - 1) pixels)."""
    if upsampling <= 1.0:
        return rgba
    from scipy.ndimage import gaussian_filter

    sigma = 0.5 * float(np.sqrt(upsampling**2 - 1.0))
    return np.stack([gaussian_filter(rgba[..., c], sigma, mode="nearest") for c in range(rgba.shape[-1])], -1)


def _unpremultiply(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.clip(rgba[..., 3], 0.0, 1.0)
    colour = rgba[..., :3] / np.maximum(alpha, 1e-6)[..., None]
    return np.where(alpha[..., None] > 0, colour, 0.0).astype(np.float32), alpha


def finish(rgba: np.ndarray, ratio: np.ndarray | None, *, photo: np.ndarray | None = None,
           environment: np.ndarray | None = None, key: float | None = 0.18, curve: str = "filmic",
           irradiance: float | None = None, ev: float = 0.0) -> tuple[np.ndarray, float]:
    """Display image (uint8 H, W, 3) and the exposure factor applied.

    ``rgba``: premultiplied linear objects (alpha = coverage); ``ratio``: shadow-catcher factor (None:
    ``1 - alpha``); one of ``photo`` (sRGB uint8, the display background) or ``environment`` (linear
    radiance behind each pixel) or neither (black). ``key``: auto-exposure target, scene-linear (None:
    no auto-exposure). Over an environment the frame is metered (reflected light, as a camera does).
    Over a photo the objects are metered by the light falling on them (incident light, as with a
    hand-held meter): an 18 % grey card lying on the ground under ``irradiance`` (luminance of the
    upward irradiance) is exposed to the scene value the tone curve maps to the photo's own
    log-average brightness; shadows on a photo are neutral (the photo was not lit by this
    environment), and a monochrome photo gets monochrome objects. ``ev``: offset in stops.
    """
    colour, alpha = _unpremultiply(rgba)
    if ratio is None:
        ratio = np.repeat((1.0 - alpha)[..., None], 3, axis=-1)
    gain = float(2.0 ** ev)
    if photo is not None:
        photo_lin = film.srgb_decode(photo.astype(np.float32) / 255.0)
        k = gain
        if key is not None:
            target = float(film.filmic_inverse(film.log_average(film.luminance(photo_lin))))
            if irradiance is not None and irradiance > 0:
                k *= target / (0.18 * irradiance / np.pi)
            else:
                k *= film.exposure_scale(alpha[..., None] * colour + (1 - alpha[..., None]) * photo_lin, target)
        objects = film.srgb_decode(film.develop(colour * k, curve))
        if photo.ndim == 3 and (photo[..., 0] == photo[..., 1]).all() and (photo[..., 1] == photo[..., 2]).all():
            objects = np.repeat(film.luminance(objects)[..., None], 3, axis=-1)  # a monochrome photo
        shade = np.repeat(film.luminance(ratio)[..., None], 3, axis=-1)
        out = film.srgb_encode(alpha[..., None] * objects + photo_lin * shade)
        img = film.to_uint8(out)
        untouched = (alpha <= 0.0) & np.all(ratio >= 1.0, axis=-1)
        img[untouched] = photo[untouched]  # bit-exact where nothing was drawn or shadowed
        return img, k
    frame = alpha[..., None] * colour
    if environment is not None:
        frame = frame + environment * ratio
    k = (film.exposure_scale(frame, key) if key is not None else 1.0) * gain
    return film.to_uint8(film.develop(frame * k, curve)), k
