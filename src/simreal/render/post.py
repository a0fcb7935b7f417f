"""Post-effects applied to a rendered image: blur, colour grading (3-D LUT), vignette, film grain,
JPEG re-compression.

Images are **sRGB display values**: ``apply_post`` takes and returns uint8 (H, W, 3); the float
stages work on sRGB values in [0, 1] (not linear light). Order: blur (optics, Pillow on uint8) ->
LUT grade -> vignette -> grain (sensor) -> quantise -> JPEG. ``sample_post_params`` draws
JSON-serialisable params (the grain noise is re-created from an integer seed), ``apply_post`` is a
pure function of them.

Post spec (plain dict; every key optional; ``p`` is the probability the effect is applied, ``[lo,
hi]`` ranges are sampled uniformly)::

    lut:      {p: 0.3, strength: [0.2, 0.6], names: null}    names: restrict to these LUT names
    blur:     {p: 0.25, sigma: [0.3, 0.8]}                    pixels
    vignette: {p: 0.3, strength: [0.05, 0.25], radius: [0.6, 0.9]}  darkening at the corners; radius
                                                              (fraction of the half-diagonal) where it starts
    grain:    {p: 0.4, intensity: [0.003, 0.02], size: [1.0, 1.5]}  std-dev at mid-grey; grain size in px
    jpeg:     {p: 0.6, quality: [60, 95]}
    lut_folder: null        accepted and ignored here (the asset library loads .cube files from it)
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

from simreal.errors import AssetError, ConfigError
from simreal.render.luts import Lut3D, apply_lut_planar

POST_DEFAULTS: dict = {  # the ranges of phone and news photos, set by looking (docs/render.md)
    "lut": {"p": 0.3, "strength": [0.2, 0.6], "names": None},
    "blur": {"p": 0.25, "sigma": [0.3, 0.8]},
    "vignette": {"p": 0.3, "strength": [0.05, 0.25], "radius": [0.6, 0.9]},
    "grain": {"p": 0.4, "intensity": [0.003, 0.02], "size": [1.0, 1.5]},
    "jpeg": {"p": 0.6, "quality": [60, 95]},
}
EFFECTS: tuple[str, ...] = ("blur", "lut", "vignette", "grain", "jpeg")
POST_OTHER_KEYS: tuple[str, ...] = ("lut_folder",)  # accepted in a post spec, used by the asset library


def _section(spec: dict | None, name: str) -> dict:
    given = (spec or {}).get(name)
    if given is not None and not isinstance(given, dict):
        raise ConfigError(f"post.{name}: expected a mapping of settings, got {given!r}")
    return {**POST_DEFAULTS[name], **(given or {})}


def _uniform(rng: np.random.Generator, sec: dict, name: str, key: str) -> float:
    try:
        lo, hi = (float(v) for v in sec[key])
    except (TypeError, ValueError):
        raise ConfigError(f"post.{name}.{key}: expected [lo, hi], got {sec[key]!r}") from None
    if hi < lo:
        raise ConfigError(f"post.{name}.{key}: expected lo <= hi, got {[lo, hi]}")
    return float(rng.uniform(lo, hi))


def sample_post_params(rng: np.random.Generator, spec: dict | None = None,
                       lut_names: list[str] | tuple[str, ...] = ()) -> dict:
    """Draw post-effect params: ``{effect: settings or None}`` for every effect in EFFECTS.

    The same number of values is drawn whatever is enabled, so changing one probability does not
    shift the others. ``lut_names``: the LUTs available to choose from (e.g. ``list(luts)``).
    """
    unknown = sorted(set(spec or {}) - set(POST_DEFAULTS) - set(POST_OTHER_KEYS))
    if unknown:
        raise ConfigError(f"post: unknown effect(s) {unknown}; expected {sorted(POST_DEFAULTS)}")
    out: dict = {}
    sec = _section(spec, "blur")
    on = rng.random() < float(sec["p"])
    sigma = _uniform(rng, sec, "blur", "sigma")
    out["blur"] = {"sigma": sigma} if on else None
    sec = _section(spec, "lut")
    on = rng.random() < float(sec["p"])
    names = sorted(lut_names) if sec.get("names") is None else list(sec["names"])
    pick = float(rng.random())
    strength = _uniform(rng, sec, "lut", "strength")
    out["lut"] = ({"name": names[min(int(pick * len(names)), len(names) - 1)], "strength": strength}
                  if on and names else None)
    sec = _section(spec, "vignette")
    on = rng.random() < float(sec["p"])
    vig = {"strength": _uniform(rng, sec, "vignette", "strength"),
           "radius": _uniform(rng, sec, "vignette", "radius")}
    out["vignette"] = vig if on else None
    sec = _section(spec, "grain")
    on = rng.random() < float(sec["p"])
    grain = {"intensity": _uniform(rng, sec, "grain", "intensity"), "size": _uniform(rng, sec, "grain", "size"),
             "seed": int(rng.integers(2**31 - 1))}
    out["grain"] = grain if on else None
    sec = _section(spec, "jpeg")
    on = rng.random() < float(sec["p"])
    quality = int(round(_uniform(rng, sec, "jpeg", "quality")))
    out["jpeg"] = {"quality": int(np.clip(quality, 1, 100))} if on else None
    return out


@lru_cache(maxsize=16)
def _vignette_mask(h: int, w: int, strength: float, radius: float) -> np.ndarray:
    yy = (np.arange(h, dtype=np.float32) + 0.5 - h / 2) / (h / 2)
    xx = (np.arange(w, dtype=np.float32) + 0.5 - w / 2) / (w / 2)
    r = np.sqrt((yy[:, None] ** 2 + xx[None, :] ** 2) / 2.0)  # 1.0 at the corners
    t = np.clip((r - radius) / max(1.0 - radius, 1e-3), 0.0, 1.0)
    mask = (1.0 - strength * t * t * (3 - 2 * t)).astype(np.float32).ravel()
    mask.flags.writeable = False
    return mask


def vignette(img: np.ndarray, strength: float, radius: float) -> np.ndarray:
    """Darken towards the corners: factor 1 inside ``radius`` (fraction of the half-diagonal), down to
    ``1 - strength`` at the corners (smoothstep). Float (H, W, 3) in, float32 out."""
    h, w = img.shape[:2]
    return (np.asarray(img, np.float32) * _vignette_mask(h, w, float(strength), float(radius)).reshape(h, w, 1))


def _grain_field(h: int, w: int, size: float, seed: int) -> np.ndarray:
    gen = np.random.default_rng(int(seed))
    if size <= 1.0:
        return gen.standard_normal((h, w), dtype=np.float32)
    gh, gw = max(1, int(np.ceil(h / size))), max(1, int(np.ceil(w / size)))
    small = gen.standard_normal((gh, gw), dtype=np.float32)
    im = Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BILINEAR)
    field = np.asarray(im, np.float32)
    return field / max(float(field.std()), 1e-6)


def film_grain(img: np.ndarray, intensity: float, size: float, seed: int) -> np.ndarray:
    """Monochrome gaussian grain, strongest in the mid-tones (std ``intensity`` at mid-grey,
    ``intensity / 4`` at black/white). Float (H, W, 3) in, float32 out."""
    h, w = img.shape[:2]
    planes = np.ascontiguousarray(np.asarray(img, np.float32).reshape(-1, 3).T)
    _grain_planar(planes, h, w, intensity, size, seed)
    return np.ascontiguousarray(planes.T).reshape(h, w, 3)


def _grain_planar(planes: np.ndarray, h: int, w: int, intensity: float, size: float, seed: int) -> None:
    luma = planes[0] * np.float32(0.2126)
    luma += planes[1] * np.float32(0.7152)
    luma += planes[2] * np.float32(0.0722)
    np.clip(luma, 0.0, 1.0, out=luma)
    amp = luma * (1.0 - luma)  # 0.25 at mid-grey
    amp *= np.float32(3.0 * intensity)
    amp += np.float32(0.25 * intensity)
    amp *= _grain_field(h, w, float(size), seed).ravel()
    planes += amp


def gaussian_blur(img_u8: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a uint8 image (Pillow's C implementation)."""
    if sigma <= 0:
        return img_u8
    return np.asarray(Image.fromarray(img_u8).filter(ImageFilter.GaussianBlur(float(sigma))))


