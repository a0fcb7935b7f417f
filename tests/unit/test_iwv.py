"""Importance-weighted validation (Sugiyama et al. 2007) on a 1-D covariate shift with a known density ratio.

Source x ~ N(0, 1), target x ~ N(1, 1): p_t(x) / p_s(x) = exp(x - 1/2). A logistic regression on x is
well specified for this pair, so the fitted weights should match the analytic ratio, and the weighted
source loss should estimate the target loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from simreal.adapt.selection import importance_weights, iwv_score, selection_score
from simreal.datasets.torchdata import ArraySource

N = 3000


def _samples(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (N, 1)), rng.normal(1.0, 1.0, (N, 1))


def test_weights_match_analytic_density_ratio() -> None:
    xs, xt = _samples()
    w = importance_weights(xs, xt)
    true = np.exp(xs[:, 0] - 0.5)
    central = np.abs(xs[:, 0]) < 2.0
    rel = np.abs(w[central] - true[central]) / true[central]
    assert np.median(rel) < 0.08 and rel.max() < 0.3
    assert np.mean(w) == pytest.approx(1.0, abs=0.1)  # E_s[p_t/p_s] = 1
    assert w.max() <= 20.0  # clipped


def test_weighted_loss_estimates_target_loss() -> None:
    xs, xt = _samples(1)
    w = importance_weights(xs, xt)
    loss = lambda x: x[:, 0] ** 2 + x[:, 0] + 1.0  # noqa: E731 - E_s = 2, E_t = 4
    true_target = 4.0
    weighted = float(np.sum(w * loss(xs)) / np.sum(w))
    unweighted = float(np.mean(loss(xs)))
    assert abs(weighted - true_target) < 0.3 < abs(unweighted - true_target)
    assert float(np.mean(loss(xt))) == pytest.approx(true_target, abs=0.2)


class _LossModel(nn.Module):
    """A 'model' whose per-sample validation loss is a fixed function of x."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x[:, 0]
        return v**2 + v + 1.0 if self.kind == "a" else torch.full_like(v, 3.0)


class _LossTask:
    """Task double: features = x, per-sample loss = the model's; quality = minus the mean loss."""

    @torch.no_grad()
    def predict(self, model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
        return {"feat": x.numpy(), "loss": model(x).numpy()}

    def sample_losses(self, preds: list[dict[str, Any]], targets: list[Any]) -> np.ndarray:
        return np.concatenate([p["loss"] for p in preds])

    def quality(self, preds: list[dict[str, Any]], targets: list[Any]) -> float:
        return -float(np.mean(self.sample_losses(preds, targets)))


def test_iwv_selects_the_model_better_on_target() -> None:
    """Model a: source loss 2, target loss 4; model b: 3 everywhere. Source validation picks a, IWV picks b."""
    xs, xt = _samples(2)
    val = ArraySource("val", 0, torch.from_numpy(xs).float(), [0] * N)
    tgt = ArraySource("target", 1, torch.from_numpy(xt).float(), None, labelled=False)
    task = _LossTask()
    a, b = _LossModel("a"), _LossModel("b")
    src_a, src_b = (selection_score("source_val", task, m, val, None, None) for m in (a, b))
    iwv_a, iwv_b = iwv_score(task, a, val, tgt), iwv_score(task, b, val, tgt)
    assert src_a > src_b  # unweighted source validation prefers a (loss 2 < 3)
    assert iwv_b > iwv_a  # importance weighting sees a's target loss (about 4 > 3)
    assert -iwv_a == pytest.approx(4.0, abs=0.3) and -iwv_b == pytest.approx(3.0)
