"""Deterministic seeding: one root seed per command, one generator per sample index."""

from __future__ import annotations

import random

import numpy as np


def sample_seed_sequence(root: int, index: int, stream: int = 0, item: int | None = None) -> np.random.SeedSequence:
    """The SeedSequence of sample ``index``; equals ``SeedSequence(root).spawn(index + 1)[index]``.

    ``stream`` separates independent uses of the same sample (0 = scene sampling); ``item`` numbers
    independent generators within one (e.g. one per position of a training batch, so a data-parallel
    rank can draw its share of a batch without drawing the others').
    """
    key = (int(index),) if stream == 0 and item is None else (int(index), int(stream))
    if item is not None:
        key += (int(item),)
    return np.random.SeedSequence(int(root), spawn_key=key)


def sample_rng(root: int, index: int, stream: int = 0, item: int | None = None) -> np.random.Generator:
    """The random generator of sample ``index``: independent of worker count and order."""
    return np.random.default_rng(sample_seed_sequence(root, index, stream, item))


def sample_seed(root: int, index: int, stream: int = 0) -> int:
    """A 31-bit integer seed for sample ``index`` (for libraries that want an int)."""
    return int(sample_seed_sequence(root, index, stream).generate_state(1, np.uint32)[0] >> 1)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if imported) torch global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
