"""Matching rendered objects to the photo behind them: the noise estimate recovers a known noise level,
matched noise lands only on the objects and at the photo's level, the camera effects stay inside the
rendered region and leave the photo's other pixels bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from simreal.render.plate import estimate_noise, match_noise, post_on_rendered, rendered_region
from simreal.render.post import apply_post


def _smooth_photo(h: int = 128, w: int = 160) -> np.ndarray:
    """A clean image with gradients and edges (no noise of its own)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 0.3 + 0.4 * xx / w
    g = 0.2 + 0.5 * yy / h
    b = np.where((xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (h / 4) ** 2, 0.8, 0.3)
    return np.stack([r, g, b], -1)


@pytest.mark.parametrize("sigma", [0.01, 0.03])
def test_noise_estimate_recovers_the_added_noise(sigma: float) -> None:
    rng = np.random.default_rng(0)
    clean = _smooth_photo()
    noisy = np.clip(clean + rng.normal(0.0, sigma, clean.shape), 0, 1)
    est = estimate_noise((noisy * 255 + 0.5).astype(np.uint8))
    assert est.shape == (3,)
    np.testing.assert_allclose(est, sigma, rtol=0.15)
    assert estimate_noise((clean * 255 + 0.5).astype(np.uint8)).max() < 0.004  # quantisation only


def test_matched_noise_only_on_the_objects_and_at_the_photos_level() -> None:
    img = np.full((96, 96, 3), 128, np.uint8)
    img[..., 2] = 100  # a colour image: noise per channel
    weight = np.zeros((96, 96), np.float32)
    weight[20:80, 30:70] = 1.0
    sigma = np.array([0.02, 0.01, 0.03])
    out = match_noise(img, sigma, weight, seed=5)
    assert np.array_equal(out[weight == 0], img[weight == 0])  # the photo, bit for bit
    inside = out[weight == 1].astype(np.float64) / 255.0
    np.testing.assert_allclose(inside.std(axis=0), sigma, rtol=0.1)
    np.testing.assert_allclose(inside.mean(axis=0), [128 / 255, 128 / 255, 100 / 255], atol=0.002)  # zero mean
    assert np.array_equal(out, match_noise(img, sigma, weight, seed=5))  # reproducible
    assert not np.array_equal(out, match_noise(img, sigma, weight, seed=6))
    grey = match_noise(np.full_like(img, 90), sigma, weight, seed=5)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()  # grey stays grey


def test_rendered_region_is_one_where_drawn_or_shaded_and_fades_to_zero() -> None:
    alpha = np.zeros((40, 40), np.float32)
    alpha[10:14, 10:14] = 0.5
    ratio = np.ones((40, 40, 3), np.float32)
    ratio[30, 30] = 0.9  # a shadowed pixel
    w = rendered_region(alpha, ratio, reach=3.0)
    assert (w[10:14, 10:14] == 1).all() and w[30, 30] == 1
    assert w[10, 14] == pytest.approx(2 / 3) and w[10, 15] == pytest.approx(1 / 3)  # 1 and 2 px away
    assert w[10, 16] == 0 and w[0, 0] == 0 and w[20, 20] == 0
    assert rendered_region(np.zeros((5, 5)), None).max() == 0
    assert rendered_region(alpha, None)[30, 30] == 0  # no catcher: shadows are not drawn


def test_post_stays_inside_the_rendered_region() -> None:
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    params = {"blur": {"sigma": 0.8}, "lut": {"name": "missing", "strength": 1.0},
              "vignette": {"strength": 0.3, "radius": 0.5},
              "grain": {"intensity": 0.02, "size": 1.0, "seed": 3}, "jpeg": {"quality": 60}}
    weight = np.zeros((64, 64), np.float32)
    weight[16:48, 16:48] = 1.0
    weight[16:48, 48] = 0.5
    out = post_on_rendered(photo, params, weight)  # the LUT is never looked up
    assert np.array_equal(out[weight == 0], photo[weight == 0])
    full = apply_post(photo, {**params, "lut": None, "vignette": None})
    assert np.array_equal(out[weight == 1], full[weight == 1])
    half = (photo[16:48, 48].astype(np.float32) + full[16:48, 48]) / 2
    assert np.abs(out[16:48, 48] - half).max() <= 0.5
