"""3-D colour lookup tables: generated looks, Adobe/Resolve ``.cube`` files, trilinear application.

A LUT maps sRGB display values to sRGB display values. ``Lut3D.table`` is float32 (N, N, N, 3)
indexed ``table[r, g, b]`` (the ``.cube`` data order, red fastest, is transposed on read and back
on write); inputs are rescaled from ``[domain_min, domain_max]`` to grid coordinates and clamped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from simreal.errors import AssetError


@dataclass
class Lut3D:
    """A 3-D LUT: ``table`` (N, N, N, 3) float32 indexed [r, g, b]; per-channel input domain."""

    table: np.ndarray
    domain_min: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    domain_max: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    name: str = "lut"

    def __post_init__(self) -> None:
        self.table = np.ascontiguousarray(self.table, dtype=np.float32)
        self.domain_min = np.asarray(self.domain_min, np.float32).reshape(3)
        self.domain_max = np.asarray(self.domain_max, np.float32).reshape(3)

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The table as three flat contiguous channel arrays (for fast gathers); cached."""
        cached = self.__dict__.get("_planes")
        if cached is None or cached[0] is not self.table:
            cached = (self.table, tuple(np.ascontiguousarray(self.table[..., c]).ravel() for c in range(3)))
            self.__dict__["_planes"] = cached
        return cached[1]

    @property
    def size(self) -> int:
        """Grid points per axis."""
        return int(self.table.shape[0])


def identity_lut(size: int = 33) -> Lut3D:
    """The LUT that maps every colour to itself."""
    g = np.linspace(0.0, 1.0, int(size), dtype=np.float32)
    r, gg, b = np.meshgrid(g, g, g, indexing="ij")
    return Lut3D(np.stack([r, gg, b], -1), name="identity")


def _luma(x: np.ndarray) -> np.ndarray:
    return (x @ np.array([0.2126, 0.7152, 0.0722], np.float32))[..., None]


def _scurve(x: np.ndarray, k: float) -> np.ndarray:
    """Contrast S-curve through (0,0), (0.5,0.5), (1,1); k in [0, 1] blends toward smoothstep."""
    return x + k * (x * x * (3 - 2 * x) - x)


def _looks(x: np.ndarray) -> dict[str, np.ndarray]:
    y = _luma(x)
    sat = lambda img, s: y + (img - y) * s  # noqa: E731
    return {
        "warm": x * np.array([1.08, 1.01, 0.88], np.float32) + np.array([0.02, 0.005, 0.0], np.float32),
        "cool": x * np.array([0.9, 0.99, 1.08], np.float32) + np.array([0.0, 0.005, 0.02], np.float32),
        "faded": sat(0.08 + 0.82 * x, 0.75),
        "teal_orange": sat(x + (1 - y) * np.array([-0.06, 0.02, 0.06], np.float32)
                           + y * np.array([0.08, 0.01, -0.08], np.float32), 1.1),
        "high_contrast": _scurve(_scurve(x, 1.0), 0.5),
        "bleach_bypass": sat(_scurve(x, 0.8), 0.45),
        "cross_process": np.concatenate([_scurve(x[..., :1], 1.0), _scurve(x[..., 1:2], 0.5) * 1.03,
                                         0.15 + 0.7 * x[..., 2:]], -1),
        "mono": np.repeat(_scurve(y, 0.3), 3, axis=-1),
    }


@lru_cache(maxsize=4)
def _generated(size: int) -> tuple[tuple[str, Lut3D], ...]:
    grid = identity_lut(size).table
    out = []
    for name, table in _looks(grid).items():
        t = np.clip(table, 0.0, 1.0).astype(np.float32)
        t.flags.writeable = False
        out.append((name, Lut3D(t, name=name)))
    return tuple(out)


def generated_luts(size: int = 33) -> dict[str, Lut3D]:
    """Built-in looks: warm, cool, faded, teal_orange, high_contrast, bleach_bypass, cross_process,
    mono (read-only tables, computed once per process)."""
    return dict(_generated(int(size)))


