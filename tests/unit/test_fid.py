"""FID: pytorch-fid's formula, closed forms, sqrtm vs eigenvalue routes, sample-count guard."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from simreal.errors import DatasetError
from simreal.metrics.fid import feature_stats, fid_from_features, frechet_distance


def test_fid_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(200, 16))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-6)


def test_mean_shift_gives_exactly_the_squared_distance() -> None:
    # pytorch-fid's unit test (there with d = 2048): equal covariances, mu1 = 0, mu2 = 1 -> d
    d = 256
    sigma = np.cov(np.random.default_rng(0).normal(size=(2 * d, d)), rowvar=False)
    for method in ("sqrtm", "eigvals"):
        assert frechet_distance(np.zeros(d), sigma, np.ones(d), sigma, method=method) == pytest.approx(d, rel=1e-6)


def test_two_gaussians_match_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    d = 6
    a, b = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = float(((mu1 - mu2) ** 2).sum() + (a + b - 2 * np.sqrt(a * b)).sum())
    for method in ("sqrtm", "eigvals"):
        got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method)
        assert got == pytest.approx(expected, rel=1e-10)
    # general (non-diagonal) case: closed form with a shared eigenbasis
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_sample_estimate_approaches_the_population_value() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 1.0, size=(20000, 3))
    y = rng.normal(0.5, 2.0, size=(20000, 3))
    expected = 3 * 0.25 + 3 * (1 + 4 - 2 * 2)
    assert fid_from_features(x, y) == pytest.approx(expected, rel=0.05)


def test_sqrtm_and_eigenvalue_routes_agree() -> None:
    rng = np.random.default_rng(3)
    for _ in range(3):
        f1, f2 = rng.normal(size=(300, 32)), rng.normal(size=(300, 32)) @ rng.normal(size=(32, 32)) * 0.3
        mu1, s1 = feature_stats(f1)
        mu2, s2 = feature_stats(f2)
        a = frechet_distance(mu1, s1, mu2, s2, method="sqrtm")
        b = frechet_distance(mu1, s1, mu2, s2, method="eigvals")
        assert a == pytest.approx(b, rel=1e-6)


def test_stats_are_float64_unbiased_covariance() -> None:
    x = np.random.default_rng(4).normal(size=(50, 4)).astype(np.float32)
    mu, sigma = feature_stats(x)
    assert sigma.dtype == np.float64
    assert np.allclose(sigma, np.cov(x.astype(np.float64), rowvar=False))
    assert np.allclose(mu, x.mean(0))


def test_fewer_samples_than_dimensions_needs_the_flag() -> None:
    x = np.random.default_rng(5).normal(size=(10, 16))
    with pytest.raises(DatasetError, match="allow-few-samples"):
        fid_from_features(x, x + 1)
    assert np.isfinite(fid_from_features(x, x + 1, allow_few_samples=True))


def test_singular_product_uses_the_eps_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = linalg.sqrtm

    def fake_sqrtm(m, *a, **k):
        calls.append(m.copy())
        if len(calls) == 1:
            return np.full_like(m, np.inf)
        return real(m, *a, **k)

    monkeypatch.setattr("simreal.metrics.fid.linalg.sqrtm", fake_sqrtm)
    s = np.eye(3)
    with pytest.warns(RuntimeWarning, match="singular product"):
        v = frechet_distance(np.zeros(3), s, np.zeros(3), s, eps=1e-6)
    assert len(calls) == 2
    assert np.allclose(np.diag(calls[1]), (1 + 1e-6) ** 2)
    assert v == pytest.approx(0.0, abs=1e-5)


def test_large_imaginary_component_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("simreal.metrics.fid.linalg.sqrtm", lambda m, *a, **k: m.astype(complex) + 0.5j)
    with pytest.raises(ValueError, match="Imaginary component"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))
    monkeypatch.setattr("simreal.metrics.fid.linalg.sqrtm", lambda m, *a, **k: m.astype(complex) + 1e-5j)
    assert frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2)) == pytest.approx(0.0)
