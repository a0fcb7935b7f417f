"""The built-in parametric tear-gas grenade canister: geometry, label textures and wear.

Object space: +Z up, the body's base centred at the origin (z = 0) and the **top of the cap at
z = 1.0** (total height 1). ``params["height"]`` is the real-world height the renderer should scale
by (a uniform scale; spec units, metres by default). UV convention as in ``primitives``: ``v = 0``
at the bottom of a texture image; the body's ``u`` wraps once around the axis (seam at +X) and its
``v`` runs along the profile by arc length (bottom disk, side, shoulder, top), so a label image
wraps the body. ``canister_textures`` knows the same profile and paints the label into the side rows.

Spec (plain dict, every key optional; ``[lo, hi]`` ranges are sampled uniformly; colours are
``[r, g, b]`` floats in [0, 1] or ``"#rrggbb"``; a colour list or ``"random"``)::

    height:            [0.10, 0.16]   world height (metres)
    diameter_ratio:    [0.36, 0.48]   body diameter / total height
    cap_fraction:      [0.12, 0.20]   cap (fuze head) height / total height
    body_colors:       DEFAULT_BODY_COLORS (olive, black, greys, navy, khaki) or "random"
    cap_colors:        DEFAULT_CAP_COLORS (metal greys, olive, black) or "random"
    band_colors:       DEFAULT_BAND_COLORS (yellow, red, blue, green, white) or "random"
    text_colors:       "auto" (black or white, whichever contrasts with the body) or a colour list
    label_texts:       DEFAULT_LABEL_TEXTS; one is chosen per canister (give one item to force it)
    lever_probability: 0.7            chance of a spoon/lever on the cap
    segments:          96             tessellation around the axis
    wear:              {dust: [0, 0.6], grime: [0, 0.5], scratches: [0, 12], dents: [0, 3]}
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from simreal.errors import ConfigError
from simreal.render.mesh import Mesh
from simreal.render.primitives import LathePiece, concatenate, lathe, primitive, vertex_normals
from simreal.render.textures import random_color, to_uint8, value_noise
from simreal.render.wear import WEAR_DEFAULTS, apply_wear, sample_wear_params

DEFAULT_BODY_COLORS = [[0.29, 0.32, 0.18], [0.07, 0.07, 0.07], [0.35, 0.36, 0.37], [0.55, 0.56, 0.56],
                       [0.10, 0.14, 0.28], [0.55, 0.50, 0.36], [0.20, 0.24, 0.20]]
DEFAULT_CAP_COLORS = [[0.62, 0.62, 0.60], [0.45, 0.46, 0.45], [0.29, 0.32, 0.18], [0.08, 0.08, 0.08]]
DEFAULT_BAND_COLORS = [[0.90, 0.75, 0.10], [0.75, 0.12, 0.10], [0.15, 0.35, 0.75], [0.20, 0.55, 0.25],
                       [0.92, 0.92, 0.90]]
DEFAULT_LABEL_TEXTS = ["CS", "TEAR GAS", "CS GAS", "RIOT CONTROL", "IRRITANT", "CN", "OC", "SMOKE",
                       "LACHRYMATORY", "GAS LACRIMOGENE", "TRAENENGAS", "ANTI-RIOT"]

CANISTER_DEFAULTS: dict = {
    "height": [0.10, 0.16], "diameter_ratio": [0.36, 0.48], "cap_fraction": [0.12, 0.20],
    "body_colors": DEFAULT_BODY_COLORS, "cap_colors": DEFAULT_CAP_COLORS, "band_colors": DEFAULT_BAND_COLORS,
    "text_colors": "auto", "label_texts": DEFAULT_LABEL_TEXTS, "lever_probability": 0.7, "segments": 96,
    "wear": {**WEAR_DEFAULTS, "dents": [0, 3]},
}
PARTS: tuple[str, ...] = ("body", "cap", "band")


def _color(c, key: str) -> list[float]:
    if isinstance(c, str):
        s = c.lstrip("#")
        if len(s) != 6:
            raise ConfigError(f"canister.{key}: colour {c!r}: expected '#rrggbb' or [r, g, b] in [0, 1]")
        return [int(s[i:i + 2], 16) / 255.0 for i in (0, 2, 4)]
    vals = [float(x) for x in c]
    if len(vals) != 3 or min(vals) < 0 or max(vals) > 1:
        raise ConfigError(f"canister.{key}: colour {c!r}: expected [r, g, b] floats in [0, 1]")
    return vals


def _pick_color(rng: np.random.Generator, choices, key: str) -> list[float]:
    u = float(rng.random())
    rc = random_color(rng)  # always drawn so the stream does not depend on the choice
    if isinstance(choices, str) and choices == "random":
        return rc
    if not choices:
        raise ConfigError(f"canister.{key}: expected a non-empty colour list or 'random'")
    return _color(choices[min(int(u * len(choices)), len(choices) - 1)], key)


def _u(rng: np.random.Generator, spec: dict, key: str, default=None) -> float:
    lo, hi = spec.get(key, default)
    if hi < lo:
        raise ConfigError(f"canister.{key}: expected [lo, hi] with lo <= hi, got {[lo, hi]}")
    return float(rng.uniform(lo, hi))


def sample_canister_params(rng: np.random.Generator, spec: dict | None = None) -> dict:
    """Draw every canister parameter (geometry, colours, label text, dents, wear) as plain JSON data."""
    spec = {**CANISTER_DEFAULTS, **(spec or {})}
    wear_spec = {**CANISTER_DEFAULTS["wear"], **(spec.get("wear") or {})}
    p: dict = {"version": 1}
    p["height"] = _u(rng, spec, "height")
    radius = _u(rng, spec, "diameter_ratio") / 2.0
    cap_h = _u(rng, spec, "cap_fraction")
    body_h = 1.0 - cap_h
    neck = radius * float(rng.uniform(0.55, 0.75))
    p["body"] = {"radius": radius, "height": body_h, "shoulder": float(rng.uniform(0.05, 0.12)),
                 "neck_radius": neck, "bevel": float(rng.uniform(0.008, 0.02)),
                 "segments": int(spec.get("segments", 96))}
    p["cap"] = {"radius": neck * float(rng.uniform(0.8, 1.0)), "height": cap_h}
    lever = bool(rng.random() < float(spec.get("lever_probability", 0.7)))
    lever_p = {"width": float(rng.uniform(0.05, 0.09)), "thickness": float(rng.uniform(0.006, 0.012)),
               "angle": float(rng.uniform(0.0, 360.0)), "length": float(rng.uniform(0.35, 0.6))}
    p["lever"] = lever_p if lever else None
    side_lo, side_hi = p["body"]["bevel"], body_h - p["body"]["shoulder"]
    band_h = float(rng.uniform(0.025, 0.06))
    band_z = float(rng.uniform(side_lo + band_h, side_hi - band_h))
    p["band"] = {"z": band_z, "height": band_h, "thickness": float(rng.uniform(0.004, 0.01))}
    colors = {"body": _pick_color(rng, spec["body_colors"], "body_colors"),
              "cap": _pick_color(rng, spec["cap_colors"], "cap_colors"),
              "band": _pick_color(rng, spec["band_colors"], "band_colors")}
    luminance = float(np.dot(colors["body"], [0.2126, 0.7152, 0.0722]))
    auto_text = [0.05, 0.05, 0.05] if luminance > 0.4 else [0.93, 0.92, 0.88]
    auto = isinstance(spec["text_colors"], str) and spec["text_colors"] == "auto"
    text_choice = _pick_color(rng, DEFAULT_BAND_COLORS if auto else spec["text_colors"], "text_colors")
    colors["text"] = auto_text if auto else text_choice
    p["colors"] = colors
    texts = spec.get("label_texts") or []
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise ConfigError("canister.label_texts: expected a non-empty list of strings")
    n_stripes = int(rng.integers(0, 3))
    stripes = []
    for _ in range(n_stripes):
        stripes.append({"z": float(rng.uniform(side_lo + 0.03, side_hi - 0.03)),
                        "height": float(rng.uniform(0.012, 0.04)),
                        "color": _pick_color(rng, spec["band_colors"], "band_colors")})
    below, above = (side_lo, band_z - band_h / 2), (band_z + band_h / 2, side_hi)
    text_lo, text_hi = below if below[1] - below[0] > above[1] - above[0] else above
    p["label"] = {
        "text": str(texts[int(rng.integers(len(texts)))]),
        "lot": f"LOT {int(rng.integers(1000, 9999))}-{int(rng.integers(1, 99)):02d}",
        "u": float(rng.random()), "z": float(text_lo + (text_hi - text_lo) * rng.uniform(0.4, 0.6)),
        "text_height": float(rng.uniform(0.12, 0.2)), "vertical": bool(rng.random() < 0.3),
        "repeat": int(rng.integers(1, 3)), "stripes": stripes, "noise_seed": int(rng.integers(2**31 - 1)),
    }
    p["roughness"] = {"body": float(rng.uniform(0.35, 0.7)), "cap": float(rng.uniform(0.2, 0.45)),
                      "band": float(rng.uniform(0.35, 0.7))}
    p["metallic"] = {"body": 0.0, "cap": float(rng.uniform(0.6, 1.0)), "band": 0.0}
    lo, hi = wear_spec["dents"]
    dents = []
    for _ in range(int(rng.integers(int(lo), int(hi) + 1))):
        dents.append({"theta": float(rng.uniform(0, 2 * np.pi)),
                      "z": float(rng.uniform(side_lo + 0.1 * body_h, side_hi - 0.05 * body_h)),
                      "depth": float(rng.uniform(0.03, 0.1) * radius),
                      "radius": float(rng.uniform(0.04, 0.1))})
    p["dents"] = dents
    wspec = {k: wear_spec[k] for k in WEAR_DEFAULTS}
    p["wear"] = {part: sample_wear_params(rng, wspec) for part in PARTS}
    return p


def body_profile(params: dict) -> tuple[list[LathePiece], float, float]:
    """The body's lathe pieces, and the texture v range ``(v0, v1)`` covered by the cylindrical side."""
    b = params["body"]
    r, h, sh, rn, bv = b["radius"], b["height"], b["shoulder"], b["neck_radius"], b["bevel"]
    t = np.linspace(-np.pi / 2, 0.0, 6)
    bev = (r - bv + bv * np.cos(t), bv + bv * np.sin(t), np.cos(t), np.sin(t))
    zs = np.linspace(bv, h - sh, max(8, int(round((h - sh - bv) / 0.015)) + 1))
    side = (np.full_like(zs, r), zs, np.ones_like(zs), np.zeros_like(zs))
    t = np.linspace(0.0, np.pi / 2, 12)
    a = r - rn
    nr_, nz_ = np.cos(t) / a, np.sin(t) / sh
    nn = np.hypot(nr_, nz_)
    shoulder = (rn + a * np.cos(t), h - sh + sh * np.sin(t), nr_ / nn, nz_ / nn)
    bottom = (np.array([0.0, r - bv]), np.zeros(2), np.zeros(2), -np.ones(2))
    top = (np.array([rn, 0.0]), np.full(2, h), np.zeros(2), np.ones(2))
    parts = [bottom, bev, side, shoulder, top]
    lengths = [np.hypot(np.diff(pr), np.diff(pz)) for pr, pz, _, _ in parts]
    total = float(sum(seg.sum() for seg in lengths))
    pieces, acc = [], 0.0
    side_v = (0.0, 0.0)
    for i, ((pr, pz, nr, nz), seg) in enumerate(zip(parts, lengths, strict=True)):
        v = (acc + np.concatenate([[0.0], np.cumsum(seg)])) / total
        if i == 2:
            side_v = (float(v[0]), float(v[-1]))
        pieces.append(LathePiece(pr, pz, nr, nz, v=v))
        acc += float(seg.sum())
    return pieces, side_v[0], side_v[1]


