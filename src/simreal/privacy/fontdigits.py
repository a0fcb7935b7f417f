"""Doubly-labelled test data: digits (the utility label) rendered in several font families (the private
label, the "writer"), with small random size, shift, rotation and stroke changes.

The glyphs come from :func:`simreal.bench.digits_data.render_glyph` (the digits benchmark's renderer) at
32x32 (or any size) in grey levels. Families are looked up by file name in matplotlib's fonts and in the
system font folders (Debian packages ``fonts-dejavu``, ``fonts-liberation``, ``fonts-freefont-ttf``);
:func:`find_font_families` says which were found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simreal.bench.digits_data import Randomization, render_glyph
from simreal.datasets import DatasetWriter, encode_image
from simreal.errors import DatasetError, warn
from simreal.runtime.io import atomic_dir
from simreal.runtime.seeding import sample_rng

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
FONT_PACKAGES = "fonts-dejavu fonts-liberation fonts-freefont-ttf"

# (family, regular-style file name, where it comes from), most distinct looks first: the first n found
# are used. Bold/italic files of a family are not separate families.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("DejaVu Sans", "DejaVuSans.ttf", "matplotlib"),
    ("DejaVu Serif", "DejaVuSerif.ttf", "matplotlib"),
    ("DejaVu Sans Mono", "DejaVuSansMono.ttf", "matplotlib"),
    ("STIX General", "STIXGeneral.ttf", "matplotlib"),
    ("Computer Modern Roman", "cmr10.ttf", "matplotlib"),
    ("Computer Modern Sans", "cmss10.ttf", "matplotlib"),
    ("Computer Modern Typewriter", "cmtt10.ttf", "matplotlib"),
    ("Liberation Sans", "LiberationSans-Regular.ttf", "fonts-liberation"),
    ("Liberation Serif", "LiberationSerif-Regular.ttf", "fonts-liberation"),
    ("Liberation Mono", "LiberationMono-Regular.ttf", "fonts-liberation"),
    ("Liberation Sans Narrow", "LiberationSansNarrow-Regular.ttf", "fonts-liberation"),
    ("FreeMono", "FreeMono.ttf", "fonts-freefont-ttf"),
    ("FreeSerif", "FreeSerif.ttf", "fonts-freefont-ttf"),
    ("FreeSans", "FreeSans.ttf", "fonts-freefont-ttf"),
)

FONT_RANDOMIZATION = Randomization(
    size=(52, 64), stroke=(0.0, 0.03), rotation=(-6.0, 6.0), shear=(0.0, 0.0), aspect=(0.94, 1.06),
    height=(22, 27), shift=(-2, 2), blur=(0.0, 0.6), threshold=(0.4, 0.6),
)
"""Small changes only: size, shift, rotation, stroke width (the family must stay recognisable)."""


@dataclass(frozen=True)
class FontFamily:
    name: str
    path: Path
    source: str


def find_font_families(n: int | None = 12, extra_dirs: tuple[str, ...] = FONT_DIRS) -> list[FontFamily]:
    """The first ``n`` families of :data:`FAMILIES` whose regular file exists (all found when n is None)."""
    import matplotlib

    roots = [Path(matplotlib.get_data_path()) / "fonts" / "ttf", *[Path(d) for d in extra_dirs]]
    files: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.suffix.lower() in (".ttf", ".otf"):
                    files.setdefault(p.name, p)
    found = [FontFamily(name, files[fname], src) for name, fname, src in FAMILIES if fname in files]
    return found if n is None else found[:n]


def describe_families(families: list[FontFamily], wanted: int) -> str:
    """One line naming the families found (and how to get more when fewer than wanted)."""
    names = ", ".join(f.name for f in families)
    line = f"{len(families)} font families: {names}"
    if len(families) < wanted:
        line += (f" (wanted {wanted}; install more with: apt-get install -y {FONT_PACKAGES})")
    return line


def render_font_digits(families: list[FontFamily], per_cell: int, size: int = 32, seed: int = 0,
                       randomization: Randomization | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_cell`` images for every (family, digit): uint8 (N, size, size) images (ink bright on black),
    digit labels (N,) and family indices (N,). Sample i uses generator i of ``seed``."""
    r = randomization or FONT_RANDOMIZATION
    n = len(families) * 10 * per_cell
    images = np.zeros((n, size, size), dtype=np.uint8)
    digits = np.tile(np.repeat(np.arange(10), per_cell), len(families))
    fams = np.repeat(np.arange(len(families)), 10 * per_cell)
    for i in range(n):
        g = render_glyph(int(digits[i]), families[int(fams[i])].path, sample_rng(seed, i), r, size, binary=False)
        images[i] = np.round(g * 255).astype(np.uint8)
    return images, digits, fams


def write_font_digits(out: str | Path, per_cell: int = 40, families: int = 12, size: int = 32, seed: int = 0,
                      test_fraction: float = 0.25, command: str = "simreal anonymize digits",
                      progress: bool = True) -> dict[str, Any]:
    """Write the doubly-labelled digits as a dataset folder (records carry ``digit``, ``font`` and
    ``split``; ``label`` is the digit's category id). Returns dataset.json's content."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out}: exists and is not empty; choose another --out")
    if size < 12:
        raise DatasetError(f"--size {size}: too small for digits (use 12 or more, e.g. 20 or 32)")
    fams = find_font_families(families)
    if len(fams) < 2:
        raise DatasetError(f"only {len(fams)} font family found (need 2 or more); install: {FONT_PACKAGES}")
    if len(fams) < families and progress:
        warn(describe_families(fams, families))
    images, digits, fam_idx = render_font_digits(fams, per_cell, size, seed)
    test = np.zeros(len(digits), dtype=bool)
    for f in range(len(fams)):  # stratified: the same share of every (family, digit) cell is test
        for d in range(10):
            cell = np.flatnonzero((fam_idx == f) & (digits == d))
            k = int(round(test_fraction * len(cell)))
            test[sample_rng(seed, f * 10 + d, stream=7).permutation(cell)[:k]] = True
    categories = [{"id": d + 1, "name": str(d)} for d in range(10)]
    with atomic_dir(out) as tmp:  # the folder appears complete or not at all
        writer = DatasetWriter(tmp, out.name, "synthetic", categories, provenance={
            "command": command, "generator": "simreal.privacy.fontdigits",
            "params": {"per_cell": per_cell, "size": size, "seed": seed, "test_fraction": test_fraction,
                       "randomization": FONT_RANDOMIZATION.__dict__},
            "font_families": [{"name": f.name, "file": str(f.path), "source": f.source} for f in fams]})
        records = []
        # records in a shuffled order: ids, file names and order must not give the font away
        for k, i in enumerate(sample_rng(seed, 0, stream=8).permutation(len(digits))):
            name = writer.write_image(f"{k:06d}.png", encode_image(images[i]), durable=False)
            records.append({"id": k + 1, "file_name": name, "width": size, "height": size, "domain": "synthetic",
                            "seed": seed, "params": {"sample": int(i)}, "label": int(digits[i]) + 1,
                            "digit": int(digits[i]), "font": fams[int(fam_idx[i])].name,
                            "split": "test" if test[i] else "train"})
        info = writer.finalize(records, [], extra_info={"fields": {
            "digit": "utility label (0-9)", "font": "private label (font family, the 'writer')",
            "split": "train or test (stratified by font and digit)"}})
    return info
