"""Data of the rare-object benchmark: canvases of 2-6 digits with exact instance masks, in four folders.

* **Real** (``real_train``, ``real_test``, ``real_oracle``): scikit-learn's real 8x8 handwritten digits
  (``load_digits``), upscaled to 18-38 px, rotated, tinted for contrast and alpha-composited (their
  own ink is the alpha) over crops of real photos shipped with scikit-learn, scikit-image and
  matplotlib, placed without heavy overlap; an instance's mask is its visible ink (ink > 0.4). The
  digits are split per seed into a training half and a test half. ``real_train`` never holds the
  rare class; ``real_test`` holds it in about half of the canvases; ``real_oracle`` (for the oracle
  row only) is drawn like ``real_train`` but with the rare class allowed.
* **Synthetic, low fidelity** (``low``): digits drawn from fonts (matplotlib's and any under
  /usr/share/fonts) with flat ink on flat or two-colour backgrounds, with many flat distractor shapes.
* **Synthetic, high fidelity** (``high``): font digits captured coarsely (area-reduced to 6-12 px and
  upscaled again) on photo crops (photos disjoint from the real domain's), with texture noise, a
  lighting gradient, blur and sensor noise.

The synthetic domains hold the rare class in about 60 % of the canvases (and the other digits too).
Every canvas is a function of (seed, domain, index); the photos are split between the real and the
high-fidelity domains by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from simreal.errors import DatasetError
from simreal.runtime.seeding import sample_rng

DIGITS = [str(i) for i in range(10)]
REAL_PHOTOS = ("china", "flower", "astronaut", "coffee", "rocket", "chelsea", "grace_hopper", "camera", "coins",
               "moon")
RENDER_PHOTOS = ("hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel", "clock", "page",
                 "colorwheel", "text")
DOMAIN_STREAMS = {"real_train": 1, "real_test": 2, "real_oracle": 3, "low": 4, "high": 5}


@dataclass(frozen=True)
class RareObjectData:
    """Sizes of one seed's canvases."""

    rare: int = 7
    n_real_train: int = 300
    n_real_test: int = 200
    n_synthetic: int = 300
    canvas: tuple[int, int] = (96, 128)  # side range (px)
    digits: tuple[int, int] = (2, 6)  # per canvas
    digit_size: tuple[int, int] = (18, 38)  # px
    synthetic_rare_fraction: float = 0.6
    test_rare_fraction: float = 0.5


def load_photos(names: tuple[str, ...]) -> list[np.ndarray]:
    """RGB uint8 photos by name from scikit-learn (china, flower), matplotlib (grace_hopper) and
    scikit-image (the rest; grey ones become RGB)."""
    out = []
    for name in names:
        if name in ("china", "flower"):
            from sklearn.datasets import load_sample_image

            img = load_sample_image(f"{name}.jpg")
        elif name == "grace_hopper":
            import matplotlib.cbook

            with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
                img = np.asarray(Image.open(f).convert("RGB"))
        else:
            try:
                import skimage.data
            except ImportError:  # pragma: no cover - an install without the bench extra
                raise DatasetError("simreal bench rare-object needs scikit-image (a dependency of simreal: "
                                   "reinstall simreal)") from None
            img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, 2)
        out.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return out


