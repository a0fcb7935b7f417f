"""Fréchet Inception Distance with pytorch-fid's formula (``calculate_frechet_distance``) and
torch-fidelity's eigenvalue route for the trace of the matrix square root."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from simreal.errors import DatasetError


def feature_stats(
    feats: np.ndarray, allow_few_samples: bool = False, what: str = "feature set"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``np.cov(rowvar=False)``, float64) of an (N, D) feature array.

    A full-rank D×D covariance needs N ≥ D + 1 samples; fewer raise DatasetError unless
    ``allow_few_samples`` (the FID is then biased and may need the ε fallback)."""
    acts = np.asarray(feats, dtype=np.float64)
    if acts.ndim != 2:
        raise DatasetError(f"{what}: expected an (N, D) feature array, got shape {acts.shape}")
    n, d = acts.shape
    if n < 2:
        raise DatasetError(f"{what}: need at least 2 images for a covariance, got {n}")
    if n < d + 1 and not allow_few_samples:
        raise DatasetError(
            f"{what}: {n} images for {d}-dimensional features; a full-rank covariance needs at least {d + 1} "
            "(use more images, smaller --dims, or accept a biased estimate with --allow-few-samples)"
        )
    return acts.mean(axis=0), np.cov(acts, rowvar=False)


def _trace_sqrt_product_sqrtm(s1: np.ndarray, s2: np.ndarray, eps: float, atol: float) -> float:
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        warnings.warn(
            f"fid calculation produces singular product; adding {eps} to diagonal of cov estimates",
            RuntimeWarning,
            stacklevel=3,
        )
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=atol):
            m = np.max(np.abs(covmean.imag))
            raise ValueError(f"Imaginary component {m}")
        covmean = covmean.real
    return float(np.trace(covmean))


def _trace_sqrt_product_eig(s1: np.ndarray, s2: np.ndarray) -> float:
    eig = np.linalg.eigvals(s1 @ s2).astype(np.complex128)
    return float(np.sqrt(eig).real.sum())


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
    method: str = "sqrtm",
    imag_atol: float = 1e-3,
) -> float:
    """‖μ₁−μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2·Tr(√(Σ₁Σ₂)).

    ``method="sqrtm"``: scipy ``sqrtm``; if the result is not finite, retry with ``eps`` added to both
    diagonals; a complex result whose diagonal's imaginary part exceeds ``imag_atol`` raises
    ValueError, otherwise its real part is used (pytorch-fid). ``method="eigvals"``: Σ real(√λᵢ) over
    the eigenvalues of Σ₁Σ₂ (torch-fidelity)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors have different lengths {mu1.shape} and {mu2.shape}")
    if sigma1.shape != sigma2.shape:
        raise ValueError(f"covariances have different dimensions {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    if method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps, imag_atol)
    elif method == "eigvals":
        tr_covmean = _trace_sqrt_product_eig(sigma1, sigma2)
    else:
        raise ValueError(f"method must be 'sqrtm' or 'eigvals', got {method!r}")
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def fid_from_features(
    feats1: np.ndarray,
    feats2: np.ndarray,
    allow_few_samples: bool = False,
    method: str = "sqrtm",
    eps: float = 1e-6,
) -> float:
    """FID between two (N, D) feature arrays."""
    f1, f2 = np.asarray(feats1), np.asarray(feats2)
    if f1.ndim == 2 and f2.ndim == 2 and f1.shape[1] != f2.shape[1]:
        raise DatasetError(f"feature sets differ in dimension: {f1.shape[1]} vs {f2.shape[1]}")
    mu1, s1 = feature_stats(f1, allow_few_samples, "first set")
    mu2, s2 = feature_stats(f2, allow_few_samples, "second set")
    return frechet_distance(mu1, s1, mu2, s2, eps=eps, method=method)