_KEYWORDS = {"TITLE", "LUT_3D_SIZE", "LUT_1D_SIZE", "DOMAIN_MIN", "DOMAIN_MAX", "LUT_3D_INPUT_RANGE",
             "LUT_1D_INPUT_RANGE"}


def read_cube(path: str | Path) -> Lut3D:
    """Parse an Adobe/Resolve ``.cube`` file (3-D, or 1-D expanded to a 33³ 3-D table).

    Accepts TITLE, LUT_3D_SIZE, LUT_1D_SIZE, DOMAIN_MIN/MAX, LUT_*_INPUT_RANGE and ``#`` comments.
    Raises AssetError naming the file (and line) on anything malformed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig", errors="strict")
    except FileNotFoundError:
        raise AssetError(f"LUT file not found: {p} (expected a .cube file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AssetError(f"LUT file {p} is unreadable ({exc}); expected a text .cube file") from None
    size3 = size1 = None
    dmin, dmax = np.zeros(3), np.ones(3)
    rows: list[list[float]] = []
    first_data = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        head, *rest = line.split(None, 1)
        key = head.upper()
        where = f"LUT file {p} line {lineno}"
        if key in _KEYWORDS:
            if rows:
                raise AssetError(f"{where}: keyword {head} after table data; expected keywords first")
            arg = rest[0].strip() if rest else ""
            try:
                if key == "TITLE":
                    continue
                if key == "LUT_3D_SIZE":
                    size3 = int(arg)
                    if not 2 <= size3 <= 256:
                        raise ValueError
                elif key == "LUT_1D_SIZE":
                    size1 = int(arg)
                    if not 2 <= size1 <= 65536:
                        raise ValueError
                elif key in ("DOMAIN_MIN", "DOMAIN_MAX"):
                    vals = np.array([float(v) for v in arg.split()])
                    if vals.shape != (3,):
                        raise ValueError
                    if key == "DOMAIN_MIN":
                        dmin = vals
                    else:
                        dmax = vals
                else:  # LUT_*_INPUT_RANGE lo hi
                    lo, hi = (float(v) for v in arg.split())
                    dmin, dmax = np.full(3, lo), np.full(3, hi)
            except ValueError:
                raise AssetError(f"{where}: bad value for {head}: {arg!r}") from None
            continue
        if re.match(r"^[A-Za-z_]", head):
            raise AssetError(f"{where}: unknown keyword {head!r}; expected a .cube keyword or three numbers")
        parts = line.split()
        try:
            vals = [float(v) for v in parts]
        except ValueError:
            raise AssetError(f"{where}: expected three numbers, got {line!r}") from None
        if len(vals) != 3 or not np.isfinite(vals).all():
            raise AssetError(f"{where}: expected three numbers, got {line!r}")
        if first_data is None:
            first_data = lineno
        rows.append(vals)
    if (size3 is None) == (size1 is None):
        raise AssetError(f"LUT file {p}: expected exactly one of LUT_3D_SIZE or LUT_1D_SIZE")
    if (dmax <= dmin).any():
        raise AssetError(f"LUT file {p}: DOMAIN_MAX {dmax.tolist()} must exceed DOMAIN_MIN {dmin.tolist()}")
    n = size3 ** 3 if size3 is not None else size1
    if len(rows) != n:
        raise AssetError(f"LUT file {p}: expected {n} table rows after the header, found {len(rows)} "
                         f"(data from line {first_data})")
    data = np.asarray(rows, np.float32)
    if size3 is not None:
        table = data.reshape(size3, size3, size3, 3).transpose(2, 1, 0, 3)  # [b, g, r] -> [r, g, b]
        return Lut3D(table, dmin, dmax, name=p.stem)
    # 1-D: per-channel curves sampled on the domain, expanded to a 3-D table on [domain_min, domain_max]
    g = 33
    xs = np.linspace(0.0, 1.0, size1)
    t = np.linspace(0.0, 1.0, g)
    curves = [np.interp(t, xs, data[:, c]) for c in range(3)]
    r, gg, b = np.meshgrid(curves[0], curves[1], curves[2], indexing="ij")
    return Lut3D(np.stack([r, gg, b], -1), dmin, dmax, name=p.stem)


def write_cube(lut: Lut3D, path: str | Path, title: str | None = None) -> None:
    """Write a 3-D LUT as a ``.cube`` file (red fastest)."""
    n = lut.size
    lines = [f'TITLE "{title or lut.name}"', f"LUT_3D_SIZE {n}",
             "DOMAIN_MIN " + " ".join(f"{v:.6g}" for v in lut.domain_min),
             "DOMAIN_MAX " + " ".join(f"{v:.6g}" for v in lut.domain_max)]
    data = lut.table.transpose(2, 1, 0, 3).reshape(-1, 3)
    body = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in data)
    Path(path).write_text("\n".join(lines) + "\n" + body + "\n", encoding="utf-8")


def load_cube_folder(path: str | Path) -> dict[str, Lut3D]:
    """Every ``*.cube`` in a folder, keyed by file stem (sorted). AssetError if none or any is bad."""
    folder = Path(path)
    if not folder.is_dir():
        raise AssetError(f"LUT folder not found: {folder} (expected a folder of .cube files)")
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() == ".cube")
    if not files:
        raise AssetError(f"LUT folder {folder} has no .cube files")
    return {f.stem: read_cube(f) for f in files}


def apply_lut_planar(planes: np.ndarray, lut: Lut3D, strength: float = 1.0) -> np.ndarray:
    """Trilinear LUT lookup on channel-planar data (3, P) float32; returns a new (3, P) array."""
    n = lut.size
    x = (planes - lut.domain_min[:, None]) * ((n - 1) / (lut.domain_max - lut.domain_min))[:, None]
    np.clip(x, 0.0, n - 1, out=x)
    i0 = x.astype(np.int32)
    np.minimum(i0, n - 2, out=i0)
    x -= i0
    fr, fg, fb = x
    idx = i0[0] * (n * n)
    idx += i0[1] * n
    idx += i0[2]
    gr, gg, gb = 1.0 - fr, 1.0 - fg, 1.0 - fb
    a, b, c, d = gr * gg, gr * fg, fr * gg, fr * fg
    weights = (a * gb, a * fb, b * gb, b * fb, c * gb, c * fb, d * gb, d * fb)
    offsets = (0, 1, n, n + 1, n * n, n * n + 1, n * n + n, n * n + n + 1)
    ids = [idx] + [idx + o for o in offsets[1:]]
    out = np.empty_like(planes, dtype=np.float32)
    tmp = np.empty(planes.shape[1], np.float32)
    for ch, table in enumerate(lut.planes()):
        acc = out[ch]
        np.take(table, ids[0], out=acc, mode="clip")
        acc *= weights[0]
        for k in range(1, 8):
            np.take(table, ids[k], out=tmp, mode="clip")
            tmp *= weights[k]
            acc += tmp
    if strength != 1.0:
        out -= planes
        out *= np.float32(strength)
        out += planes
    return out


def apply_lut(img: np.ndarray, lut: Lut3D | np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Grade a float image (H, W, 3) in the LUT's domain with trilinear interpolation; ``strength``
    blends between the input (0) and the fully graded image (1). Returns float32 (H, W, 3)."""
    if not isinstance(lut, Lut3D):
        lut = Lut3D(np.asarray(lut))
    x = np.asarray(img, dtype=np.float32)
    planes = np.ascontiguousarray(x.reshape(-1, 3).T)
    return np.ascontiguousarray(apply_lut_planar(planes, lut, strength).T).reshape(x.shape)