def _dent_displacement(points: np.ndarray, dents: list[dict], radius: float) -> np.ndarray:
    """Inward radial displacement (>= 0) per point from smooth Gaussian dents on the side wall."""
    disp = np.zeros(len(points))
    if not dents:
        return disp
    theta = np.arctan2(points[:, 1], points[:, 0])
    for d in dents:
        dth = (theta - d["theta"] + np.pi) % (2 * np.pi) - np.pi
        dist2 = (radius * dth) ** 2 + (points[:, 2] - d["z"]) ** 2
        disp += d["depth"] * np.exp(-dist2 / (2.0 * d["radius"] ** 2))
    return disp


def _apply_dents(mesh: Mesh, dents: list[dict], radius: float) -> Mesh:
    if not dents:
        return mesh
    v = mesh.vertices.astype(np.float64)
    rho = np.hypot(v[:, 0], v[:, 1])
    disp = np.minimum(_dent_displacement(v, dents, radius), 0.5 * rho)
    scale = np.where(rho > 1e-9, (rho - disp) / np.maximum(rho, 1e-9), 1.0)
    v[:, :2] *= scale[:, None]
    return Mesh(v, mesh.faces, vertex_normals(v, mesh.faces), mesh.uvs, mesh.name, dict(mesh.meta))


