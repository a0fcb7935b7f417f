"""Model selection without target labels (by default).

* ``last``: the final model.
* ``source_val``: task quality on labelled *source* validation data.
* ``iwv``: importance-weighted validation (Sugiyama et al. 2007): source-validation losses weighted by
  p(target|x)/p(source|x) from a logistic-regression domain classifier on the model's features,
  fitted on source-validation vs unlabelled target features. Higher score = lower weighted loss.
* ``snd``: soft neighbourhood density (Saito et al., ICCV 2021) of the unlabelled target predictions:
  the mean entropy of each target sample's softmax-weighted similarity to the other target samples
  (cosine of the class-probability vectors, temperature 0.05). It looks at the target side only, so it
  can credit what adaptation changed there (e.g. BatchNorm statistics), which source-side scores cannot.
  Higher = denser target neighbourhoods. Tasks whose predictions carry class probabilities (classify).
* ``im``: information maximisation of the unlabelled target predictions, H(mean p) - mean H(p) (the
  objective of Krause et al. 2010 and SHOT, Liang et al. 2020): high when each target prediction is
  confident *and* the predictions spread over the classes, so a model that collapses onto a few classes
  scores low. Target side only, classify.
* ``target_val``: task quality on labelled target data. Oracle selection: only when the config sets
  ``selection.allow_target_labels: true``; reports say so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from simreal.datasets.torchdata import DomainSource, iterate

HONEST = ("last", "source_val", "iwv", "snd", "im")
SND_TEMPERATURE = 0.05


def predict_all(task: Any, model: torch.nn.Module, source: DomainSource, batch_size: int = 256) -> list[dict[str, Any]]:
    """Task predictions for every sample of ``source`` on the model's device (model in eval mode, restored
    afterwards)."""
    was = model.training
    model.eval()
    dev = next(iter([*model.parameters(), *model.buffers()]), torch.zeros(())).device
    preds = [task.predict(model, x.to(dev, non_blocking=True)) for x, _ in iterate(source, batch_size)]
    model.train(was)
    return preds


def all_targets(source: DomainSource) -> list[Any]:
    return source.get(list(range(len(source))))[1]


def importance_weights(feat_src: np.ndarray, feat_tgt: np.ndarray, clip: float = 20.0) -> np.ndarray:
    """w(x) = p(target|x)/p(source|x) * n_s/n_t for source samples, from a logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([feat_src, feat_tgt])
    y = np.concatenate([np.zeros(len(feat_src)), np.ones(len(feat_tgt))])
    sc = StandardScaler().fit(x)
    clf = LogisticRegression(C=1.0, max_iter=500).fit(sc.transform(x), y)
    p = np.clip(clf.predict_proba(sc.transform(feat_src))[:, 1], 1e-6, 1 - 1e-6)
    w = p / (1 - p) * (len(feat_src) / max(len(feat_tgt), 1))
    return np.clip(w, 0.0, clip)


def iwv_score(task: Any, model: torch.nn.Module, val: DomainSource, target: DomainSource) -> float:
    """Negative importance-weighted source-validation loss (higher is better)."""
    pv = predict_all(task, model, val)
    pt = predict_all(task, model, target)
    fv = np.concatenate([p["feat"] for p in pv])
    ft = np.concatenate([p["feat"] for p in pt])
    w = importance_weights(fv, ft)
    losses = task.sample_losses(pv, all_targets(val))
    return -float(np.sum(w * losses) / max(np.sum(w), 1e-12))


def soft_neighborhood_density(prob: np.ndarray, temperature: float = SND_TEMPERATURE) -> float:
    """SND of class-probability rows ``prob`` (N, K), N >= 2: rows L2-normalised, cosine similarities to the
    other rows (self excluded) divided by ``temperature`` and soft-maxed per row; the mean row entropy."""
    p = np.asarray(prob, np.float64)
    if p.ndim != 2 or len(p) < 2:
        raise ValueError(f"soft neighbourhood density: need (N >= 2, K) probabilities, got shape {p.shape}")
    p = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    s = p @ p.T / temperature
    np.fill_diagonal(s, -np.inf)
    s -= s.max(axis=1, keepdims=True)
    m = np.exp(s)
    m /= m.sum(axis=1, keepdims=True)
    return float(_entropy(m).mean())


def _entropy(p: np.ndarray) -> np.ndarray:
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def information_maximization(prob: np.ndarray) -> float:
    """H(mean prediction) - mean H(prediction) of class-probability rows ``prob`` (N, K), in nats."""
    p = np.asarray(prob, np.float64)
    if p.ndim != 2 or len(p) < 1:
        raise ValueError(f"information maximisation: need (N, K) probabilities, got shape {p.shape}")
    p = p / p.sum(axis=1, keepdims=True)
    return float(_entropy(p.mean(axis=0)) - _entropy(p).mean())


def target_probabilities(task: Any, model: torch.nn.Module, target: DomainSource) -> np.ndarray:
    """The model's class probabilities (N, K) on every sample of the unlabelled target."""
    return np.concatenate([p["prob"] for p in predict_all(task, model, target)])


def selection_score(
    policy: str, task: Any, model: torch.nn.Module, val: DomainSource | None, target: DomainSource | None,
    target_val: DomainSource | None,
) -> float | None:
    """Score of the current model under ``policy`` (None when the policy needs no evaluation)."""
    if policy == "last":
        return None
    if policy == "source_val":
        assert val is not None
        return float(task.quality(predict_all(task, model, val), all_targets(val)))
    if policy == "iwv":
        assert val is not None and target is not None
        return iwv_score(task, model, val, target)
    if policy == "snd":
        assert target is not None
        return soft_neighborhood_density(target_probabilities(task, model, target))
    if policy == "im":
        assert target is not None
        return information_maximization(target_probabilities(task, model, target))
    if policy == "target_val":
        assert target_val is not None
        return float(task.quality(predict_all(task, model, target_val), all_targets(target_val)))
    raise ValueError(policy)
