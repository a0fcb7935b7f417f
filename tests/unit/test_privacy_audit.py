"""The audit's attackers are real attackers: high accuracy where the private label is in the images, chance
where the labels were shuffled; Wilson intervals, PSNR/SSIM against reference implementations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simreal.bench.digits_data import render_glyph
from simreal.datasets import DatasetWriter, encode_image
from simreal.privacy.assess import make_auditor
from simreal.privacy.attackers import wilson_interval
from simreal.privacy.fontdigits import FONT_RANDOMIZATION, find_font_families


def _site_dataset(root: Path, per_site: int = 60, size: int = 16) -> Path:
    """Digits (utility) with a faint stripe pattern whose orientation and phase depend on the camera site
    (private, 3 values): images without a split field (the audit draws a stratified split)."""
    font = find_font_families(1)[0].path
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    waves = [np.sin(xx * 1.3), np.sin(yy * 1.3), np.sin((xx + yy) * 0.9)]
    w = DatasetWriter(root, "sites", "synthetic", [{"id": d + 1, "name": str(d)} for d in range(10)])
    records = []
    for i in range(3 * per_site):
        site, digit = i % 3, int(rng.integers(10))
        img = render_glyph(digit, font, rng, FONT_RANDOMIZATION, size, binary=False)
        img = np.clip(0.6 * img + 0.2 * (waves[site] + 1) + rng.normal(0, 0.04, img.shape), 0, 1)
        name = w.write_image(f"{i:04d}.png", encode_image((img * 255).round().astype(np.uint8)))
        records.append({"id": i + 1, "file_name": name, "site": f"site{site}", "digit": digit})
    w.finalize(records, [])
    return root


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _site_dataset(tmp_path_factory.mktemp("sites") / "ds")


def test_attackers_are_real_attackers_and_land_at_chance_on_shuffled_labels(sites: Path) -> None:
    auditor = make_auditor(sites, "site", "digit", {"attackers": ["logistic", "mlp"], "shuffled_control": True,
                                                    "max_epochs": 40, "patience": 6}, device="cpu", progress=False)
    assert auditor.orig.split_source.startswith("stratified")
    assert len(auditor.orig.test) == 45 and len(auditor.orig.train) == 135
    res = auditor.original_results()
    p = res["private"]
    assert p["chance"] == pytest.approx(1 / 3)
    for arch in ("logistic", "mlp"):
        real = p["original"][arch]
        assert real["accuracy"] >= 0.9, (arch, real)  # the signal is there and the attacker finds it
        lo, hi = real["ci"]
        assert lo < real["accuracy"] < hi or real["accuracy"] == 1.0
        shuffled = p["shuffled_control"][arch]
        # trained on shuffled labels, tested on held-out images with their true labels: chance (3 sigma)
        assert abs(shuffled["accuracy"] - 1 / 3) < 3 * np.sqrt(2 / 9 / 45), (arch, shuffled)
        assert real["epochs"][0] >= real["best_epochs"][0] + (6 if real["converged"] else 0)
    # the same images evaluated as "anonymized": identical figures, PSNR capped, SSIM 1
    full = auditor.evaluate(auditor.orig.images.copy())
    assert full["private"]["anonymized"]["logistic"]["accuracy"] == pytest.approx(p["original"]["logistic"]["accuracy"])
    assert full["private"]["clear_trained"]["mlp"]["accuracy"] == pytest.approx(p["original"]["mlp"]["accuracy"])
    assert full["quality"]["all"]["ssim"] == pytest.approx(1.0) and full["quality"]["all"]["psnr_db"] == 100.0
    assert full["private"]["normalized"] == pytest.approx(1.0)
    # images whose site pattern is gone: the attackers fall to chance, the digits stay readable
    scrubbed = auditor.orig.images.copy()  # the stripes removed: each site's mean image moved to the global one
    for s in range(3):
        idx = auditor.orig.labels["private"].index == s
        scrubbed[idx] -= auditor.orig.images[idx].mean(axis=0) - auditor.orig.images.mean(axis=0)
    res2 = auditor.evaluate(np.clip(scrubbed, 0, 1))
    assert res2["private"]["best"]["anonymized"]["accuracy"] < 0.6
    assert res2["utility"]["best"]["anonymized"]["accuracy"] > 0.5


def test_wilson_interval_is_the_score_test_inversion() -> None:
    # the Wilson bounds are the p where the score statistic (p_hat - p)^2 / (p (1 - p) / n) equals z^2:
    # roots of (1 + z^2/n) p^2 - (2 p_hat + z^2/n) p + p_hat^2 = 0
    from scipy.stats import norm

    for correct, n, conf in ((81, 263, 0.95), (3, 40, 0.9), (45, 45, 0.99)):
        z2 = norm.ppf(0.5 + conf / 2) ** 2
        ph = correct / n
        roots = np.sort(np.roots([1 + z2 / n, -(2 * ph + z2 / n), ph * ph]).real)
        assert wilson_interval(correct, n, conf) == pytest.approx(tuple(np.clip(roots, 0, 1)), abs=1e-12)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(20, 20), (3, 24, 30)])
def test_psnr_ssim_agree_with_scikit_image(shape: tuple[int, ...]) -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from simreal.metrics.quality import psnr, ssim

    rng = np.random.default_rng(1)
    a = rng.random(shape)
    b = np.clip(a + 0.1 * rng.standard_normal(shape), 0, 1)
    ref = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, channel_axis=0 if len(shape) == 3 else None)
    assert ssim(a, b) == pytest.approx(ref, rel=1e-9)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), rel=1e-9)
