"""Ranking metrics over an element's frame scores for one (model, label).

Each kept frame stands for ``1 + dups`` sampled frames (near-duplicates removed before scoring), its
weight. With threshold T:

- ``count``: sampled frames scoring at least T (the mtriage ranking, made weight-aware);
- ``max``: the highest frame score;
- ``topk-mean``: the mean of the k highest frame scores (of all frames when there are fewer);
- ``fraction``: the share of the sampled duration scoring at least T.

Ties are broken by the maximum score, then by element id, so an order is always reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from simreal.errors import ConfigError

METRICS = ("count", "max", "topk-mean", "fraction")


def metric(scores: np.ndarray, weights: np.ndarray, by: str, threshold: float, k: int = 5) -> float:
    """One element's value of metric ``by`` (see the module docstring)."""
    s = np.asarray(scores, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if s.size == 0:
        return 0.0
    if by == "count":
        return float(w[s >= threshold].sum())
    if by == "max":
        return float(s.max())
    if by == "topk-mean":
        return float(np.sort(s)[::-1][: max(1, k)].mean())
    if by == "fraction":
        return float(w[s >= threshold].sum() / w.sum())
    raise ConfigError(f"--by: expected one of {', '.join(METRICS)}, got {by!r}")


def frame_series(result: dict[str, Any], model: str, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, scores and weights of an element's frames for ``model``/``label`` (frames without a
    score for it are left out)."""
    t, s, w = [], [], []
    for f in result.get("frames", []):
        sc = f.get("scores", {}).get(model)
        if sc is None or label not in sc:
            continue
        t.append(f["t"])
        s.append(sc[label])
        w.append(1 + int(f.get("dups", 0)))
    return np.asarray(t, dtype=np.float64), np.asarray(s, dtype=np.float64), np.asarray(w, dtype=np.float64)


def default_target(models: dict[str, Any]) -> tuple[str, str]:
    """The first model and its first label that is not ``background``."""
    if not models:
        raise ConfigError("the results hold no model scores (the chain has no Score stage)")
    name = next(iter(models))
    labels = [lab for lab in models[name]["labels"] if lab != "background"] or models[name]["labels"]
    return name, labels[0]


def check_target(models: dict[str, Any], model: str | None, label: str | None) -> tuple[str, str]:
    """``model``/``label`` (defaults filled in), checked against the chain's models."""
    dm, dl = default_target(models)
    model = model or dm
    if model not in models:
        raise ConfigError(f"--model: {model!r} is not in the results (models: {', '.join(models)})")
    labels = models[model]["labels"]
    if label is None:
        label = dl if model == dm else ([x for x in labels if x != "background"] or labels)[0]
    if label not in labels:
        raise ConfigError(f"--label: {label!r} is not a label of model {model!r} ({', '.join(labels)})")
    return model, label


def rank(results: Iterable[dict[str, Any]], model: str, label: str, by: str = "count", threshold: float = 0.5,
         k: int = 5) -> list[dict[str, Any]]:
    """Elements ordered by ``by`` (highest first), each with every metric for reference."""
    if by not in METRICS:
        raise ConfigError(f"--by: expected one of {', '.join(METRICS)}, got {by!r}")
    rows = []
    for r in results:
        t, s, w = frame_series(r, model, label)
        row = {"element": r["element"], "title": r.get("title"), "source": r.get("source"), "kind": r.get("kind"),
               "frames": int(s.size), "duration": r.get("duration")}
        for m in METRICS:
            row[m] = metric(s, w, m, threshold, k)
        row["best_t"] = float(t[int(np.argmax(s))]) if s.size else None
        row["value"] = row[by]
        rows.append(row)
    rows.sort(key=lambda r: (-r["value"], -r["max"], r["element"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def rank_folder(folder: Any, by: str = "count", threshold: float = 0.5, k: int = 5, model: str | None = None,
                label: str | None = None, chain: str | None = None) -> dict[str, Any]:
    """Rank the elements of a triage folder's chain (default: the latest) for a model and label."""
    from pathlib import Path

    from simreal.triage.results import load_elements, resolve_chain

    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold: expected a score in [0, 1], got {threshold}")
    if k < 1:
        raise ConfigError(f"--k: expected a positive integer, got {k}")
    meta = resolve_chain(Path(folder), chain)
    model, label = check_target(meta["models"], model, label)
    rows = rank(load_elements(Path(folder), meta["id"]), model, label, by, threshold, k)
    return {"chain": meta["id"], "model": model, "label": label, "by": by, "threshold": threshold, "k": k,
            "elements": rows}
