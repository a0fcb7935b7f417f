"""Image-based lighting from real HDR environment maps (equirectangular .exr/.hdr).

Where maps come from: ``builtin:hdri`` is the folder Debian's ``blender-data`` package installs
(``/usr/share/blender/datafiles/studiolights/world``: eight CC0 maps by Greg Zaal, HDRI Haven),
or any folder of equirectangular ``.exr``/``.hdr`` files a user names.

Orientation: the world is Z-up. A map's top row is the zenith, its middle row the horizon, and
(before rotation) its centre column looks along world -Y; ``env_to_world(rotation)`` turns it by
``rotation`` degrees counter-clockwise about +Z, seen from above. ``env_radiance`` evaluates the
map exactly as Mitsuba's ``envmap`` emitter does (same texel centres and bilinear weights), so a
background drawn here lines up with the lighting Mitsuba renders from the same map.

Randomisation (``sample_hdr_params``): which map, its rotation, an intensity multiplier and a
white-balance shift (a colour temperature: the map is tinted by the ratio of that black body's
colour to a 6500 K one, normalised to keep luminance).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from simreal.errors import AssetError

BUILTIN_HDRI = "builtin:hdri"
HDR_SUFFIXES: tuple[str, ...] = (".exr", ".hdr")
#: Where Debian's ``blender-data`` (and Blender installs laid out the same way) keep their maps.
HDRI_SEARCH_PATHS: tuple[str, ...] = (
    "/usr/share/blender/datafiles/studiolights/world",
    "/usr/share/blender/*/datafiles/studiolights/world",
    "/usr/local/share/blender/datafiles/studiolights/world",
)
HDRI_ENV = "SIMREAL_HDRI_DIR"  # overrides the search for builtin:hdri
MAX_WIDTH = 2048  # larger maps are box-downsampled on load (lighting needs no more)
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def no_hdri_hint(key: str) -> str:
    """What to do when no maps are found, naming the config key that points at them."""
    return ("install Debian's blender-data package (apt-get install -y blender-data; `make venv` does this "
            f"when it can) or set {key} to a folder of equirectangular .exr/.hdr maps")


def builtin_hdri_folder() -> Path | None:
    """The folder ``builtin:hdri`` stands for: ``$SIMREAL_HDRI_DIR`` if set, else the first
    Blender studio-light folder that holds maps, else None."""
    import glob

    if os.environ.get(HDRI_ENV):
        return Path(os.environ[HDRI_ENV])
    for pattern in HDRI_SEARCH_PATHS:
        for folder in sorted(glob.glob(pattern)):
            if any(Path(folder).glob("*.exr")) or any(Path(folder).glob("*.hdr")):
                return Path(folder)
    return None


def resolve_hdri_folder(path: str, key: str = "lighting.environment.folder") -> Path:
    """A folder of HDR maps from a config value (``builtin:hdri`` or a path)."""
    if path == BUILTIN_HDRI:
        folder = builtin_hdri_folder()
        if folder is None:
            raise AssetError(f"{key}: no HDR environment maps found for {BUILTIN_HDRI} (looked in "
                             f"{', '.join(HDRI_SEARCH_PATHS)} and ${HDRI_ENV}); {no_hdri_hint(key)}")
        return folder
    return Path(path)


def hdr_files(path: str, key: str = "lighting.environment.folder") -> list[Path]:
    """Sorted equirectangular maps in a folder, each checked to load and to be 2:1."""
    folder = resolve_hdri_folder(path, key)
    if not folder.is_dir():
        raise AssetError(f"{key}: HDR folder not found: {folder}; {no_hdri_hint(key)}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in HDR_SUFFIXES)
    if not files:
        raise AssetError(f"{key}: no .exr/.hdr environment maps in {folder}; {no_hdri_hint(key)}")
    for f in files:
        load_hdr(str(f))
    return files


@contextlib.contextmanager
def _image_io() -> Iterator[Any]:
    """Mitsuba, with at least two threads in its pool while a block runs: its OpenEXR reader and
    writer deadlock on a one-thread pool (renders use one thread per worker)."""
    import drjit as dr

    from simreal.render.backends.mitsuba import ensure_variant

    mi = ensure_variant("scalar_rgb", threads=None)
    threads = dr.thread_count()
    if threads < 2:
        dr.set_thread_count(2)
    try:
        yield mi
    finally:
        dr.set_thread_count(threads)


def write_hdr(path: str | Path, image: np.ndarray) -> None:
    """Write linear float RGB (H, W, 3) as OpenEXR (``.exr``) or Radiance RGBE (``.hdr``)."""
    with _image_io() as mi:
        mi.Bitmap(np.ascontiguousarray(image, dtype=np.float32)).write(str(path))


@functools.lru_cache(maxsize=16)
def load_hdr(path: str) -> np.ndarray:
    """A map as linear float32 (H, W, 3), negatives clipped, at most MAX_WIDTH wide (cached; read-only)."""
    with _image_io() as mi:
        try:
            bmp = mi.Bitmap(str(path))
            if bmp.pixel_format() not in (mi.Bitmap.PixelFormat.RGB, mi.Bitmap.PixelFormat.RGBA):
                bmp = bmp.convert(mi.Bitmap.PixelFormat.RGB, mi.Struct.Type.Float32, srgb_gamma=False)
            arr = np.array(bmp, dtype=np.float32)[..., :3]
        except Exception as exc:  # noqa: BLE001 - any reader failure means an unreadable map
            raise AssetError(f"HDR map {path} is unreadable ({exc.__class__.__name__}: {exc}); "
                             "expected an OpenEXR or Radiance .hdr file") from None
    h, w = arr.shape[:2]
    if abs(w - 2 * h) > max(2, 0.01 * w):
        raise AssetError(f"HDR map {path} is {w}x{h}; expected an equirectangular map (width = 2 x height)")
    if not np.isfinite(arr).all():
        raise AssetError(f"HDR map {path} holds NaN or infinite values; expected finite radiance")
    np.maximum(arr, 0.0, out=arr)
    while arr.shape[1] > MAX_WIDTH:
        hh, ww = arr.shape[0] // 2 * 2, arr.shape[1] // 2 * 2
        arr = arr[:hh, :ww].reshape(hh // 2, 2, ww // 2, 2, 3).mean(axis=(1, 3))
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    arr.flags.writeable = False
    return arr


def env_to_world(rotation_deg: float) -> np.ndarray:
    """3x3 rotation from the map's frame (Mitsuba: +Y up) to the Z-up world, turned ``rotation_deg``
    about +Z."""
    to_z_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    c, s = np.cos(np.deg2rad(rotation_deg)), np.sin(np.deg2rad(rotation_deg))
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return rz @ to_z_up


def env_radiance(image: np.ndarray, dirs: np.ndarray, to_world: np.ndarray | None = None) -> np.ndarray:
    """Radiance (..., 3) of an equirectangular map seen along world directions ``dirs`` (..., 3),
    with Mitsuba's ``envmap`` texel convention (columns wrap, rows span pole to pole)."""
    h, w = image.shape[:2]
    d = np.asarray(dirs, dtype=np.float64)
    if to_world is not None:
        d = d @ np.asarray(to_world, dtype=np.float64)  # world -> map frame (inverse of a rotation)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True).clip(1e-12)
    u = np.arctan2(d[..., 0], -d[..., 2]) / (2 * np.pi)
    v = np.arccos(np.clip(d[..., 1], -1.0, 1.0)) / np.pi
    u = u - 0.5 / w
    u = (u - np.floor(u)) * w
    v = v * (h - 1)
    x0 = np.minimum(np.floor(u).astype(np.int64), w - 1)
    y0 = np.minimum(np.floor(v).astype(np.int64), h - 2)
    fx, fy = (u - x0)[..., None], (v - y0)[..., None]
    x1 = (x0 + 1) % w
    img = np.asarray(image, dtype=np.float32)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def white_balance_gains(kelvin: float) -> np.ndarray:
    """RGB gains that tint light towards a ``kelvin`` black body relative to 6500 K, luminance kept."""
    from simreal.render.randomize import _temperature_rgb

    g = np.asarray(_temperature_rgb(kelvin), np.float64) / np.asarray(_temperature_rgb(6500.0), np.float64)
    return (g / float(g @ LUMA)).astype(np.float32)


