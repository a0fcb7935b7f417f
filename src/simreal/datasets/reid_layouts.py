"""Re-identification folder layouts: read Market-1501 and CUHK03 (torchreid extraction) as datasets,
and export any re-id dataset (records with ``identity`` and ``camera``) as Market-1501.

Market-1501: ``bounding_box_train/``, ``bounding_box_test/`` (gallery), ``query/``; names
``0002_c1s1_000451_03.jpg`` = pid 0002, camera 1, sequence 1, frame 000451, box 03. pid -1 (junk) is
dropped; pid 0 (distractors) stays in the gallery. CUHK03: torchreid's ``images_detected/`` or
``images_labeled/`` with ``splits_new_detected.json`` / ``splits_new_labeled.json`` (new protocol, first
split; entries ``[path, pid, camid]``), the labelled set preferred.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from simreal.errors import DatasetError

MARKET_DIRS = {"bounding_box_train": "train", "bounding_box_test": "gallery", "query": "query"}
MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.(jpe?g|png)$", re.IGNORECASE)


def market_name(pid: int, camera: int, frame: int, seq: int = 1, box: int = 0, ext: str = "jpg") -> str:
    """The Market-1501 file name of a crop."""
    return f"{pid:04d}_c{camera}s{seq}_{frame:06d}_{box:02d}.{ext}"


def detect(root: Path) -> str | None:
    """``"market1501"``, ``"cuhk03"`` or None for a folder."""
    if all((root / d).is_dir() for d in MARKET_DIRS):
        return "market1501"
    if any((root / f"splits_new_{k}.json").is_file() for k in ("labeled", "detected")):
        return "cuhk03"
    return None


def read_market1501(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    images: list[dict[str, Any]] = []
    for sub, split in MARKET_DIRS.items():
        for f in sorted((root / sub).iterdir()):
            if f.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            m = MARKET_NAME.match(f.name)
            if m is None:
                raise DatasetError(f"{f}: not a Market-1501 name (expected like 0002_c1s1_000451_03.jpg)")
            pid = int(m.group(1))
            if pid == -1:  # junk
                continue
            images.append({"id": len(images) + 1, "file_name": f"{sub}/{f.name}", "identity": pid,
                           "camera": int(m.group(2)), "split": split})
    return images, {"name": root.name, "domain": "real", "kind": "market1501"}


def read_cuhk03(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    for kind in ("labeled", "detected"):
        path = root / f"splits_new_{kind}.json"
        if path.is_file():
            break
    try:
        splits = json.loads(path.read_text())
        split = splits[0] if isinstance(splits, list) else splits
        images: list[dict[str, Any]] = []
        for key, name in (("train", "train"), ("query", "query"), ("gallery", "gallery")):
            for entry in split[key]:
                rel, pid, cam = entry[0], int(entry[1]), int(entry[2])
                rel_path = Path(rel)
                rel = str(rel_path.relative_to(root)) if rel_path.is_absolute() and rel_path.is_relative_to(root) \
                    else f"images_{kind}/{rel_path.name}"
                images.append({"id": len(images) + 1, "file_name": rel, "identity": pid, "camera": cam,
                               "split": name})
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise DatasetError(f"{path}: not a torchreid CUHK03 split file ({type(exc).__name__}: {exc}); "
                           "expected a list of {train, query, gallery} entries [path, pid, camid]") from None
    return images, {"name": root.name, "domain": "real", "kind": f"cuhk03-{kind}"}


def read_layout(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """Records and info of a Market-1501 or CUHK03 folder, or None for another folder."""
    kind = detect(root)
    if kind == "market1501":
        return read_market1501(root)
    if kind == "cuhk03":
        return read_cuhk03(root)
    return None


def export_market1501(dataset: Any, out: str | Path, test_fraction: float = 0.5) -> dict[str, int]:
    """Write ``dataset``'s re-id records (``identity`` > 0, ``camera`` 1..6) in the Market-1501 layout:
    identities sorted, the last ``test_fraction`` of them for testing; per test identity and camera the
    first image is a query, the rest gallery. Images are JPEG as in Market-1501. Returns counts."""
    from PIL import Image

    from simreal.runtime.io import atomic_path

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out}: folder is not empty; choose another output folder")
    recs = [r for r in dataset.images if r.get("identity") is not None]
    if not recs:
        raise DatasetError(f"{dataset.root}: no records with an 'identity' (not a re-id dataset)")
    for r in recs:
        if not 1 <= int(r.get("camera") or 0) <= 6:
            raise DatasetError(f"{dataset.root}: image {r['file_name']}: camera {r.get('camera')} outside 1..6, "
                               "which Market-1501 loaders reject")
    ids = sorted({int(r["identity"]) for r in recs})
    n_test = int(round(len(ids) * test_fraction))
    test_ids = set(ids[len(ids) - n_test:])
    seen: set[tuple[int, int]] = set()
    frames: dict[int, int] = {}
    counts = {"train": 0, "gallery": 0, "query": 0}
    for sub in MARKET_DIRS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    for r in sorted(recs, key=lambda r: (int(r["identity"]), int(r.get("view", 0)), r["file_name"])):
        pid, cam = int(r["identity"]), int(r["camera"])
        frames[pid] = frames.get(pid, 0) + 1
        if pid not in test_ids:
            sub = "bounding_box_train"
        elif (pid, cam) not in seen:
            sub = "query"
            seen.add((pid, cam))
        else:
            sub = "bounding_box_test"
        name = market_name(pid, cam, frames[pid])
        with atomic_path(out / sub / name) as tmp:
            Image.open(dataset.image_path(r)).convert("RGB").save(tmp, "JPEG", quality=95)
        counts[MARKET_DIRS[sub]] += 1
    return counts
