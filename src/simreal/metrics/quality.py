"""Image-quality figures between an image and its reference: PSNR and SSIM (Wang et al. 2004, Gaussian
window sigma 1.5, K1 0.01, K2 0.03; the convention of ``skimage.metrics.structural_similarity`` with
``gaussian_weights=True, use_sample_covariance=False``: the SSIM map's mean away from the borders)."""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical images)."""
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, sigma: float = 1.5) -> float:
    """Mean structural similarity of two HxW (or CxHxW, averaged over channels) images."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ ({a.shape} vs {b.shape})")
    if a.ndim == 3:
        return float(np.mean([ssim(a[c], b[c], data_range, sigma) for c in range(a.shape[0])]))
    truncate = 3.5
    pad = int(truncate * sigma + 0.5)

    def blur(v: np.ndarray) -> np.ndarray:
        return gaussian_filter(v, sigma, mode="reflect", truncate=truncate)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ma, mb = blur(a), blur(b)
    va = blur(a * a) - ma * ma
    vb = blur(b * b) - mb * mb
    cov = blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    inner = s[pad:s.shape[0] - pad, pad:s.shape[1] - pad]
    return float(inner.mean() if inner.size else s.mean())


def quality_summary(images: np.ndarray, references: np.ndarray, data_range: float = 1.0) -> dict[str, float]:
    """Mean (and deviation) PSNR and SSIM over pairs of (N, C, H, W) arrays; PSNR of identical pairs is
    capped at 100 dB for the mean."""
    p = np.array([min(psnr(x, r, data_range), 100.0) for x, r in zip(images, references, strict=True)])
    s = np.array([ssim(x, r, data_range) for x, r in zip(images, references, strict=True)])
    return {"psnr_db": float(p.mean()), "psnr_db_std": float(p.std()), "ssim": float(s.mean()),
            "ssim_std": float(s.std()), "images": int(len(p))}
