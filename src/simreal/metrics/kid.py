"""Kernel Inception Distance as torch-fidelity computes it: cubic polynomial kernel
k(x, y) = (γ xᵀy + c₀)^d with γ = 1/D, unbiased MMD² over seeded random subsets (without
replacement); returns the mean and the (ddof 0) standard deviation over subsets."""

from __future__ import annotations

import numpy as np

from simreal.errors import DatasetError


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """(γ·X Yᵀ + c₀)^degree with γ = 1/D by default."""
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (g * (x @ y.T) + coef0) ** degree


def mmd2(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray, estimator: str = "unbiased") -> float:
    """MMD² from kernel matrices. ``unbiased``: off-diagonal means of K_XX and K_YY, minus twice the
    full mean of K_XY (its diagonal kept); ``u-statistic`` drops tr(K_XY); ``biased`` uses all terms."""
    m = k_xx.shape[0]
    if estimator == "biased":
        return float((k_xx.sum() + k_yy.sum()) / (m * m) - 2 * k_xy.sum() / (m * m))
    kt_xx = k_xx.sum() - np.trace(k_xx)
    kt_yy = k_yy.sum() - np.trace(k_yy)
    value = (kt_xx + kt_yy) / (m * (m - 1))
    if estimator == "unbiased":
        value -= 2 * k_xy.sum() / (m * m)
    elif estimator == "u-statistic":
        value -= 2 * (k_xy.sum() - np.trace(k_xy)) / (m * (m - 1))
    else:
        raise ValueError(f"unknown estimator {estimator!r}")
    return float(value)


def kid_from_features(
    feats1: np.ndarray,
    feats2: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    estimator: str = "unbiased",
    allow_small: bool = False,
) -> tuple[float, float]:
    """KID mean and std over ``subsets`` subsets of ``subset_size`` rows from each set.

    Sets smaller than ``subset_size`` raise DatasetError unless ``allow_small``, which shrinks the
    subset size to the smaller set (as clean-fid does)."""
    f1 = np.asarray(feats1, dtype=np.float64)
    f2 = np.asarray(feats2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise DatasetError(f"KID needs two (N, D) feature arrays of equal D, got {f1.shape} and {f2.shape}")
    n1, n2 = len(f1), len(f2)
    m = subset_size
    if min(n1, n2) < m:
        if not allow_small:
            raise DatasetError(
                f"KID subset size is {m} but the sets have {n1} and {n2} images "
                "(use a smaller --subset-size or --allow-small)"
            )
        m = min(n1, n2)
    if m < 2:
        raise DatasetError("KID needs at least 2 images per set")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        x = f1[rng.choice(n1, m, replace=False)]
        y = f2[rng.choice(n2, m, replace=False)]
        k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
        k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
        k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
        values[i] = mmd2(k_xx, k_xy, k_yy, estimator)
    return float(values.mean()), float(values.std())