def _translate(mesh: Mesh, x: float = 0.0, y: float = 0.0, z: float = 0.0, angle_deg: float = 0.0) -> Mesh:
    a = np.deg2rad(angle_deg)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    m[:3, 3] = m[:3, :3] @ np.array([x, y, z])
    return mesh.transformed(m)


def canister_parts(params: dict) -> dict[str, Mesh]:
    """Meshes ``{"body", "cap", "band"}`` in object space (pure function of ``params``)."""
    b, c, bd = params["body"], params["cap"], params["band"]
    seg = int(b.get("segments", 96))
    pieces, v0, v1 = body_profile(params)
    body = _apply_dents(lathe(pieces, seg, name="body"), params.get("dents", []), b["radius"])
    lever = params.get("lever")
    lt = lever["thickness"] if lever else 0.0
    cap_h = c["height"] - lt
    cap = primitive("cylinder", radius=c["radius"], height=cap_h, segments=max(24, seg // 2))
    cap = _translate(cap, z=b["height"] + cap_h / 2)
    if lever:
        reach = b["radius"] + 0.012
        top_len = reach + lt + c["radius"] * 0.3
        top = primitive("cube", size=(top_len, lever["width"], lt))
        top = _translate(top, x=reach + lt - top_len / 2, z=1.0 - lt / 2, angle_deg=lever["angle"])
        down = lever["length"] * b["height"]
        arm = primitive("cube", size=(lt, lever["width"] * 0.85, down))
        arm = _translate(arm, x=reach + lt / 2, z=1.0 - lt - down / 2, angle_deg=lever["angle"])
        cap = concatenate([cap, top, arm], name="cap")
    cap.name = "cap"
    r_in, r_out = b["radius"] - 0.003, b["radius"] + bd["thickness"]
    z0, z1 = bd["z"] - bd["height"] / 2, bd["z"] + bd["height"] / 2
    zz = np.linspace(z0, z1, 6)
    band = lathe([LathePiece([r_in, r_out], [z0, z0], 0.0, -1.0, v=[0.0, 0.1]),
                  LathePiece(np.full(6, r_out), zz, 1.0, 0.0, v=np.linspace(0.1, 0.9, 6)),
                  LathePiece([r_out, r_in], [z1, z1], 0.0, 1.0, v=[0.9, 1.0]),
                  LathePiece(np.full(6, r_in), zz[::-1], -1.0, 0.0, v=np.linspace(1.0, 0.9, 6))],
                 seg, name="band")
    band = _apply_dents(band, params.get("dents", []), b["radius"])
    meta = {"object_space": "z up, base at z=0, total height 1.0", "world_scale": params["height"]}
    out = {"body": body, "cap": cap, "band": band}
    for name, m in out.items():
        m.meta.update(meta, part=name, roughness=params["roughness"][name], metallic=params["metallic"][name])
    body.meta["label_v_range"] = [v0, v1]
    return out


@lru_cache(maxsize=32)
def _font(px: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans Bold as shipped inside matplotlib (same pixels on every machine)."""
    import matplotlib
    from matplotlib import font_manager

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
    if not path.is_file():
        path = Path(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold")))
    return ImageFont.truetype(str(path), max(4, int(px)))


def _text_mask(text: str, px: int) -> np.ndarray:
    """Float (h, w) coverage of ``text`` set at ``px`` pixels height, tightly cropped."""
    font = _font(px)
    x0, y0, x1, y1 = font.getbbox(text)
    im = Image.new("L", (max(1, x1 - x0 + 2), max(1, y1 - y0 + 2)), 0)
    ImageDraw.Draw(im).text((1 - x0, 1 - y0), text, fill=255, font=font)
    return np.asarray(im, np.float32) / 255.0


def _paste(canvas: np.ndarray, mask: np.ndarray, cy: float, cx: float, color: np.ndarray) -> None:
    """Alpha-blend ``color`` through ``mask`` centred at (cy, cx); wraps horizontally."""
    h, w = canvas.shape[:2]
    mh, mw = mask.shape
    top = int(round(cy - mh / 2))
    left = int(round(cx - mw / 2))
    ys = np.arange(mh) + top
    keep = (ys >= 0) & (ys < h)
    if not keep.any():
        return
    xs = (np.arange(mw) + left) % w
    m = mask[keep][:, :, None]
    region = canvas[np.ix_(ys[keep], xs)]
    canvas[np.ix_(ys[keep], xs)] = region + (color - region) * m


def canister_textures(params: dict, size: tuple[int, int] = (256, 512),
                      small_part_step: int = 1) -> dict[str, np.ndarray]:
    """Per-part textures at ``size = (height, width)``: albedo ``"body"``, ``"cap"``, ``"band"`` (uint8
    HxWx3) and roughness ``"body_roughness"``, ``"cap_roughness"``, ``"band_roughness"`` (float32 HxW).
    ``small_part_step`` > 1 makes the cap and band textures that many times smaller per axis (they
    cover few pixels on screen), which saves time at low fidelity.

    The body label carries the body colour, painted stripes, the label text and a lot number, then
    wear (dust, grime, scratches) per part; everything is a pure function of ``params``.
    """
    h, w = int(size[0]), int(size[1])
    b, lab, col = params["body"], params["label"], params["colors"]
    _, v0, v1 = body_profile(params)
    side_rows = (1.0 - v1) * h, (1.0 - v0) * h  # image rows of the side wall (top, bottom)
    z_lo, z_hi = b["bevel"], b["height"] - b["shoulder"]

    def row_of(z: float) -> float:
        return side_rows[1] + (z - z_lo) / (z_hi - z_lo) * (side_rows[0] - side_rows[1])

    px_per_z = (side_rows[1] - side_rows[0]) / (z_hi - z_lo)  # rows per object unit
    px_per_arc = w / (2 * np.pi * b["radius"])  # columns per object unit around the body
    grain = value_noise((h, w), h / 4, lab["noise_seed"], octaves=3)
    body = np.asarray(col["body"], np.float32) * (0.96 + 0.08 * grain[..., None])
    for s in lab["stripes"]:
        r0, r1 = sorted((row_of(s["z"] - s["height"] / 2), row_of(s["z"] + s["height"] / 2)))
        body[max(0, int(round(r0))):max(0, int(round(r1))) + 1] = s["color"]
    text_color = np.asarray(col["text"], np.float32)
    px = max(6, int(round(lab["text_height"] * px_per_z)))
    mask = _text_mask(lab["text"], px)
    lot = _text_mask(lab["lot"], max(5, px // 3))
    aspect = px_per_arc / px_per_z  # squash so the text looks upright once wrapped
    if lab["vertical"]:
        mask, lot = np.rot90(mask), np.rot90(lot)
    mask = _resize(mask, aspect)
    lot = _resize(lot, aspect)
    max_rows = (side_rows[1] - side_rows[0]) * 0.9
    if mask.shape[0] > max_rows or mask.shape[1] > w / max(1, lab["repeat"]) * 0.95:
        f = min(max_rows / mask.shape[0], w / max(1, lab["repeat"]) * 0.95 / mask.shape[1])
        mask = _resize(mask, f, f)
    cy = float(np.clip(row_of(lab["z"]), side_rows[0] + mask.shape[0] / 2, side_rows[1] - mask.shape[0] / 2))
    for k in range(lab["repeat"]):
        cx = (lab["u"] + k / lab["repeat"]) * w
        _paste(body, mask, cy, cx, text_color)
        if lab["vertical"]:
            _paste(body, lot, cy, cx + mask.shape[1] / 2 + lot.shape[1], text_color)
        else:
            _paste(body, lot, cy + mask.shape[0] / 2 + lot.shape[0], cx, text_color)
    k = max(1, int(small_part_step))
    cap = np.asarray(col["cap"], np.float32) * (0.92 + 0.16 * grain[::-1, :, None][::k, ::k])
    band = np.asarray(col["band"], np.float32) * (0.97 + 0.06 * grain[:, ::-1, None][::k, ::k])
    out: dict[str, np.ndarray] = {}
    for name, albedo in (("body", body), ("cap", cap), ("band", band)):
        rough = np.full(albedo.shape[:2], params["roughness"][name], np.float32)
        a, r = apply_wear(to_uint8(albedo), rough, params["wear"][name])
        out[name], out[f"{name}_roughness"] = a, r
    return out


def _resize(mask: np.ndarray, fx: float, fy: float = 1.0) -> np.ndarray:
    mh, mw = mask.shape
    size = (max(1, int(round(mw * fx))), max(1, int(round(mh * fy))))
    im = Image.fromarray(np.ascontiguousarray(mask * 255).astype(np.uint8))
    return np.asarray(im.resize(size, Image.Resampling.BILINEAR), np.float32) / 255.0
