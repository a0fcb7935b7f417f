"""Dataset statistics and preview grids (images with boxes and masks drawn)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from simreal.datasets.coco import extras
from simreal.datasets.contract import Dataset
from simreal.datasets.imageio import encode_image
from simreal.runtime.io import atomic_write_bytes

SIZE_BINS = (0, 8, 16, 32, 64, 96, 128, 256, 512, 1e9)
VIS_BINS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0001)


def dataset_stats(ds: Dataset) -> dict[str, Any]:
    """Counts, per-category counts, box-size (sqrt of box area) and visibility histograms."""
    names = {c["id"]: c["name"] for c in ds.categories}
    per_cat = Counter(names.get(a["category_id"], str(a["category_id"])) for a in ds.annotations)
    sizes = np.array([math.sqrt(a["bbox"][2] * a["bbox"][3]) for a in ds.annotations if a.get("bbox")])
    vis = np.array([extras(a)["visibility"] for a in ds.annotations if "visibility" in extras(a)])
    labels = Counter(ds.label(r) for r in ds.images)
    return {
        "name": ds.name,
        "domain": ds.domain,
        "images": len(ds.images),
        "annotations": len(ds.annotations),
        "ignored": sum(1 for a in ds.annotations if extras(a).get("ignore")),
        "negatives": labels.get(0, 0),
        "unlabelled": labels.get(None, 0),
        "per_category": dict(per_cat),
        "image_labels": {("negative" if k == 0 else names.get(k, str(k))): v for k, v in labels.items()
                         if k is not None},
        "box_size_hist": _hist(sizes, SIZE_BINS),
        "visibility_hist": _hist(vis, VIS_BINS),
        "box_size_mean": float(sizes.mean()) if sizes.size else None,
    }


def _hist(values: np.ndarray, bins: tuple[float, ...]) -> list[dict[str, Any]]:
    counts, _ = np.histogram(values, bins=np.asarray(bins, dtype=np.float64))
    return [{"low": float(bins[i]), "high": float(bins[i + 1]), "count": int(c)} for i, c in enumerate(counts)]


def format_stats(stats: dict[str, Any]) -> str:
    """Human-readable text for ``dataset_stats``."""
    lines = [
        f"dataset {stats['name']} (domain {stats['domain']})",
        f"  images {stats['images']}  annotations {stats['annotations']}  ignored {stats['ignored']}  "
        f"negatives {stats['negatives']}  unlabelled {stats['unlabelled']}",
        "  per category: " + ", ".join(f"{k} {v}" for k, v in stats["per_category"].items()),
        "  image labels: " + ", ".join(f"{k} {v}" for k, v in stats["image_labels"].items()),
    ]
    for title, key, fmt in (("box size (sqrt area, px)", "box_size_hist", "{:g}-{:g}"),
                            ("visibility", "visibility_hist", "{:.2f}-{:.2f}")):
        hist = stats[key]
        total = max(1, max((h["count"] for h in hist), default=1))
        lines.append(f"  {title}:")
        for h in hist:
            hi = min(h["high"], 1.0) if key == "visibility_hist" else h["high"]
            label = fmt.format(h["low"], hi) if hi < 1e8 else f"{h['low']:g}+"
            lines.append(f"    {label:>12} {h['count']:6d} " + "#" * int(round(30 * h["count"] / total)))
    return "\n".join(lines)


def _palette(n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    pal = rng.integers(64, 256, (max(n, 1) + 1, 3)).astype(np.uint8)
    pal[0] = 0
    return pal


def draw_sample(ds: Dataset, index: int, tile: int, raw: bool = False) -> Image.Image:
    """One image with its masks tinted and its visible (solid) and amodal (dashed) boxes drawn
    (``raw``: the image alone, resized smoothly: a contact sheet)."""
    rec = ds.images[index]
    img = ds.load_image(rec).astype(np.float32)
    if raw:
        pil = Image.fromarray(img.clip(0, 255).astype(np.uint8))
        scale = tile / max(pil.size)
        return pil.resize((max(1, round(pil.size[0] * scale)), max(1, round(pil.size[1] * scale))),
                          Image.Resampling.LANCZOS)
    mask = ds.load_mask(rec)
    if mask is not None and mask.shape == img.shape[:2] and mask.any():
        pal = _palette(int(mask.max())).astype(np.float32)
        tint = pal[mask]
        on = (mask > 0)[..., None]
        img = np.where(on, 0.55 * img + 0.45 * tint, img)
    pil = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    scale = tile / max(pil.size)
    pil = pil.resize((max(1, round(pil.size[0] * scale)), max(1, round(pil.size[1] * scale))),
                     Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(pil)
    names = {c["id"]: c["name"] for c in ds.categories}
    for a in ds.anns(rec):
        if extras(a).get("amodal_bbox"):
            x, y, w, h = (v * scale for v in extras(a)["amodal_bbox"])
            _dashed_rect(draw, x, y, x + w, y + h, (255, 255, 0))
        if a.get("bbox"):
            x, y, w, h = (v * scale for v in a["bbox"])
            color = (255, 80, 80) if extras(a).get("ignore") else (0, 255, 0)
            draw.rectangle([x, y, x + w - 1, y + h - 1], outline=color, width=1)
            draw.text((x + 2, y + 1), names.get(a["category_id"], "?"), fill=color)
    lab = ds.label(rec)
    if lab is not None:
        draw.text((2, pil.size[1] - 12), "negative" if lab == 0 else names.get(lab, str(lab)), fill=(255, 255, 255))
    return pil


def _dashed_rect(draw: ImageDraw.ImageDraw, x0: float, y0: float, x1: float, y1: float, color: tuple) -> None:
    step = 4
    for a, b, fixed, horizontal in ((x0, x1, y0, True), (x0, x1, y1, True), (y0, y1, x0, False),
                                    (y0, y1, x1, False)):
        t = a
        while t < b:
            e = min(t + step / 2, b)
            draw.line([(t, fixed), (e, fixed)] if horizontal else [(fixed, t), (fixed, e)], fill=color)
            t += step


def preview_grid(ds: Dataset, out: str | Path, n: int = 16, tile: int = 192, columns: int | None = None,
                 raw: bool = False) -> Path:
    """Write a PNG grid of the first ``n`` images with annotations drawn (``raw``: images only)."""
    n = min(n, len(ds))
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    grid = Image.new("RGB", (cols * tile, rows * tile), (32, 32, 32))
    for i in range(n):
        t = draw_sample(ds, i, tile, raw)
        grid.paste(t, ((i % cols) * tile, (i // cols) * tile))
    atomic_write_bytes(out, encode_image(np.asarray(grid)))
    return Path(out)