def real_digit_split(seed: int, rare: int) -> dict[str, np.ndarray]:
    """load_digits split per seed (stratified halves): train/test images (N, 8, 8) in 0..1 and labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x, y = d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)
    xa, xb, ya, yb = train_test_split(x, y, test_size=0.5, random_state=seed, stratify=y)
    return {"train_x": xa, "train_y": ya, "test_x": xb, "test_y": yb}


def _crop(photo: np.ndarray, hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = hw
    scale = rng.uniform(max(h / photo.shape[0], w / photo.shape[1]), 1.0)
    ph, pw = max(h, int(round(h / scale))), max(w, int(round(w / scale)))
    ph, pw = min(ph, photo.shape[0]), min(pw, photo.shape[1])
    y0, x0 = int(rng.integers(0, photo.shape[0] - ph + 1)), int(rng.integers(0, photo.shape[1] - pw + 1))
    patch = Image.fromarray(photo[y0:y0 + ph, x0:x0 + pw]).resize((w, h), Image.Resampling.BILINEAR)
    out = np.asarray(patch, dtype=np.float32) / 255.0
    return out[:, ::-1].copy() if rng.random() < 0.5 else out


def _handwritten(img8: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """An 8x8 real digit (0..1) as a ``size`` px ink map (0..1), rotated."""
    im = Image.fromarray((img8 * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    pad = size // 3
    canvas = Image.new("L", (size + 2 * pad, size + 2 * pad), 0)
    canvas.paste(im, (pad, pad))
    canvas = canvas.rotate(rng.uniform(-18, 18), resample=Image.Resampling.BILINEAR)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _font_glyph(digit: int, size: int, font: Path, rng: np.random.Generator, capture: bool = False) -> np.ndarray:
    """A font digit as a ``size`` px (height) ink map (0..1), random stroke, rotated. ``capture``: emulate a
    coarse capture (area-reduce to 6-12 px, bicubic back up), as the high-fidelity renders do."""
    px = 96
    f = ImageFont.truetype(str(font), px)
    im = Image.new("L", (2 * px, 2 * px), 0)
    stroke = int(rng.integers(0, 4))
    ImageDraw.Draw(im).text((px, px), str(digit), fill=255, font=f, anchor="mm", stroke_width=stroke, stroke_fill=255)
    box = im.getbbox()
    if box is None:
        return np.zeros((size, size), np.float32)
    glyph = im.crop(box)
    h = size
    w = max(2, int(round(glyph.width * h / glyph.height * rng.uniform(0.8, 1.15))))
    glyph = glyph.resize((w, h), Image.Resampling.LANCZOS)
    if capture:
        small = int(rng.integers(6, 13))
        glyph = glyph.resize((max(2, round(small * w / h)), small), Image.Resampling.BOX).resize(
            (w, h), Image.Resampling.BICUBIC)
    pad = max(w, h) // 3
    canvas = Image.new("L", (w + 2 * pad, h + 2 * pad), 0)
    canvas.paste(glyph, (pad, pad))
    canvas = canvas.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BILINEAR)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _ink_colour(bg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lum = float(bg.mean())
    base = rng.uniform(0.0, 0.25, 3) if lum > 0.5 else rng.uniform(0.75, 1.0, 3)
    return base if rng.random() < 0.7 else np.clip(base + rng.normal(0, 0.25, 3), 0, 1)


def _place(canvas: np.ndarray, inst: np.ndarray, alpha: np.ndarray, colour: Any, rng: np.random.Generator,
           k: int, ink_threshold: float = 0.4) -> bool:
    """Composite ``alpha`` (ink map) at a random place whose box is at most 15 % covered by earlier instances,
    in ``colour(background patch)``; earlier instances lose the pixels the new ink covers. False when no
    place was found."""
    h, w = inst.shape
    ah, aw = alpha.shape
    ys, xs = np.nonzero(alpha > ink_threshold)
    if ys.size == 0 or ah > h or aw > w:
        return False
    for _ in range(25):
        y0, x0 = int(rng.integers(0, h - ah + 1)), int(rng.integers(0, w - aw + 1))
        y1, y2, x1, x2 = y0 + ys.min(), y0 + ys.max() + 1, x0 + xs.min(), x0 + xs.max() + 1
        region = inst[y1:y2, x1:x2]
        if (region > 0).mean() <= 0.15:
            a = alpha[..., None]
            patch = canvas[y0:y0 + ah, x0:x0 + aw]
            canvas[y0:y0 + ah, x0:x0 + aw] = patch * (1 - a) + colour(patch) * a
            sub = inst[y0:y0 + ah, x0:x0 + aw]
            sub[alpha > ink_threshold] = k
            return True
    return False


def _digit_list(rng: np.random.Generator, cfg: RareObjectData, rare_mode: str) -> list[int]:
    """Digits of one canvas; ``rare_mode``: "never", "maybe" (synthetic / oracle), "half" (test)."""
    n = int(rng.integers(cfg.digits[0], cfg.digits[1] + 1))
    others = [d for d in range(10) if d != cfg.rare]
    digits = [int(rng.choice(others)) for _ in range(n)]
    p = {"never": 0.0, "maybe": cfg.synthetic_rare_fraction, "half": cfg.test_rare_fraction}[rare_mode]
    if rng.random() < p:
        for j in rng.choice(n, size=int(rng.integers(1, 3)) if n > 2 else 1, replace=False):
            digits[int(j)] = cfg.rare
    return digits


def real_canvas(seed: int, index: int, stream: int, cfg: RareObjectData, photos: list[np.ndarray],
                pool_x: np.ndarray, pool_y: np.ndarray, rare_mode: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(RGB uint8 canvas, instance ids, class per instance) of one real canvas."""
    rng = sample_rng(seed, index, stream=stream)
    side = (int(rng.integers(cfg.canvas[0], cfg.canvas[1] + 1)), int(rng.integers(cfg.canvas[0], cfg.canvas[1] + 1)))
    canvas = _crop(photos[int(rng.integers(len(photos)))], side, rng)
    inst = np.zeros(side, np.uint16)
    classes: list[int] = []
    for d in _digit_list(rng, cfg, rare_mode):
        cand = np.flatnonzero(pool_y == d)
        ink = _handwritten(pool_x[int(rng.choice(cand))], int(rng.integers(*cfg.digit_size)), rng)
        ink = np.clip(ink * rng.uniform(1.0, 1.25), 0, 1)
        if _place(canvas, inst, ink, lambda bg: _ink_colour(bg, rng), rng, len(classes) + 1):
            classes.append(d)
    canvas = canvas + rng.normal(0, 0.01, canvas.shape)
    return ((np.clip(canvas, 0, 1) * 255).astype(np.uint8), *_compact(inst, classes))


