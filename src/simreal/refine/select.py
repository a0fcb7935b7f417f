"""Choosing a refiner without target labels: FID/KID between refined and real images in the feature space of
the *task model* (the frozen source model of semantic consistency), and the rank correlation between such a
score and downstream accuracy.

The task model's pooled features (``model(x)[1]``, (B, D)) are what the downstream model sees; a refiner whose
output sits closer to the real set there is expected to train better models (the fisheye thesis found the
negative correlation between FID and detection F1; :func:`spearman` measures it here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from simreal.metrics.fid import fid_from_features
from simreal.metrics.kid import kid_from_features


@torch.no_grad()
def task_features(model: nn.Module, batches: Iterable[Tensor], to_input: Callable[[Tensor], Tensor] | None = None
                  ) -> np.ndarray:
    """Pooled features (N, D) of a task model (``model(x) -> (output, features)``) over image batches;
    ``to_input`` maps each batch to the model's input first (e.g. :class:`~simreal.refine.consistency.TaskInput`)."""
    was = model.training
    model.eval()
    try:
        out = []
        for x in batches:
            x = to_input(x) if to_input is not None else x
            out.append(model(x)[1].reshape(len(x), -1).double().cpu().numpy())
    finally:
        model.train(was)
    return np.concatenate(out, 0)


def task_scores(refined: np.ndarray, real: np.ndarray, kid_subset_size: int = 100, kid_subsets: int = 50,
                seed: int = 0) -> dict[str, float]:
    """``task_fid`` and ``task_kid`` (mean over subsets) between two (N, D) feature arrays. Fewer images than
    feature dimensions are accepted (the covariances are then rank-deficient: a ranking score, not a
    publishable FID)."""
    fid = fid_from_features(refined, real, allow_few_samples=True, method="eigvals")
    kid, _ = kid_from_features(refined, real, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed,
                               allow_small=True)
    return {"task_fid": float(fid), "task_kid": float(kid)}


def spearman(x: Iterable[float], y: Iterable[float]) -> float:
    """Spearman's rank correlation ρ (ties get average ranks); NaN when either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"spearman needs two sequences of equal length >= 2, got {len(a)} and {len(b)}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)



class CheckpointScorer:
    """Task-space FID/KID of a refiner's output on fixed source samples against fixed real samples, for each
    checkpoint of a training run (the real features are computed once)."""

    def __init__(self, model: nn.Module, to_input: Callable[[Tensor], Tensor], source: Tensor, real: Tensor,
                 batch: int = 16) -> None:
        self.model, self.to_input, self.source, self.batch = model, to_input, source, batch
        self.real_features = task_features(model, real.split(batch), to_input)
        self.baseline = task_scores(task_features(model, source.split(batch), to_input), self.real_features)

    @torch.no_grad()
    def __call__(self, refine: Callable[[Tensor], Tensor]) -> dict[str, float]:
        """Scores of ``refine`` (a refiner's eval-mode forward) on the source samples."""
        feats = task_features(self.model, (refine(x) for x in self.source.split(self.batch)), self.to_input)
        return task_scores(feats, self.real_features)


def read_task_scores(metrics: Iterable[dict[str, object]]) -> list[dict[str, object]]:
    """The per-checkpoint task-space scores from a refiner run's metrics records (lines with ``task_fid``)."""
    return [m for m in metrics if "task_fid" in m]


__all__ = ["CheckpointScorer", "read_task_scores", "spearman", "task_features", "task_scores"]
