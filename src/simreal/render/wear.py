"""Surface wear on texture maps: dust, grime and scratches.

``sample_wear_params(rng, spec)`` draws JSON-serialisable params; ``apply_wear(albedo, roughness,
params)`` is a pure function of them and works at any texture size (scratch geometry is stored in
normalised [0, 1] texture coordinates, noise fields are re-created from integer seeds).

Wear spec (plain dict, all keys optional; ``[lo, hi]`` ranges sampled uniformly)::

    dust:      [0.0, 0.6]   amount: light brown/grey low-frequency deposit, raises roughness
    grime:     [0.0, 0.5]   amount: dark blotches concentrated by noise
    scratches: [0, 12]      count: thin bright (bare metal) or dark polylines
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from simreal.render.textures import to_uint8, value_noise

WEAR_DEFAULTS: dict = {"dust": [0.0, 0.6], "grime": [0.0, 0.5], "scratches": [0, 12]}


def _range(spec: dict, key: str) -> tuple[float, float]:
    lo, hi = spec.get(key, WEAR_DEFAULTS[key]) if spec is not None else WEAR_DEFAULTS[key]
    return float(lo), float(hi)


def sample_wear_params(rng: np.random.Generator, spec: dict | None = None) -> dict:
    """Draw wear params: ``{"dust", "dust_color", "dust_seed", "grime", "grime_seed", "scratches"}``.

    ``scratches`` is a list of ``{"points": [[x, y], ...] (0..1), "width": fraction of the texture
    height, "bright": bool, "strength": 0..1}``.
    """
    spec = {**WEAR_DEFAULTS, **(spec or {})}
    dust = float(rng.uniform(*_range(spec, "dust")))
    tone = float(rng.uniform(0.0, 1.0))  # light brown .. grey
    dust_color = [0.62 + 0.06 * (1 - tone), 0.57 + 0.02 * tone, 0.48 + 0.1 * tone]
    grime = float(rng.uniform(*_range(spec, "grime")))
    lo, hi = _range(spec, "scratches")
    n = int(rng.integers(int(lo), int(hi) + 1)) if hi >= lo else 0
    scratches = []
    for _ in range(n):
        k = int(rng.integers(2, 6))
        start = rng.uniform(0.0, 1.0, 2)
        heading = rng.uniform(0.0, 2 * np.pi)
        length = rng.uniform(0.03, 0.25)
        turns = np.cumsum(rng.normal(0.0, 0.25, k - 1))
        steps = (length / (k - 1)) * np.stack([np.cos(heading + turns), np.sin(heading + turns)], -1)
        pts = np.vstack([start, start + np.cumsum(steps, axis=0)])
        scratches.append({"points": np.round(pts, 5).tolist(), "width": float(rng.uniform(0.002, 0.008)),
                          "bright": bool(rng.random() < 0.6), "strength": float(rng.uniform(0.3, 0.8))})
    return {"dust": dust, "dust_color": dust_color, "dust_seed": int(rng.integers(2**31 - 1)),
            "grime": grime, "grime_seed": int(rng.integers(2**31 - 1)), "scratches": scratches}


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / max(e1 - e0, 1e-6), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def scratch_masks(size: tuple[int, int], scratches: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Bright and dark scratch coverage masks, float32 (H, W) in [0, 1], drawn with PIL."""
    h, w = int(size[0]), int(size[1])
    masks = {True: Image.new("L", (w, h), 0), False: Image.new("L", (w, h), 0)}
    draws = {k: ImageDraw.Draw(v) for k, v in masks.items()}
    for s in scratches:
        pts = [(float(x) * w, float(y) * h) for x, y in s["points"]]
        width = max(1, round(float(s["width"]) * h))
        fill = int(round(255 * float(s.get("strength", 0.6))))
        draw = draws[bool(s.get("bright", True))]
        for dx in (-w, 0, w):  # wrap horizontally so scratches cross the u seam cleanly
            draw.line([(x + dx, y) for x, y in pts], fill=fill, width=width, joint="curve")
    return (np.asarray(masks[True], np.float32) / 255.0, np.asarray(masks[False], np.float32) / 255.0)


def apply_wear(albedo: np.ndarray, roughness: np.ndarray, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Apply dust, grime and scratches; returns new ``(albedo uint8 HxWx3, roughness float32 HxW)``."""
    a = albedo.astype(np.float32) / 255.0
    r = np.asarray(roughness, dtype=np.float32)
    r = np.broadcast_to(r, a.shape[:2]).copy()
    h, w = a.shape[:2]
    dust = float(params.get("dust", 0.0))
    if dust > 0:
        n = value_noise((h, w), h * 0.5, params["dust_seed"], octaves=3)
        m = dust * _smoothstep(0.55 - 0.5 * dust, 1.0, n) * 0.85
        col = np.asarray(params.get("dust_color", [0.6, 0.56, 0.5]), np.float32)
        a += (col - a) * m[..., None]
        r += (0.95 - r) * m
    grime = float(params.get("grime", 0.0))
    if grime > 0:
        n = value_noise((h, w), h * 0.25, params["grime_seed"], octaves=5, persistence=0.6)
        m = grime * _smoothstep(0.75 - 0.45 * grime, 0.95, n)
        a *= 1.0 - 0.7 * m[..., None]
        a += np.array([0.06, 0.045, 0.03], np.float32) * m[..., None]
        r += (0.85 - r) * 0.5 * m
    if params.get("scratches"):
        bright, dark = scratch_masks((h, w), params["scratches"])
        a += (np.array([0.78, 0.77, 0.74], np.float32) - a) * bright[..., None]
        r += (0.2 - r) * bright
        a *= 1.0 - 0.6 * dark[..., None]
    return to_uint8(a), np.clip(r, 0.0, 1.0)
