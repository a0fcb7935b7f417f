"""Procedural textures (noise, stripes, checker, solid), colour sampling and texture folders.

Every generator is vectorised numpy. Randomness follows the two-step contract: ``sample_*_params``
draws JSON-serialisable params from an explicit ``numpy.random.Generator``; ``make_*`` is a pure
function of those params (noise fields are re-created from an integer ``seed`` stored in them).
Sizes are ``(height, width)``. Colours are lists of three floats in [0, 1] (sRGB).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from simreal.errors import AssetError, ConfigError

TEXTURE_KINDS: tuple[str, ...] = ("noise", "stripes", "checker", "solid")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def hsv_to_rgb(h: float, s: float, v: float) -> list[float]:
    """One HSV colour (all in [0, 1]) to an RGB list of floats in [0, 1]."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return [float(c) for c in rgb]


def random_color(rng: np.random.Generator, hue: Sequence[float] = (0.0, 1.0),
                 saturation: Sequence[float] = (0.2, 0.9),
                 value: Sequence[float] = (0.2, 0.95)) -> list[float]:
    """An sRGB colour (three floats in [0, 1]) drawn uniformly in HSV within the given ranges."""
    h, s, v = (float(rng.uniform(lo, hi)) for lo, hi in (hue, saturation, value))
    return hsv_to_rgb(h % 1.0, s, v)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8 (round half up, clipped)."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def value_noise(size: tuple[int, int], period: float, seed: int, octaves: int = 4,
                persistence: float = 0.5) -> np.ndarray:
    """Tileable fractal value noise (fBm), float32 (H, W) in [0, 1].

    ``period``: pixel size of the coarsest lattice cell; each octave halves it and multiplies the
    amplitude by ``persistence``. Wraps in x and y (so a texture wrapped around a body has no seam).
    """
    h, w = int(size[0]), int(size[1])
    gen = np.random.default_rng(int(seed))
    out = np.zeros((h, w), dtype=np.float32)
    total, amp = 0.0, 1.0
    ys = np.arange(h, dtype=np.float32) + 0.5
    xs = np.arange(w, dtype=np.float32) + 0.5
    for o in range(max(1, int(octaves))):
        p = max(1.0, float(period) / (2**o))
        ny, nx = max(1, round(h / p)), max(1, round(w / p))
        grid = gen.random((ny, nx), dtype=np.float32)
        fy, fx = ys * (ny / h), xs * (nx / w)
        iy, ix = np.floor(fy).astype(np.int64), np.floor(fx).astype(np.int64)
        ty, tx = fy - iy, fx - ix
        ty, tx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)  # smoothstep
        y0, y1 = iy % ny, (iy + 1) % ny
        x0, x1 = ix % nx, (ix + 1) % nx
        rows = grid[:, x0] * (1 - tx) + grid[:, x1] * tx  # (ny, w): interpolate along x once per lattice row
        out += amp * (rows[y0] * (1 - ty[:, None]) + rows[y1] * ty[:, None])
        total += amp
        amp *= persistence
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / (hi - lo) if hi > lo else np.full((h, w), 0.5, np.float32)


def sample_texture_params(rng: np.random.Generator, kinds: Sequence[str] = TEXTURE_KINDS,
                          saturation: Sequence[float] = (0.2, 0.9), value: Sequence[float] = (0.2, 0.95)) -> dict:
    """Draw params for one procedural texture; ``kinds`` restricts the kinds chosen from; its two
    colours are drawn within the HSV ``saturation`` and ``value`` ranges.

    Returns ``{"kind", "colors": [[r,g,b], [r,g,b]], ...}`` plus per kind: noise ``period``
    (fraction of the texture height), ``octaves``, ``persistence``, ``seed``; stripes ``angle``
    (degrees), ``period`` (fraction of height), ``duty``; checker ``period`` (fraction of height).
    The same number of values is drawn whatever the kind.
    """
    kinds = list(kinds)
    bad = [k for k in kinds if k not in TEXTURE_KINDS]
    if not kinds or bad:
        raise ConfigError(f"texture kinds {bad or kinds}: expected a non-empty subset of "
                          f"{list(TEXTURE_KINDS)}")
    kind = kinds[int(rng.integers(len(kinds)))]
    colors = [random_color(rng, saturation=saturation, value=value),
              random_color(rng, saturation=saturation, value=value)]
    p = {"kind": kind, "colors": colors}
    period = float(rng.uniform(0.05, 0.5))
    octaves = int(rng.integers(2, 6))
    persistence = float(rng.uniform(0.35, 0.65))
    seed = int(rng.integers(2**31 - 1))
    angle = float(rng.uniform(0.0, 180.0))
    duty = float(rng.uniform(0.3, 0.7))
    if kind == "noise":
        p.update(period=period, octaves=octaves, persistence=persistence, seed=seed)
    elif kind == "stripes":
        p.update(angle=angle, period=period, duty=duty)
    elif kind == "checker":
        p.update(period=period)
    return p


def make_texture(params: dict, size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Render texture params to a uint8 (H, W, 3) image (pure function of params and size)."""
    h, w = int(size[0]), int(size[1])
    kind = params.get("kind")
    c = np.asarray(params.get("colors", [[0.5, 0.5, 0.5]] * 2), dtype=np.float32)
    c0, c1 = c[0], c[-1]
    if kind == "solid":
        return np.broadcast_to(to_uint8(c0), (h, w, 3)).copy()
    if kind == "noise":
        t = value_noise((h, w), params["period"] * h, params["seed"], params.get("octaves", 4),
                        params.get("persistence", 0.5))
    elif kind in ("stripes", "checker"):
        period = max(1.0, params["period"] * h)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        if kind == "stripes":
            a = np.deg2rad(params.get("angle", 0.0))
            s = (xx * np.cos(a) + yy * np.sin(a)) / period
            t = ((s - np.floor(s)) < params.get("duty", 0.5)).astype(np.float32)
        else:
            t = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32)
    else:
        raise ConfigError(f"texture kind {kind!r}: expected one of {list(TEXTURE_KINDS)}")
    return to_uint8(c0 + (c1 - c0) * t[..., None])


def load_texture_folder(path: str | Path) -> list[Path]:
    """Sorted image files (png/jpg/bmp/tif/webp) in a folder; every file is checked to be readable.

    Raises AssetError for a missing folder, a folder with no images, or an unreadable image (named).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise AssetError(f"texture folder not found: {folder} (expected a folder of image files)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise AssetError(f"texture folder {folder} has no images (expected {', '.join(IMAGE_SUFFIXES)})")
    for f in files:
        try:
            with Image.open(f) as im:
                im.verify()
        except Exception as exc:  # noqa: BLE001 - any decoder failure means unreadable
            raise AssetError(f"texture image {f} is unreadable ({exc.__class__.__name__}: {exc}); "
                             "expected a valid image file") from None
    return files


def load_texture(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB, optionally resized to ``(height, width)``."""
    p = Path(path)
    try:
        with Image.open(p) as im:
            im = im.convert("RGB")
            if size is not None:
                im = im.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise AssetError(f"texture image not found: {p} (expected an image file)") from None
    except Exception as exc:  # noqa: BLE001
        raise AssetError(f"texture image {p} is unreadable ({exc}); expected a valid image file") from None
