"""Near-duplicate frame removal with perceptual hashes (ImageHash).

A frame is a duplicate when its hash is within ``threshold`` bits (Hamming distance) of the previous
kept frame (``scope: previous``) or of any kept frame of the element (``scope: all``). Duplicates are
not scored; each kept frame counts how many sampled frames it stands for.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from simreal.triage.config import DedupConfig


def image_hash(img: Image.Image, method: str = "phash", hash_size: int = 8) -> Any:
    """The ImageHash of ``img`` with the named function."""
    import imagehash

    fn = {"phash": imagehash.phash, "dhash": imagehash.dhash, "ahash": imagehash.average_hash,
          "whash": imagehash.whash}[method]
    return fn(img, hash_size=hash_size)


class Deduper:
    """Feed frames in time order; ``add`` says whether each is kept or which kept frame it repeats."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg
        self.kept: list[tuple[int, Any]] = []
        self.dup_of: dict[int, int] = {}
        self.hashes: list[str] = []

    def add(self, index: int, img: Image.Image) -> bool:
        """Record frame ``index``; True when it is kept (always True with ``dry``)."""
        h = image_hash(img, self.cfg.method, self.cfg.hash_size)
        self.hashes.append(str(h))
        pool = self.kept[-1:] if self.cfg.scope == "previous" else self.kept
        for j, hj in reversed(pool):
            if h - hj <= self.cfg.threshold:
                self.dup_of[index] = j
                if self.cfg.dry:
                    return True
                return False
        self.kept.append((index, h))
        return True

    def result(self) -> dict[str, Any]:
        """The stage output: kept frame indices, duplicates -> the frame they repeat, hashes."""
        kept = sorted(set(i for i, _ in self.kept) | (set(self.dup_of) if self.cfg.dry else set()))
        return {"schema": "simreal.triage.dedup/1", "kept": kept,
                "dup_of": {str(k): v for k, v in sorted(self.dup_of.items())}, "hashes": self.hashes}
