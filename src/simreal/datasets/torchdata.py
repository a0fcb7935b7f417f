"""Torch-side views of datasets for training: per-domain data sources and a balanced
multi-domain batch sampler.

A *domain source* knows its domain id and whether its task labels may be used; it returns image
tensors (float, C x H x W, scaled to 0..1) and per-sample targets (``None`` for an unlabelled
sample). Batches draw the same number of samples from every domain; the draw for step ``s`` of
domain ``d`` comes from ``sample_rng(seed, s, stream=d + 1)``, so a resumed run sees the same
batches as an uninterrupted one. A source with an ``augment`` callable (see
:mod:`simreal.datasets.augment`) has its batch augmented with ``sample_rng(seed, s, stream=1000 + d)``.
In a data-parallel job every rank makes the same global draw (samples and augmentation) and keeps its
contiguous share of it (``shard``), so the union of the ranks' batches is the single-process batch and
each rank sees its share of every domain. :func:`step_loader` makes batches ahead of time in worker
processes (a batch is a pure function of the step, so workers change nothing but speed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from simreal.datasets.augment import AUGMENT_STREAM
from simreal.datasets.imageio import image_mode, resize_image
from simreal.runtime.seeding import sample_rng

TargetFn = Callable[[Any, dict[str, Any], tuple[int, int]], Any]
B = TypeVar("B")


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
                 target_fn: TargetFn | None, labelled: bool = True, indices: Sequence[int] | None = None,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.name, self.domain_id = name, domain_id
        self.transform = transform  # applied to each loaded image before resizing (e.g. a refiner)
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
            if self.transform is not None:
                arr = self.transform(arr)
            t = to_tensor(resize_image(arr, self.size))
            target = self.target_fn(self.dataset, rec, self.size) if self.labelled and self.target_fn else None
            self._cache[i] = (t, target)
        return self._cache[i]

    def get(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[Any]]:
        items = [self._load(int(i)) for i in indices]
        return torch.stack([a for a, _ in items]), [b for _, b in items]


@dataclass
class Batch:
    """A training batch: images, per-sample targets (None = unlabelled), domain ids, label mask.

    ``labelled`` stays on the host (losses select labelled samples with it without a device sync);
    ``targets`` stay on the host too and each task's loss moves what it needs to the output's device."""

    x: torch.Tensor
    targets: list[Any]
    domain: torch.Tensor
    labelled: torch.Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch with images and domain ids on ``device``."""
        return replace(self, x=self.x.to(device, non_blocking=non_blocking),
                       domain=self.domain.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Page-locked images and domain ids (the DataLoader calls this when ``pin_memory`` is on)."""
        return replace(self, x=self.x.pin_memory(), domain=self.domain.pin_memory())


def balanced_batch(sources: Sequence[DomainSource], step: int, seed: int, per_domain: int,
                   shard: tuple[int, int] = (0, 1)) -> Batch:
    """``per_domain`` samples (with replacement) from every source, for training step ``step``.

    ``shard=(rank, world)``: ``per_domain`` is the global count; this rank keeps its contiguous
    ``per_domain / world`` of the draw of every domain (``world`` must divide ``per_domain``)."""
    rank, world = shard
    if per_domain % world:
        raise ValueError(f"per_domain {per_domain} is not divisible by {world} ranks")
    own = per_domain // world
    xs, tg, dom, lab = [], [], [], []
    for s in sources:
        rng = sample_rng(seed, step, stream=s.domain_id + 1)
        draw = getattr(s, "draw", None)  # a source may sample its own way (e.g. P x K identity batches)
        idx = draw(rng, per_domain) if draw is not None else rng.integers(0, len(s), size=per_domain)
        x, t = s.get(idx[rank * own:(rank + 1) * own].tolist())
        augment = getattr(s, "augment", None)  # training sources only (set by the trainer's data builder)
        if augment is not None:  # drawn for the global batch, this rank's rows used
            x, t = augment(x, t, sample_rng(seed, step, stream=AUGMENT_STREAM + s.domain_id), rank * own, per_domain)
        xs.append(x)
        tg += t
        dom += [s.domain_id] * own
        lab += [t_i is not None for t_i in t]
    return Batch(torch.cat(xs), tg, torch.tensor(dom, dtype=torch.long), torch.tensor(lab, dtype=torch.bool))


class _Steps(torch.utils.data.Dataset, Generic[B]):
    def __init__(self, make: Callable[[int], B], start: int, stop: int) -> None:
        self.make, self.start, self.stop = make, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> B:
        return self.make(self.start + i)


def step_loader(make: Callable[[int], B], start: int, stop: int, workers: int = 0,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """Iterate ``make(step)`` for steps ``start..stop-1`` in order; ``workers`` > 0 makes them ahead of time
    in that many worker processes, ``pin_memory`` puts them in page-locked memory for asynchronous copies to
    a GPU (objects with a ``pin_memory()`` method, such as :class:`Batch`, pin themselves)."""
    return torch.utils.data.DataLoader(_Steps(make, start, stop), batch_size=None, shuffle=False,
                                       num_workers=workers, pin_memory=pin_memory,
                                       prefetch_factor=2 if workers else None)


def iterate(source: DomainSource, batch_size: int) -> Any:
    """All samples of ``source`` in order, in batches (for evaluation)."""
    for start in range(0, len(source), batch_size):
        yield source.get(list(range(start, min(start + batch_size, len(source)))))
