"""KID: the unbiased polynomial-kernel MMD² over seeded subsets (torch-fidelity's estimator)."""

from __future__ import annotations

import numpy as np
import pytest

from simreal.errors import DatasetError
from simreal.metrics.kid import kid_from_features, mmd2, polynomial_kernel


def _naive_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], len(x)

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)  # diagonal kept
    return xx + yy - 2 * xy


def test_mmd_matches_the_naive_formula() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.3, 1, size=(7, 5))
    got = mmd2(polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y))
    assert got == pytest.approx(_naive_unbiased(x, y), rel=1e-12)


def test_kid_subsets_follow_the_seeded_draws() -> None:
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(40, 8)), rng.normal(0.5, 1, size=(30, 8))
    mean, std = kid_from_features(f1, f2, subsets=5, subset_size=10, seed=7)
    r = np.random.RandomState(7)
    vals = []
    for _ in range(5):
        x = f1[r.choice(40, 10, replace=False)]
        y = f2[r.choice(30, 10, replace=False)]
        vals.append(_naive_unbiased(x, y))
    assert mean == pytest.approx(np.mean(vals), rel=1e-10)
    assert std == pytest.approx(np.std(vals), rel=1e-8)


def test_kid_is_reproducible_and_seed_dependent() -> None:
    rng = np.random.default_rng(2)
    f1, f2 = rng.normal(size=(60, 8)), rng.normal(0.2, 1, size=(60, 8))
    a = kid_from_features(f1, f2, subsets=10, subset_size=20, seed=3)
    b = kid_from_features(f1, f2, subsets=10, subset_size=20, seed=3)
    c = kid_from_features(f1, f2, subsets=10, subset_size=20, seed=4)
    assert a == b
    assert a != c


def test_kid_near_zero_for_same_distribution_and_positive_for_shift() -> None:
    rng = np.random.default_rng(3)
    f1, f2 = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same, _ = kid_from_features(f1, f2, subsets=20, subset_size=100)
    shifted, _ = kid_from_features(f1, f2 + 1.0, subsets=20, subset_size=100)
    assert abs(same) < 0.02
    assert shifted > 10 * abs(same)


def test_small_sets_need_the_flag() -> None:
    f = np.random.default_rng(4).normal(size=(20, 4))
    with pytest.raises(DatasetError, match="subset size"):
        kid_from_features(f, f, subset_size=1000)
    mean, _ = kid_from_features(f, f + 0.1, subsets=3, subset_size=1000, allow_small=True)
    assert np.isfinite(mean)