def env_mean_radiance(image: np.ndarray) -> np.ndarray:
    """Solid-angle-weighted mean RGB radiance of an equirectangular map (a constant map returns itself)."""
    h = image.shape[0]
    theta = np.arange(h) / max(h - 1, 1) * np.pi
    wgt = np.sin(theta)
    wgt = wgt / wgt.sum()
    return np.einsum("h,hwc->c", wgt, np.asarray(image, np.float64)) / image.shape[1]


def upward_irradiance(image: np.ndarray, to_world: np.ndarray | None = None) -> np.ndarray:
    """RGB irradiance on an upward-facing surface (integral of radiance x cos over the upper
    hemisphere) from an equirectangular map; a constant map L gives pi L. Exact at texel centres."""
    h, w = image.shape[:2]
    theta = np.arange(h) / max(h - 1, 1) * np.pi
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    up_local = np.array([0.0, 0.0, 1.0]) if to_world is None else np.asarray(to_world, np.float64)[2]
    if np.allclose(up_local, [0.0, 1.0, 0.0]):  # world up is the map's pole: a sum per row
        d_omega = st[:, 0] * (np.pi / max(h - 1, 1)) * (2 * np.pi / w)
        rows = np.asarray(image, np.float64).sum(axis=1)
        return (np.clip(ct[:, 0], 0.0, None) * d_omega) @ rows
    phi = (np.arange(w) + 0.5) / w * 2 * np.pi
    local = np.stack([st * np.sin(phi), np.broadcast_to(ct, (h, w)), -st * np.cos(phi)], -1)
    up = local @ up_local
    d_omega = st * (np.pi / max(h - 1, 1)) * (2 * np.pi / w)  # solid angle per texel
    weight = np.clip(up, 0.0, None) * d_omega
    return np.einsum("hw,hwc->c", weight, np.asarray(image, np.float64))


def sample_hdr_params(rng: np.random.Generator, files: list[Path], intensity: tuple[float, float],
                      rotation: tuple[float, float], white_balance: tuple[float, float]) -> dict[str, Any]:
    """Which map (file name), rotation (degrees), intensity multiplier and white balance (K)."""
    return {
        "file": files[int(rng.integers(len(files)))].name,
        "rotation": float(rng.uniform(*rotation)),
        "intensity": float(rng.uniform(*intensity)),
        "white_balance": float(rng.uniform(*white_balance)),
    }


def hdr_lighting(folder: str, env: dict[str, Any], bake: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
    """(map, 3x3 to_world, scale, tint) described by sampled ``env`` params. ``bake``: the white
    balance is multiplied into a copy of the map (tint None); else the cached map is returned as is
    with the white balance as a per-channel tint (exact when the map is the only light, and it lets
    the renderer reuse the map's sampling distribution)."""
    path = resolve_hdri_folder(folder) / env["file"]
    gains = white_balance_gains(env["white_balance"])
    base = load_hdr(str(path))
    if bake:
        return (base * gains).astype(np.float32), env_to_world(env["rotation"]), float(env["intensity"]), None
    return base, env_to_world(env["rotation"]), float(env["intensity"]), gains
