"""Identity-balanced P x K batches (Hermans et al. 2017) for the batch-hard triplet loss.

:class:`PKSource` wraps a domain source; :func:`simreal.datasets.torchdata.balanced_batch` calls its
``draw(rng, n)``: P = n // K identities (without replacement when there are enough), K images each
(without replacement when the identity has enough), the rest of the batch uniformly at random. The
generator is the trainer's per-(step, domain) one, so batches stay a pure function of (seed, step).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from simreal.datasets.torchdata import DomainSource


def pk_indices(groups: dict[int, np.ndarray], rng: np.random.Generator, n: int, k: int, size: int) -> np.ndarray:
    """``n`` indices: P = max(1, n // k) groups of ``k`` members each, topped up uniformly from ``range(size)``."""
    keys = np.array(sorted(groups), dtype=np.int64)
    p = max(1, n // k)
    chosen = rng.choice(keys, size=p, replace=len(keys) < p)
    parts = [rng.choice(groups[int(g)], size=k, replace=len(groups[int(g)]) < k) for g in chosen]
    idx = np.concatenate(parts)
    if len(idx) < n:
        idx = np.concatenate([idx, rng.integers(0, size, size=n - len(idx))])
    return idx[:n]


class PKSource(DomainSource):
    """A source drawn in P x K identity groups; ``groups[i]`` is sample i's identity (< 0: never grouped)."""

    def __init__(self, base: DomainSource, groups: Sequence[int], k: int) -> None:
        if len(groups) != len(base):
            raise ValueError("one group per sample expected")
        self.base, self.k = base, int(k)
        self.name, self.domain_id, self.labelled = base.name, base.domain_id, base.labelled
        g = np.asarray(groups, dtype=np.int64)
        self.groups = {int(v): np.flatnonzero(g == v) for v in np.unique(g[g >= 0])}
        if not self.groups:
            raise ValueError(f"{base.name}: no identities to form P x K batches")

    def __len__(self) -> int:
        return len(self.base)

    def get(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[Any]]:
        return self.base.get(indices)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return pk_indices(self.groups, rng, n, self.k, len(self))