def jpeg_roundtrip(img_u8: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` (1-100) in memory and decode again."""
    buf = io.BytesIO()
    Image.fromarray(img_u8).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def apply_post(img: np.ndarray, params: dict, luts: dict[str, Lut3D] | None = None) -> np.ndarray:
    """Apply post params (from ``sample_post_params``) to a uint8 (H, W, 3) sRGB image; uint8 out.

    ``luts``: name -> Lut3D (e.g. ``generated_luts()`` plus ``load_cube_folder(...)``); a LUT
    named in params but missing raises AssetError.
    """
    x = np.asarray(img)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
        raise ConfigError(f"apply_post: expected a uint8 (H, W, 3) image, got {x.dtype} {x.shape}")
    h, w = x.shape[:2]
    blur = params.get("blur")
    if blur:
        x = gaussian_blur(x, blur["sigma"])
    lut, vig, grain = params.get("lut"), params.get("vignette"), params.get("grain")
    if lut or vig or grain:
        planes = np.ascontiguousarray(x.reshape(-1, 3).T).astype(np.float32)
        planes *= np.float32(1.0 / 255.0)
        if lut:
            table = (luts or {}).get(lut["name"])
            if table is None:
                raise AssetError(f"LUT {lut['name']!r} not found; available: {sorted(luts or {})}")
            planes = apply_lut_planar(planes, table, float(lut["strength"]))
        if vig:
            planes *= _vignette_mask(h, w, float(vig["strength"]), float(vig["radius"]))
        if grain:
            _grain_planar(planes, h, w, float(grain["intensity"]), float(grain["size"]), int(grain["seed"]))
        planes *= np.float32(255.0)
        planes += np.float32(0.5)
        np.clip(planes, 0.0, 255.0, out=planes)
        x = np.ascontiguousarray(planes.astype(np.uint8).T).reshape(h, w, 3)
    jpeg = params.get("jpeg")
    if jpeg:
        x = jpeg_roundtrip(x, jpeg["quality"])
    return x
