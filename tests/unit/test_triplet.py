"""Batch-hard triplet loss against a brute-force computation; P x K sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from simreal.datasets.pk_sampler import pk_indices
from simreal.nn.reid import batch_hard_triplet


def brute_force(feat: np.ndarray, labels: np.ndarray, margin: float) -> tuple[float, list[float | None]]:
    """Loop over anchors: hardest positive (largest distance) and hardest negative (smallest distance)."""
    per: list[float | None] = []
    for a in range(len(feat)):
        dp = [np.linalg.norm(feat[a] - feat[p]) for p in range(len(feat)) if p != a and labels[p] == labels[a]]
        dn = [np.linalg.norm(feat[a] - feat[n]) for n in range(len(feat)) if labels[n] != labels[a]]
        per.append(max(0.0, margin + max(dp) - min(dn)) if dp and dn else None)
    vals = [v for v in per if v is not None]
    return float(np.mean(vals)), per


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_hard_triplet_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3])  # identity 3 has no positive: left out
    feat = rng.normal(size=(len(labels), 5))
    want, per_want = brute_force(feat, labels, 0.5)
    got = batch_hard_triplet(torch.from_numpy(feat), torch.from_numpy(labels), margin=0.5)
    assert float(got) == pytest.approx(want, rel=1e-6)
    per = batch_hard_triplet(torch.from_numpy(feat), torch.from_numpy(labels), 0.5, reduction="none").numpy()
    for g, w in zip(per, per_want, strict=True):
        assert (np.isnan(g) and w is None) or g == pytest.approx(w, rel=1e-6)


def test_triplet_equals_max_over_all_triplets() -> None:
    """Per anchor, batch-hard = the largest hinge over all (positive, negative) pairs."""
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(3), 3)
    feat = rng.normal(size=(9, 4))
    per = batch_hard_triplet(torch.from_numpy(feat), torch.from_numpy(labels), 1.0, reduction="none").numpy()
    for a in range(9):
        pos = [p for p in range(9) if p != a and labels[p] == labels[a]]
        neg = [n for n in range(9) if labels[n] != labels[a]]
        worst = max(max(0.0, 1.0 + np.linalg.norm(feat[a] - feat[p]) - np.linalg.norm(feat[a] - feat[n]))
                    for p, n in itertools.product(pos, neg))
        assert per[a] == pytest.approx(worst, rel=1e-6)


def test_triplet_gradient_and_degenerate_batches() -> None:
    feat = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.autograd.gradcheck(lambda f: batch_hard_triplet(f, labels, 5.0), (feat,))
    loss = batch_hard_triplet(feat, torch.arange(6), 0.3)  # no positives anywhere
    assert float(loss.detach()) == 0.0
    loss.backward()
    far = torch.tensor([[0.0, 0.0], [0.0, 0.1], [10.0, 0.0], [10.0, 0.1]])
    assert float(batch_hard_triplet(far, torch.tensor([0, 0, 1, 1]), 0.3)) == 0.0  # well separated: no loss


def test_pk_indices_are_identity_balanced() -> None:
    groups = {g: np.arange(g * 5, g * 5 + 5) for g in range(6)}  # 6 identities x 5 images
    rng = np.random.default_rng(0)
    idx = pk_indices(groups, rng, 16, 4, 30)
    assert len(idx) == 16
    ids = idx // 5
    assert sorted(np.bincount(ids, minlength=6)[np.bincount(ids, minlength=6) > 0].tolist()) == [4, 4, 4, 4]
    for j in range(4):
        assert len(set(ids[4 * j:4 * j + 4].tolist())) == 1 and len(set(idx[4 * j:4 * j + 4].tolist())) == 4
    again = pk_indices(groups, np.random.default_rng(0), 16, 4, 30)
    assert (again == idx).all()  # a pure function of the generator
    few = pk_indices({0: np.array([3]), 1: np.array([7, 8])}, rng, 10, 4, 12)
    assert len(few) == 10 and set(few[:8].tolist()) <= {3, 7, 8}  # too few images: drawn with replacement