def synthetic_canvas(seed: int, index: int, stream: int, cfg: RareObjectData, fonts: list[Path],
                     photos: list[np.ndarray], fidelity: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(RGB uint8 canvas, instance ids, class per instance) of one low- or high-fidelity render."""
    rng = sample_rng(seed, index, stream=stream)
    side = (int(rng.integers(cfg.canvas[0], cfg.canvas[1] + 1)), int(rng.integers(cfg.canvas[0], cfg.canvas[1] + 1)))
    h, w = side
    if fidelity == "low":
        c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        t = np.linspace(0, 1, w)[None, :, None] if rng.random() < 0.5 else np.zeros((1, 1, 1))
        canvas = np.broadcast_to(c0 * (1 - t) + c1 * t, (h, w, 3)).astype(np.float32).copy()
        pil = Image.fromarray((canvas * 255).astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        for _ in range(int(rng.integers(4, 10))):  # flat distractor shapes
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x1, y1 = x0 + int(rng.integers(4, 40)), y0 + int(rng.integers(4, 40))
            col = tuple(int(v) for v in rng.integers(0, 256, 3))
            kind = int(rng.integers(3))
            if kind == 0:
                draw.rectangle([x0, y0, x1, y1], fill=col)
            elif kind == 1:
                draw.ellipse([x0, y0, x1, y1], fill=col)
            else:
                draw.line([x0, y0, x1, y1], fill=col, width=int(rng.integers(1, 4)))
        canvas = np.asarray(pil, dtype=np.float32) / 255.0
    else:
        canvas = _crop(photos[int(rng.integers(len(photos)))], side, rng)
        canvas = canvas * rng.uniform(0.6, 1.0) + rng.normal(0, rng.uniform(0.0, 0.06), (h, w, 1))  # texture
    inst = np.zeros(side, np.uint16)
    classes: list[int] = []
    for d in _digit_list(rng, cfg, "maybe"):
        ink = _font_glyph(d, int(rng.integers(*cfg.digit_size)), fonts[int(rng.integers(len(fonts)))], rng,
                          capture=fidelity == "high")
        if fidelity == "low":
            flat = rng.uniform(0, 1, 3)
            colour = lambda _bg, c=flat: c  # noqa: E731
        else:
            colour = lambda bg: _ink_colour(bg, rng)  # noqa: E731
            ink = ink * rng.uniform(0.75, 1.0)
        if _place(canvas, inst, ink, colour, rng, len(classes) + 1):
            classes.append(d)
    if fidelity == "high":
        yy, xx = np.mgrid[:h, :w] / max(h, w)
        ang = rng.uniform(0, 2 * math.pi)
        light = 1.0 + rng.uniform(0.1, 0.4) * (np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)) * 2
        canvas = np.clip(canvas * light[..., None], 0, 1)
        blur = rng.uniform(0.0, 1.2)
        if blur > 0.1:
            pil = Image.fromarray((canvas * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
            canvas = np.asarray(pil, dtype=np.float32) / 255.0
        canvas = canvas + rng.normal(0, rng.uniform(0.0, 0.03), canvas.shape)
    return ((np.clip(canvas, 0, 1) * 255).astype(np.uint8), *_compact(inst, classes))


def _compact(inst: np.ndarray, classes: list[int]) -> tuple[np.ndarray, list[int]]:
    """Drop instances left with fewer than 8 visible pixels (renumbered 1..n)."""
    out = np.zeros_like(inst)
    kept: list[int] = []
    for k, c in enumerate(classes, start=1):
        m = inst == k
        if m.sum() >= 8:
            kept.append(c)
            out[m] = len(kept)
    return out, kept


def write_seed(root: Path, seed: int, cfg: RareObjectData) -> dict[str, Path]:
    """Write the five folders of one seed under ``root`` (skipped when already complete)."""
    from simreal.bench.digits_data import digit_fonts
    from simreal.datasets.arrays import InstanceSample, write_instance_dataset

    fonts = digit_fonts()
    if not fonts:
        raise DatasetError("no TrueType fonts found for the synthetic digits (matplotlib's fonts missing?)")
    real_photos, render_photos = load_photos(REAL_PHOTOS), load_photos(RENDER_PHOTOS)
    split = real_digit_split(seed, cfg.rare)
    plan: dict[str, tuple[int, Any]] = {
        "real_train": (cfg.n_real_train, lambda i, s: real_canvas(seed, i, s, cfg, real_photos, split["train_x"],
                                                                  split["train_y"], "never")),
        "real_oracle": (cfg.n_real_train, lambda i, s: real_canvas(seed, i, s, cfg, real_photos, split["train_x"],
                                                                   split["train_y"], "maybe")),
        "real_test": (cfg.n_real_test, lambda i, s: real_canvas(seed, i, s, cfg, real_photos, split["test_x"],
                                                                split["test_y"], "half")),
        "low": (cfg.n_synthetic, lambda i, s: synthetic_canvas(seed, i, s, cfg, fonts, render_photos, "low")),
        "high": (cfg.n_synthetic, lambda i, s: synthetic_canvas(seed, i, s, cfg, fonts, render_photos, "high")),
    }
    out = {}
    for name, (n, make) in plan.items():
        folder = root / f"seed{seed}" / name
        out[name] = folder
        if (folder / "dataset.json").is_file():
            continue
        domain = "real" if name.startswith("real") else "synthetic"
        samples = []
        for i in range(n):
            img, inst, classes = make(i, DOMAIN_STREAMS[name])
            samples.append(InstanceSample(img, inst, classes, {"index": i}))
        write_instance_dataset(folder, f"{name}-seed{seed}", domain, DIGITS, samples,
                               {"benchmark": "rare-object", "seed": seed, "rare": cfg.rare})
    return out
