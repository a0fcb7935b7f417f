"""Torch-side views of datasets for training: per-domain data sources and a balanced
multi-domain batch sampler.

A *domain source* knows its domain id and whether its task labels may be used; it returns image
tensors (float, C x H x W, scaled to 0..1) and per-sample targets (``None`` for an unlabelled
sample). Batches draw the same number of samples from every domain; the draw for step ``s`` of
domain ``d`` comes from ``sample_rng(seed, s, stream=d + 1)``, so a resumed run sees the same
batches as an uninterrupted one. A source with an ``augment`` callable (see
:mod:`simreal.datasets.augment`) has its batch augmented with ``sample_rng(seed, s, stream=1000 + d)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from simreal.datasets.augment import AUGMENT_STREAM
from simreal.datasets.imageio import image_mode, resize_image
from simreal.runtime.seeding import sample_rng

TargetFn = Callable[[Any, dict[str, Any], tuple[int, int]], Any]


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 HxW or HxWxC -> float C x H x W scaled to 0..1."""
    t = torch.from_numpy(np.asarray(arr, dtype=np.float32) / 255.0)
    return (t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)).contiguous()


class DomainSource:
    """Base class: ``len()``, ``get(indices) -> (images, targets)``."""

    name: str = "domain"
    domain_id: int = 0
    labelled: bool = True

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def get(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[Any]]:  # pragma: no cover
        raise NotImplementedError


class ArraySource(DomainSource):
    """In-memory images (N, C, H, W) float tensor with optional per-sample targets."""

    def __init__(self, name: str, domain_id: int, images: torch.Tensor, targets: Sequence[Any] | None,
                 labelled: bool = True) -> None:
        self.name, self.domain_id = name, domain_id
        self.images = images
        self.targets = list(targets) if targets is not None else None
        self.labelled = labelled and targets is not None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def get(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[Any]]:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        tg = [self.targets[i] if self.labelled and self.targets is not None else None for i in idx.tolist()]
        return self.images[idx], tg


class FolderSource(DomainSource):
    """Images of a :class:`simreal.datasets.Dataset`, resized to ``size`` (H, W), loaded lazily
    and cached; ``target_fn(dataset, record, size)`` builds the task target of one record."""

    def __init__(self, name: str, domain_id: int, dataset: Any, size: tuple[int, int], channels: int,
                 target_fn: TargetFn | None, labelled: bool = True, indices: Sequence[int] | None = None) -> None:
        self.name, self.domain_id = name, domain_id
        self.dataset, self.size, self.channels = dataset, size, channels
        self.target_fn = target_fn
        self.labelled = labelled and target_fn is not None
        self.indices = list(range(len(dataset))) if indices is None else list(indices)
        self._cache: dict[int, tuple[torch.Tensor, Any]] = {}

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, i: int) -> tuple[torch.Tensor, Any]:
        if i not in self._cache:
            rec = self.dataset.record(self.indices[i])
            arr = self.dataset.load_image(rec, image_mode(self.channels))
            t = to_tensor(resize_image(arr, self.size))
            target = self.target_fn(self.dataset, rec, self.size) if self.labelled and self.target_fn else None
            self._cache[i] = (t, target)
        return self._cache[i]

    def get(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[Any]]:
        items = [self._load(int(i)) for i in indices]
        return torch.stack([a for a, _ in items]), [b for _, b in items]


@dataclass
class Batch:
    """A training batch: images, per-sample targets (None = unlabelled), domain ids, label mask."""

    x: torch.Tensor
    targets: list[Any]
    domain: torch.Tensor
    labelled: torch.Tensor


def balanced_batch(sources: Sequence[DomainSource], step: int, seed: int, per_domain: int) -> Batch:
    """``per_domain`` samples (with replacement) from every source, for training step ``step``."""
    xs, tg, dom, lab = [], [], [], []
    for s in sources:
        rng = sample_rng(seed, step, stream=s.domain_id + 1)
        draw = getattr(s, "draw", None)  # a source may sample its own way (e.g. P x K identity batches)
        idx = draw(rng, per_domain) if draw is not None else rng.integers(0, len(s), size=per_domain)
        x, t = s.get(idx.tolist())
        augment = getattr(s, "augment", None)  # training sources only (set by the trainer's data builder)
        if augment is not None:
            x, t = augment(x, t, sample_rng(seed, step, stream=AUGMENT_STREAM + s.domain_id))
        xs.append(x)
        tg += t
        dom += [s.domain_id] * per_domain
        lab += [t_i is not None for t_i in t]
    return Batch(torch.cat(xs), tg, torch.tensor(dom, dtype=torch.long), torch.tensor(lab, dtype=torch.bool))


def iterate(source: DomainSource, batch_size: int) -> Any:
    """All samples of ``source`` in order, in batches (for evaluation)."""
    for start in range(0, len(source), batch_size):
        yield source.get(list(range(start, min(start + batch_size, len(source)))))
