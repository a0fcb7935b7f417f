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



@torch.no_grad()
def inception_features(extractor: nn.Module, batches: Iterable[Tensor]) -> np.ndarray:
    """Features (N, D) of an image extractor taking (B, 3, H, W) in [0, 1] (the FID Inception) over refiner
    batches in [-1, 1] (one channel is repeated to three)."""
    out = []
    for x in batches:
        y = ((x.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        y = y.expand(-1, 3, -1, -1) if y.shape[1] == 1 else y
        out.append(extractor(y).reshape(len(y), -1).double().cpu().numpy())
    return np.concatenate(out, 0)


class CheckpointScorer:
    """FID/KID of a refiner's output on fixed source samples against fixed real samples, for each checkpoint of
    a training run, in the task model's feature space (``task_fid``, ``task_kid``; ``model`` None: off) and, with
    an ``inception`` extractor (the FID Inception), in Inception's (``inception_fid``, ``inception_kid``). The
    real features are computed once; ``baseline`` holds the scores of the unrefined source samples."""

    def __init__(self, model: nn.Module | None, to_input: Callable[[Tensor], Tensor] | None, source: Tensor,
                 real: Tensor, batch: int = 16, inception: nn.Module | None = None) -> None:
        self.source, self.batch = source, batch
        self.spaces: dict[str, Callable[[Iterable[Tensor]], np.ndarray]] = {}
        if model is not None:
            self.spaces["task"] = lambda batches: task_features(model, batches, to_input)
        if inception is not None:
            self.spaces["inception"] = lambda batches: inception_features(inception, batches)
        if not self.spaces:
            raise ValueError("CheckpointScorer needs a task model or an inception extractor")
        self.real_features = {k: f(real.split(batch)) for k, f in self.spaces.items()}
        self.baseline = self._scores(lambda x: x)

    def _scores(self, refine: Callable[[Tensor], Tensor]) -> dict[str, float]:
        out: dict[str, float] = {}
        refined = [refine(x) for x in self.source.split(self.batch)]  # once, whatever the number of spaces
        for name, features in self.spaces.items():
            feats = features(refined)
            scores = task_scores(feats, self.real_features[name])
            out.update({f"{name}_fid": scores["task_fid"], f"{name}_kid": scores["task_kid"]})
        return out

    @torch.no_grad()
    def __call__(self, refine: Callable[[Tensor], Tensor]) -> dict[str, float]:
        """Scores of ``refine`` (a refiner's eval-mode forward) on the source samples."""
        return self._scores(refine)


def read_task_scores(metrics: Iterable[dict[str, object]]) -> list[dict[str, object]]:
    """The per-checkpoint scores from a refiner run's metrics records (lines with ``task_fid`` or
    ``inception_fid``)."""
    return [m for m in metrics if "task_fid" in m or "inception_fid" in m]


__all__ = ["CheckpointScorer", "inception_features", "read_task_scores", "spearman", "task_features",
           "task_scores"]
