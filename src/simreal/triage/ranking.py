"""Ranking metrics over elements' frame scores for one (model, label), vectorised over every element
at once (thousands of videos rank in milliseconds; the CLI, the results and the viewer share this).

Each kept frame stands for ``1 + dups`` sampled frames (near-duplicates removed before scoring), its
weight. With threshold T:

- ``count``: sampled frames scoring at least T (the mtriage ranking, made weight-aware);
- ``max``: the highest frame score;
- ``topk-mean``: the mean of the k highest frame scores (of all frames when there are fewer);
- ``fraction``: the share of the sampled duration scoring at least T.

An element without frames scores 0. Ties are broken by the maximum score, then by element id, so an
order is always reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simreal.errors import ConfigError

METRICS = ("count", "max", "topk-mean", "fraction")


def _check_by(by: str) -> None:
    if by not in METRICS:
        raise ConfigError(f"--by: expected one of {', '.join(METRICS)}, got {by!r}")


@dataclass
class Series:
    """The frames of many elements end to end: element e owns ``[offsets[e], offsets[e + 1])``.
    ``s`` holds one (model, label)'s scores (NaN where a frame has none), ``w`` the frame weights."""

    offsets: np.ndarray
    t: np.ndarray
    s: np.ndarray
    w: np.ndarray
    _sorted: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    def segment(self) -> np.ndarray:
        return np.repeat(np.arange(self.n), np.diff(self.offsets))

    def sorted_desc(self) -> tuple[np.ndarray, np.ndarray]:
        """Scores sorted high to low within each element (NaN dropped), and each element's start in it."""
        if self._sorted is None:
            ok = ~np.isnan(self.s)
            seg = self.segment()[ok]
            vals = self.s[ok]
            order = np.lexsort((-vals, seg))
            starts = np.concatenate([[0], np.cumsum(np.bincount(seg, minlength=self.n))])
            self._sorted = (vals[order], starts)
        return self._sorted

    def element(self, e: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = self.offsets[e], self.offsets[e + 1]
        ok = ~np.isnan(self.s[a:b])
        return self.t[a:b][ok], self.s[a:b][ok], self.w[a:b][ok]


def metrics(series: Series, threshold: float, k: int = 5) -> dict[str, np.ndarray]:
    """Every metric (and ``best``: the index into ``series.t`` of each element's top frame, -1 if none)
    for every element."""
    n = series.n
    ok = ~np.isnan(series.s)
    seg = series.segment()
    pos = ok & (np.nan_to_num(series.s, nan=-1.0) >= threshold)
    count = np.bincount(seg, weights=series.w * pos, minlength=n)
    total = np.bincount(seg, weights=series.w * ok, minlength=n)
    vals, starts = series.sorted_desc()
    lengths = np.diff(starts)
    has = lengths > 0
    mx = np.zeros(n)
    mx[has] = vals[starts[:-1][has]]
    csum = np.concatenate([[0.0], np.cumsum(vals)])
    m = np.minimum(lengths, max(1, k))
    topk = np.where(has, (csum[starts[:-1] + m] - csum[starts[:-1]]) / np.maximum(m, 1), 0.0)
    best = np.full(n, -1)
    filled = np.where(ok, series.s, -np.inf)
    for e in np.flatnonzero(has):  # first frame reaching the maximum
        a, b = series.offsets[e], series.offsets[e + 1]
        best[e] = a + int(np.argmax(filled[a:b]))
    return {"count": count, "max": mx, "topk-mean": topk, "fraction": np.where(total > 0, count / np.maximum(
        total, 1e-12), 0.0), "best": best}


def metric(scores: Sequence[float] | np.ndarray, weights: Sequence[float] | np.ndarray, by: str, threshold: float,
           k: int = 5) -> float:
    """One element's value of metric ``by``."""
    _check_by(by)
    s = np.asarray(scores, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    one = Series(np.array([0, s.size]), np.zeros(s.size), s, w)
    return float(metrics(one, threshold, k)[by][0])


def order(values: dict[str, np.ndarray], by: str, ids: Sequence[str], descending: bool = True) -> list[int]:
    """Element indices sorted by ``by`` (ties: the maximum, then the id)."""
    _check_by(by)
    keys = sorted(range(len(ids)), key=lambda e: ids[e])
    rank_of_id = np.empty(len(ids), dtype=np.int64)
    rank_of_id[keys] = np.arange(len(ids))
    sign = -1.0 if descending else 1.0
    return np.lexsort((rank_of_id, sign * values["max"], sign * values[by])).tolist()


def series_of(results: Iterable[dict[str, Any]], model: str, label: str) -> Series:
    """Flat frame arrays of element results for ``model``/``label``."""
    t, s, w, offsets = [], [], [], [0]
    for r in results:
        for f in r.get("frames", []):
            t.append(f["t"])
            s.append(f.get("scores", {}).get(model, {}).get(label, np.nan))
            w.append(1 + int(f.get("dups", 0)))
        offsets.append(len(t))
    return Series(np.asarray(offsets, dtype=np.int64), np.asarray(t, dtype=np.float64),
                  np.asarray(s, dtype=np.float64), np.asarray(w, dtype=np.float64))


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


def rank(results: Sequence[dict[str, Any]], model: str, label: str, by: str = "count", threshold: float = 0.5,
         k: int = 5) -> list[dict[str, Any]]:
    """Elements ordered by ``by`` (highest first), each with every metric for reference."""
    _check_by(by)
    ser = series_of(results, model, label)
    vals = metrics(ser, threshold, k)
    rows = []
    for pos, e in enumerate(order(vals, by, [r["element"] for r in results]), 1):
        r = results[e]
        row = {"rank": pos, "element": r["element"], "title": r.get("title"), "source": r.get("source"),
               "kind": r.get("kind"), "frames": int(np.sum(~np.isnan(ser.s[ser.offsets[e]:ser.offsets[e + 1]]))),
               "duration": r.get("duration"), **{m: float(vals[m][e]) for m in METRICS}}
        row["best_t"] = float(ser.t[vals["best"][e]]) if vals["best"][e] >= 0 else None
        row["value"] = row[by]
        rows.append(row)
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
