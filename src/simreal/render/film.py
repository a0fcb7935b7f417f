"""From scene-linear radiance to display values: auto-exposure and a filmic tone curve.

Auto-exposure meters the frame the way a camera does: the log-average (geometric mean) luminance
of the linear frame is scaled to a ``key`` (scene-linear mid grey; 0.18 is the classic value), so
no frame comes out black or blown out whatever the lighting's absolute level. The filmic curve is
Krzysztof Narkowicz's fit of the ACES reference rendering transform (with its 0.6 input scale): a
toe that keeps blacks from crushing, a shoulder that rolls highlights off instead of clipping, and
mid grey 0.18 -> 0.14 display-linear (sRGB 0.41). ``clip`` is the old behaviour: linear values
clipped at 1.
"""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_A, _B, _C, _D, _E, _PRE = 2.51, 0.03, 2.43, 0.59, 0.14, 0.6


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of linear RGB (..., 3)."""
    return np.asarray(rgb, np.float32) @ LUMA


def log_average(lum: np.ndarray, weights: np.ndarray | None = None, eps: float = 1e-4) -> float:
    """Geometric mean luminance (``eps`` keeps black pixels finite), optionally weighted."""
    logs = np.log(np.asarray(lum, np.float64) + eps)
    if weights is None:
        return float(np.exp(logs.mean()))
    w = np.asarray(weights, np.float64)
    return float(np.exp((logs * w).sum() / max(w.sum(), 1e-12)))


def exposure_scale(rgb: np.ndarray, key: float, weights: np.ndarray | None = None) -> float:
    """The factor that brings the frame's log-average luminance to ``key``."""
    return float(key / max(log_average(luminance(rgb), weights), 1e-6))


def filmic(x: np.ndarray) -> np.ndarray:
    """Scene-linear (>= 0) to display-linear [0, 1]: the ACES fit (white from about 67x mid grey's
    scene value upwards)."""
    x = np.maximum(np.asarray(x, np.float32), 0.0) * np.float32(_PRE)
    return np.clip((x * (_A * x + _B)) / (x * (_C * x + _D) + _E), 0.0, 1.0)


def filmic_inverse(y: np.ndarray) -> np.ndarray:
    """Display-linear in [0, 1) to the scene-linear value ``filmic`` maps to it."""
    y = np.clip(np.asarray(y, np.float64), 0.0, 0.999)
    # y (C x^2 + D x + E) = A x^2 + B x  ->  (yC - A) x^2 + (yD - B) x + yE = 0, the non-negative root
    a, b, c = y * _C - _A, y * _D - _B, y * _E
    x = (-b - np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / (2 * a)
    return (x / _PRE).astype(np.float32)


def srgb_encode(x: np.ndarray) -> np.ndarray:
    """Display-linear [0, 1] to sRGB-encoded [0, 1]."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] to display-linear."""
    x = np.asarray(x, np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def develop(rgb: np.ndarray, curve: str = "filmic") -> np.ndarray:
    """Exposed scene-linear RGB to sRGB-encoded display values in [0, 1] (``filmic`` or ``clip``)."""
    return srgb_encode(filmic(rgb) if curve == "filmic" else rgb)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8, rounding half up."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
