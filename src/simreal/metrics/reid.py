"""Re-identification metrics: CMC (Market-1501 protocol; CUHK03 single-shot protocol with repeats) and
mAP (non-interpolated mean of precision at each hit, as torchreid).

Rules (torchreid ``eval_market1501``): gallery items with the query's id AND camera are removed; a
query with no remaining match is skipped; CMC and mAP are averaged over the remaining queries.
Distances are sorted with a stable sort (ties broken by gallery order).
"""

from __future__ import annotations

import numpy as np

from simreal.errors import SimrealError


def _ranked(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_cams: np.ndarray,
            g_cams: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(distmat[i], kind="stable")
    keep = ~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i]))
    return (g_pids[order] == q_pids[i])[keep].astype(np.int64), order[keep]


def evaluate_reid(
    distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_cams: np.ndarray, g_cams: np.ndarray,
    max_rank: int = 50, protocol: str = "market1501", repeats: int = 10, seed: int = 0,
) -> dict[str, object]:
    """CMC (array of length ``max_rank``, padded with its last value) and mAP over valid queries.

    ``protocol="cuhk03"``: each query's CMC is averaged over ``repeats`` random single-shot galleries
    (one sample per gallery id, seeded); AP is computed on the full filtered gallery.
    """
    distmat = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids, q_cams, g_cams = (np.asarray(a) for a in (q_pids, g_pids, q_cams, g_cams))
    rng = np.random.default_rng(seed)
    cmcs, aps = [], []
    for i in range(distmat.shape[0]):
        hits, order = _ranked(distmat, q_pids, g_pids, q_cams, g_cams, i)
        if not hits.any():
            continue
        if protocol == "cuhk03":
            kept_pids = g_pids[order]
            cmc = np.zeros(max_rank)
            for _ in range(repeats):
                mask = np.zeros(len(hits), dtype=bool)
                for pid in np.unique(kept_pids):
                    mask[rng.choice(np.flatnonzero(kept_pids == pid))] = True
                c = np.minimum(np.cumsum(hits[mask]), 1)
                cmc += _pad(c, max_rank)
            cmc /= repeats
        elif protocol == "market1501":
            cmc = _pad(np.minimum(np.cumsum(hits), 1), max_rank)
        else:
            raise SimrealError(f"reid protocol: unknown {protocol!r} (expected market1501 or cuhk03)")
        cmcs.append(cmc)
        cum = np.cumsum(hits)
        pos = np.flatnonzero(hits)
        aps.append(float(np.mean(cum[pos] / (pos + 1))))
    if not cmcs:
        raise SimrealError("reid evaluation: no query has a match in the gallery (after removing same-camera matches)")
    cmc_mean = np.mean(cmcs, axis=0)
    return {"cmc": cmc_mean, "mAP": float(np.mean(aps)), "num_valid_queries": len(cmcs),
            **{f"rank{r}": float(cmc_mean[r - 1]) for r in (1, 5, 10, 20) if r <= max_rank}}


def _pad(c: np.ndarray, n: int) -> np.ndarray:
    c = c.astype(np.float64)[:n]
    if len(c) < n:
        c = np.concatenate([c, np.full(n - len(c), c[-1] if len(c) else 0.0)])
    return c
