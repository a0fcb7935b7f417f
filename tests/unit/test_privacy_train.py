"""Anonymizer training: lambda = 0 drives the autoencoder toward identity reconstruction, the privacy term
moves the private classifier's loss toward the random-guessing loss, intertwined mode + substitution
releases training images of the chosen identity only."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import simreal
from simreal.datasets import Dataset
from simreal.privacy.data import load_images
from simreal.privacy.substitute import nearest
from simreal.privacy.write import anonymize_arrays, load_anonymizer

TINY = {"model": {"width": 8, "code_channels": 8, "discriminator_width": 8, "private_width": 8},
        "train": {"batch_size": 32, "log_every": 10, "checkpoint_every": 1000, "sample_every": 1000, "threads": 1}}


def _cfg(**sections: dict) -> dict:
    cfg = json.loads(json.dumps(TINY))
    for key, values in sections.items():
        cfg.setdefault(key, {}).update(values)
    return cfg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("anon") / "digits"
    simreal.anonymize.make_digits(out, per_cell=4, families=3, size=16, seed=3, progress=False)
    return out


SCHEDULE = {"pretrain_steps": 120, "disc_pretrain_steps": 20, "steps": 40, "lr": 3e-3}


def _train(data: Path, out: Path, lam: float) -> Path:
    cfg = _cfg(loss={"lam": lam}, train=SCHEDULE, data={"holdout": None})
    res = simreal.anonymize(data, out, cfg, private_label="font", device="cpu", progress=False)
    assert res.steps == 180 and res.final.is_file()
    return out


@pytest.fixture(scope="module")
def lam0(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tiny, tmp_path_factory.mktemp("lam0") / "run", 0.0)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_lambda_zero_converges_toward_identity(tiny: Path, lam0: Path) -> None:
    recs = _metrics(lam0)
    assert recs[0]["phase"] == 1 and recs[-1]["phase"] == 3
    assert "privacy" not in recs[0] and "privacy" in recs[-1]
    ds = Dataset.open(tiny)
    x = load_images(ds, 1)
    anon = load_anonymizer(lam0, "cpu")
    y = anonymize_arrays(anon.ae, x)
    mse = float(np.mean((y - x) ** 2))
    baseline = float(np.mean((x - x.mean(axis=0)) ** 2))  # the best constant image
    assert mse < 0.4 * baseline, (mse, baseline)
    assert recs[-1]["rec"] < 0.5 * recs[0]["rec"]  # the L1 reconstruction error kept falling
    # the run folder: resolved config, final model, samples and a report with curves
    assert (lam0 / "report.md").is_file() and (lam0 / "curves.png").is_file()
    assert list((lam0 / "samples").glob("*.png"))
    assert json.loads((lam0 / "run.json").read_text())["kind"] == "anonymize"


def test_privacy_term_pulls_the_private_classifier_toward_random_guessing(tiny: Path, lam0: Path,
                                                                          tmp_path: Path) -> None:
    # the same seeds: both runs are identical up to phase 3, where only lambda differs
    lam5 = _train(tiny, tmp_path / "lam5", 5.0)
    a, b = _metrics(lam0), _metrics(lam5)
    split = next(i for i, r in enumerate(a) if r["phase"] == 3)
    assert a[split - 1] == {**b[split - 1], "steps_per_s": a[split - 1]["steps_per_s"]}
    privacy0 = np.mean([r["privacy"] for r in a[split:]])
    privacy5 = np.mean([r["privacy"] for r in b[split:]])
    assert privacy5 < 0.7 * privacy0, (privacy0, privacy5)


def test_nearest_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    q, pool = rng.random((50, 1, 5, 5)), rng.random((17, 1, 5, 5))
    brute = ((q.reshape(50, 1, -1) - pool.reshape(1, 17, -1)) ** 2).sum(-1).argmin(1)
    assert np.array_equal(nearest(q, pool, chunk=7), brute)


def test_intertwined_substitution_releases_only_training_images_of_the_chosen_identity(
        tiny: Path, tmp_path: Path) -> None:
    cfg = _cfg(loss={"lam": 1.0}, train={"pretrain_steps": 40, "disc_pretrain_steps": 10, "steps": 20},
               intertwined={"enabled": True, "identity": "DejaVu Serif", "substitute": True})
    simreal.anonymize(tiny, tmp_path / "run", cfg, private_label="font", device="cpu", progress=False)
    out = simreal.anonymize.apply(tmp_path / "run", tiny, tmp_path / "released", device="cpu", progress=False)
    ds, rel = Dataset.open(tiny), Dataset.open(out.out)
    by_id = {r["id"]: r for r in ds.images}
    pool_ids = {r["id"] for r in ds.images if r["font"] == "DejaVu Serif" and r["split"] == "train"}
    assert len(rel) == len(ds) and all("font" not in r for r in rel.images)
    chosen = [r["substituted_by"] for r in rel.images]
    assert set(chosen) <= pool_ids and len(set(chosen)) > 1
    for r in rel.images:  # each released image is, pixel for pixel, the training image it names
        assert np.array_equal(rel.load_image(r, "L"), ds.load_image(by_id[r["substituted_by"]], "L"))
    info = json.loads((out.out / "dataset.json").read_text())
    assert info["domain"] == "anonymized" and info["provenance"]["substituted"] is True
    assert info["provenance"]["intertwined_identity"] == "DejaVu Serif"
    counts = Counter(chosen)
    assert info["provenance"]["substitution"] == {
        "pool_images": len(pool_ids), "used": len(counts),
        "largest_share": round(max(counts.values()) / len(chosen), 4),
        "collapsed": max(counts.values()) / len(chosen) > 0.5}
    # without substitution the same run releases the autoencoder's own outputs
    raw = simreal.anonymize.apply(tmp_path / "run", tiny, tmp_path / "raw", substitute_identity=False,
                                  keep_private=True, device="cpu", progress=False)
    raw_ds = Dataset.open(raw.out)
    assert all("substituted_by" not in r and "font" in r for r in raw_ds.images)


def test_a_collapsed_substitution_is_flagged() -> None:
    """Outputs that all land on one pool image (the autoencoder converged to one face) are a degenerate
    release: flagged, and distinct outputs are not."""
    from simreal.privacy.substitute import Pool, substitute, substitution_summary

    pool = Pool(np.stack([np.full((1, 4, 4), v, np.float32) for v in (0.1, 0.5, 0.9)]), [11, 12, 13], "x")
    same = np.full((10, 1, 4, 4), 0.52, np.float32)
    assert substitution_summary(substitute(same, pool)[1], pool) == {
        "pool_images": 3, "used": 1, "largest_share": 1.0, "collapsed": True}
    spread = np.stack([np.full((1, 4, 4), v, np.float32) for v in (0.0, 0.2, 0.45, 0.6, 0.95, 1.0)])
    assert substitution_summary(substitute(spread, pool)[1], pool) == {
        "pool_images": 3, "used": 3, "largest_share": round(2 / 6, 4), "collapsed": False}
