"""Nearest-neighbour substitution (intertwined mode): each anonymized image is replaced by the training
image of the chosen identity closest to it in Euclidean distance, so every released image is a real image
of that one identity. The pool (those training images and their record ids) is saved with the run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from simreal.errors import RunError
from simreal.runtime.io import atomic_path


@dataclass(frozen=True)
class Pool:
    """Training images of the chosen identity: float32 (M, C, H, W) in [0, 1] and their record ids."""

    images: np.ndarray
    ids: list[int]
    identity: str


def save_pool(path: Path, images: np.ndarray, ids: list[int], identity: str) -> Path:
    from safetensors.numpy import save_file

    with atomic_path(path) as tmp:
        save_file({"images": np.ascontiguousarray((images * 255).round().astype(np.uint8)),
                   "ids": np.asarray(ids, dtype=np.int64)}, str(tmp), metadata={"identity": identity})
    return path


def load_pool(path: Path) -> Pool:
    from safetensors import safe_open

    if not path.is_file():
        raise RunError(f"{path}: no substitution pool (the run was not trained in intertwined mode)")
    with safe_open(str(path), framework="numpy") as fh:
        identity = (fh.metadata() or {}).get("identity", "")
        images = fh.get_tensor("images").astype(np.float32) / 255.0
        ids = [int(v) for v in fh.get_tensor("ids")]
    return Pool(images, ids, identity)


def nearest(queries: np.ndarray, pool: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Index into ``pool`` of the Euclidean nearest neighbour of every query (arrays of equal trailing shape)."""
    p = torch.from_numpy(pool.reshape(len(pool), -1).astype(np.float64))
    out = np.empty(len(queries), dtype=np.int64)
    for a in range(0, len(queries), chunk):
        q = torch.from_numpy(queries[a:a + chunk].reshape(-1, p.shape[1]).astype(np.float64))
        out[a:a + chunk] = torch.cdist(q, p).argmin(dim=1).numpy()
    return out


def substitute(outputs: np.ndarray, pool: Pool) -> tuple[np.ndarray, list[int]]:
    """(the pool image nearest to each output, the record id of that pool image)."""
    idx = nearest(outputs, pool.images)
    return pool.images[idx], [pool.ids[i] for i in idx]


COLLAPSE_SHARE = 0.5  # one pool image standing in for more than this share of the release


def substitution_summary(sub_ids: list[int], pool: Pool) -> dict[str, float | int | bool]:
    """How the release used the pool: pool size, distinct images used, the largest share one image took, and
    ``collapsed`` when one image stands in for more than half of the release (the autoencoder's outputs
    converged to one face: identity is hidden, and so is everything else)."""
    counts = np.unique(np.asarray(sub_ids), return_counts=True)[1] if sub_ids else np.zeros(0, np.int64)
    largest = float(counts.max() / counts.sum()) if counts.size else 0.0
    return {"pool_images": len(pool.ids), "used": int(counts.size), "largest_share": round(largest, 4),
            "collapsed": bool(largest > COLLAPSE_SHARE)}
