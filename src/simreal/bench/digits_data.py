"""Data for the digits sim-to-real benchmark.

Source: synthetic digits rendered from the fonts shipped with matplotlib (and any TrueType fonts
under ``/usr/share/fonts``) with domain randomization, brought to the format of
``sklearn.datasets.load_digits``: 8x8 images with 17 grey levels (0..16), where each pixel counts
the "on" pixels of a 4x4 block of a 32x32 binary bitmap whose digit fills the bitmap's height.

Target: ``load_digits`` split per seed (stratified) into an unlabelled adaptation part and a test part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from simreal.errors import DatasetError
from simreal.runtime.seeding import sample_rng

# Fonts whose digit glyphs are not ordinary digits (symbols, size variants, fallback glyphs).
_SKIP_FONT_PARTS = ("cmex", "cmsy", "cmmi", "STIXSiz", "STIXNonUni", "LastResort", "MathTeX", "Display")


def digit_fonts(extra_dirs: tuple[str, ...] = ("/usr/share/fonts",)) -> list[Path]:
    """TrueType/OpenType fonts usable for digits: matplotlib's plus any found in ``extra_dirs``.

    Fonts with the same file name are kept once (matplotlib's copy wins), sorted by name, so the
    list is the same on every run of the same machine.
    """
    import matplotlib

    found: dict[str, Path] = {}
    roots = [Path(matplotlib.get_data_path()) / "fonts" / "ttf", *[Path(d) for d in extra_dirs]]
    for root in roots:
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() not in (".ttf", ".otf") or any(s in p.name for s in _SKIP_FONT_PARTS):
                continue
            found.setdefault(p.name, p)
    return [found[k] for k in sorted(found)]


@dataclass(frozen=True)
class Randomization:
    """Ranges of the domain randomization (uniform draws)."""

    size: tuple[int, int] = (40, 72)  # font size in px on a 128 px canvas
    stroke: tuple[float, float] = (0.0, 0.08)  # stroke width as a fraction of the font size
    rotation: tuple[float, float] = (-15.0, 15.0)  # degrees
    shear: tuple[float, float] = (-0.3, 0.3)
    aspect: tuple[float, float] = (0.6, 1.25)  # width scale before normalisation
    height: tuple[int, int] = (27, 32)  # digit height in the 32x32 bitmap
    shift: tuple[int, int] = (-2, 2)  # px in the 32x32 bitmap
    blur: tuple[float, float] = (0.0, 2.0)  # Gaussian blur radius (px on the canvas) before thresholding
    threshold: tuple[float, float] = (0.3, 0.7)  # binarisation threshold (fraction of full ink)


def render_glyph(digit: int, font: Path, rng: np.random.Generator, r: Randomization, size: int = 32,
                 binary: bool = True) -> np.ndarray:
    """One randomized digit as a (size, size) float32 image in [0, 1] (ink = 1).

    The glyph is drawn on a 128 px canvas, sheared, rotated, blurred, cropped to its ink (pixels above
    the drawn threshold) and scaled to a height drawn from ``r.height`` (given for a 32 px image and
    scaled to ``size``); ``binary`` keeps the thresholded ink, otherwise the anti-aliased grey levels.
    The random draws are the same in both modes, in a fixed order, so a sample is reproducible.
    """
    font_size = int(rng.integers(r.size[0], r.size[1] + 1))
    stroke = int(round(rng.uniform(*r.stroke) * font_size))
    canvas = Image.new("L", (128, 128), 0)
    draw = ImageDraw.Draw(canvas)
    pil_font = ImageFont.truetype(str(font), font_size)
    draw.text((64, 64), str(digit), fill=255, font=pil_font, anchor="mm", stroke_width=stroke, stroke_fill=255)
    shear = rng.uniform(*r.shear)
    aspect = rng.uniform(*r.aspect)
    # affine map output->input about the centre: scale x by 1/aspect, shear, then rotate
    canvas = canvas.transform(
        (128, 128), Image.Transform.AFFINE,
        (1.0 / aspect, shear, 64 - 64 / aspect - shear * 64, 0.0, 1.0, 0.0),
        resample=Image.Resampling.BILINEAR,
    )
    canvas = canvas.rotate(rng.uniform(*r.rotation), resample=Image.Resampling.BILINEAR, center=(64, 64))
    blur = rng.uniform(*r.blur)
    if blur > 0.05:
        canvas = canvas.filter(ImageFilter.GaussianBlur(blur))
    arr = np.asarray(canvas, dtype=np.float32) / 255.0
    ink = arr >= rng.uniform(*r.threshold)
    ys, xs = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if ys.size == 0:
        return np.zeros((size, size), dtype=np.float32)
    crop = ink[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] * 255 if binary else arr[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] * 255
    glyph = Image.fromarray(crop.astype(np.uint8))
    scale = size / 32.0
    h = max(1, min(size, int(round(int(rng.integers(r.height[0], r.height[1] + 1)) * scale))))
    w = max(1, min(size, int(round(glyph.width * h / glyph.height))))
    glyph = glyph.resize((w, h), Image.Resampling.BILINEAR)
    bitmap = np.zeros((size, size), dtype=np.float32)
    dx = (size - w) // 2 + int(round(int(rng.integers(r.shift[0], r.shift[1] + 1)) * scale))
    dy = (size - h) // 2 + int(round(int(rng.integers(r.shift[0], r.shift[1] + 1)) * scale))
    dx, dy = int(np.clip(dx, 0, size - w)), int(np.clip(dy, 0, size - h))
    g = np.asarray(glyph, dtype=np.float32)
    bitmap[dy:dy + h, dx:dx + w] = (g >= 128) if binary else g / 255.0
    return bitmap


def _render_one(digit: int, font: Path, rng: np.random.Generator, r: Randomization) -> np.ndarray:
    """A digit in the ``load_digits`` format: 8x8 counts (0..16) of the 4x4 blocks of a 32x32 bitmap."""
    return render_glyph(digit, font, rng, r).reshape(8, 4, 8, 4).sum(axis=(1, 3))


def render_digits(
    n_per_class: int, seed: int, fonts: list[Path] | None = None, randomization: Randomization | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n_per_class`` synthetic digits per class: (N, 8, 8) float32 in 0..16 and labels 0..9.

    Sample ``i`` uses the generator of index ``i`` under ``seed`` (independent of order/workers).
    """
    fonts = fonts if fonts is not None else digit_fonts()
    if not fonts:
        raise DatasetError("no TrueType fonts found for the synthetic digits (matplotlib's fonts missing?)")
    r = randomization or Randomization()
    images = np.zeros((10 * n_per_class, 8, 8), dtype=np.float32)
    labels = np.repeat(np.arange(10), n_per_class)
    for i in range(len(labels)):
        rng = sample_rng(seed, i)
        font = fonts[int(rng.integers(len(fonts)))]
        images[i] = _render_one(int(labels[i]), font, rng, r)
    return images, labels


@dataclass
class DigitsSplits:
    """All arrays of the benchmark: images (N, 8, 8) float32 in 0..16, labels int64 0..9."""

    source_x: np.ndarray
    source_y: np.ndarray
    source_val_x: np.ndarray
    source_val_y: np.ndarray
    target_adapt_x: np.ndarray  # unlabelled during adaptation
    target_adapt_y: np.ndarray  # used only by the oracle / k-shot rows, never for selection by default
    target_test_x: np.ndarray
    target_test_y: np.ndarray


def real_digits_split(seed: int = 0, test_fraction: float = 0.5) -> tuple[np.ndarray, ...]:
    """``load_digits`` split (stratified, drawn with ``seed``) into adaptation and test parts."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x, y = d.images.astype(np.float32), d.target.astype(np.int64)
    xa, xt, ya, yt = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return xa, ya, xt, yt


def make_splits(n_per_class: int = 500, n_val_per_class: int = 50, seed: int = 0) -> DigitsSplits:
    """Synthetic source (train/val) and real target (adapt/test) for the benchmark."""
    sx, sy = render_digits(n_per_class + n_val_per_class, seed)
    val = np.zeros(len(sy), dtype=bool)
    for c in range(10):
        val[np.flatnonzero(sy == c)[:n_val_per_class]] = True
    xa, ya, xt, yt = real_digits_split(seed=seed)  # drawn per seed: the table's spread includes split variance
    return DigitsSplits(sx[~val], sy[~val], sx[val], sy[val], xa, ya, xt, yt)
