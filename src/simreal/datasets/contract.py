"""The dataset contract (see docs/datasets.md): a folder with dataset.json, COCO annotations,
images/ and 16-bit instance masks/. Plain image folders (flat, or one sub-folder per class) are
read through the same :class:`Dataset` reader.

Image-level labels are a field on the image record: ``"label"`` holds a category id, ``0`` marks
a negative image (none of the categories present) and a missing/None label means unlabelled.
An image's ``"file_name"`` is relative to ``images/``; its ``"mask_file"`` to the dataset folder.
simreal's annotation fields live in ``ann["simreal"]`` (see :func:`simreal.datasets.coco.extras`);
its ``"instance_id"`` is the annotation's value in the image's mask. Datasets in the older layout
(``images/`` prefix, simreal fields at the top level) are read as if written in the current one.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from simreal.datasets.coco import (
    IMAGES_DIR,
    coco_document,
    current_annotation,
    current_image,
    rle_to_mask,
)
from simreal.datasets.imageio import IMAGE_EXTS, list_images, read_image, read_mask
from simreal.errors import DatasetError
from simreal.runtime.io import atomic_write_bytes, atomic_write_json

DATASET_JSON = "dataset.json"
ANNOTATIONS_JSON = "annotations.json"
NEGATIVE = 0


def _code_version() -> str:
    from simreal import __version__

    return __version__


class Dataset:
    """Read access to a dataset folder or a plain image folder."""

    def __init__(
        self,
        root: Path,
        info: dict[str, Any],
        images: list[dict[str, Any]],
        annotations: list[dict[str, Any]],
        categories: list[dict[str, Any]],
        image_root: Path | None = None,
    ) -> None:
        self.root = root
        self.image_root = root if image_root is None else image_root
        self.info = info
        self.images = images
        self.categories = sorted(categories, key=lambda c: c["id"])
        self._anns: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for a in annotations:
            self._anns[a["image_id"]].append(a)
        self.annotations = annotations

    # construction ---------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Dataset:
        """Open a dataset folder, a flat image folder or a class-per-sub-folder image folder."""
        root = Path(path)
        if not root.exists():
            raise DatasetError(f"{root}: dataset folder not found")
        if not root.is_dir():
            raise DatasetError(f"{root}: expected a folder, got a file")
        if (root / DATASET_JSON).is_file() or (root / ANNOTATIONS_JSON).is_file():
            return cls._open_contract(root)
        return cls._open_folder(root)

    @classmethod
    def _open_contract(cls, root: Path) -> Dataset:
        info: dict[str, Any] = {}
        if (root / DATASET_JSON).is_file():
            info = _read_json(root / DATASET_JSON)
        ann_path = root / ANNOTATIONS_JSON
        if not ann_path.is_file():
            raise DatasetError(f"{ann_path}: annotations file not found (unfinished dataset?)")
        doc = _read_json(ann_path)
        for key in ("images", "annotations", "categories"):
            if key not in doc or not isinstance(doc[key], list):
                raise DatasetError(f"{ann_path}: key '{key}' missing or not a list")
        for i, rec in enumerate(doc["images"]):
            for key in ("id", "file_name"):
                if key not in rec:
                    raise DatasetError(f"{ann_path}: images[{i}] has no '{key}'")
        info.setdefault("name", root.name)
        info.setdefault("domain", "unknown")
        images = [current_image(r) for r in doc["images"]]
        anns = [current_annotation(a) for a in doc["annotations"]]
        return cls(root, info, images, anns, doc["categories"], root / IMAGES_DIR)

    @classmethod
    def _open_folder(cls, root: Path) -> Dataset:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        class_dirs = [d for d in subdirs if any(f.suffix.lower() in IMAGE_EXTS for f in d.iterdir())]
        images: list[dict[str, Any]] = []
        categories: list[dict[str, Any]] = []
        if class_dirs:
            for cid, d in enumerate(class_dirs, start=1):
                categories.append({"id": cid, "name": d.name})
                for f in list_images(d):
                    images.append({"id": len(images) + 1, "file_name": f"{d.name}/{f.name}", "label": cid})
        else:
            for f in list_images(root):
                images.append({"id": len(images) + 1, "file_name": f.name})
        if not images:
            raise DatasetError(
                f"{root}: no images found (expected {', '.join(IMAGE_EXTS)} files, flat or one sub-folder "
                "per class, or a dataset.json)"
            )
        info = {"name": root.name, "domain": "real", "kind": "folder"}
        return cls(root, info, images, [], categories)

    # access ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.images)

    @property
    def name(self) -> str:
        return str(self.info.get("name", self.root.name))

    @property
    def domain(self) -> str:
        return str(self.info.get("domain", "unknown"))

    @property
    def class_names(self) -> list[str]:
        """Category names in id order."""
        return [c["name"] for c in self.categories]

    def record(self, index: int) -> dict[str, Any]:
        return self.images[index]

    def image_path(self, rec: dict[str, Any] | int) -> Path:
        rec = self.images[rec] if isinstance(rec, int) else rec
        return self.image_root / rec["file_name"]

    def load_image(self, rec: dict[str, Any] | int, mode: str = "RGB") -> np.ndarray:
        """The image as uint8 HxWx3 (``mode="RGB"``) or HxW (``mode="L"``)."""
        return read_image(self.image_path(rec), mode)

    def load_mask(self, rec: dict[str, Any] | int) -> np.ndarray | None:
        """The 16-bit instance mask, or None when the record has none."""
        rec = self.images[rec] if isinstance(rec, int) else rec
        if rec.get("mask_file"):
            return read_mask(self.root / rec["mask_file"])
        return None

    def anns(self, rec: dict[str, Any] | int) -> list[dict[str, Any]]:
        """Annotations of an image (boxes, RLE segmentation, category)."""
        rec = self.images[rec] if isinstance(rec, int) else rec
        return self._anns.get(rec["id"], [])

    def ann_mask(self, ann: dict[str, Any]) -> np.ndarray:
        """The annotation's binary mask from its RLE."""
        return rle_to_mask(ann["segmentation"])

    def label(self, rec: dict[str, Any] | int) -> int | None:
        """Image-level label: a category id, 0 for a negative, None when unlabelled."""
        rec = self.images[rec] if isinstance(rec, int) else rec
        lab = rec.get("label")
        return None if lab is None else int(lab)

    @property
    def has_image_labels(self) -> bool:
        return any(r.get("label") is not None for r in self.images)

    @property
    def has_boxes(self) -> bool:
        return any("bbox" in a for a in self.annotations)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None


def open_dataset(path: str | Path) -> Dataset:
    """Open any dataset folder or image folder (see :class:`Dataset`)."""
    return Dataset.open(path)


class DatasetWriter:
    """Writes a dataset folder. Files are written atomically; ``finalize`` writes the COCO and
    dataset.json files last, so a folder without them is recognisably unfinished."""

    def __init__(
        self,
        root: str | Path,
        name: str,
        domain: str,
        categories: list[dict[str, Any]],
        provenance: dict[str, Any] | None = None,
    ) -> None:
        self.root = Path(root)
        self.name = name
        self.domain = domain
        self.categories = categories
        self.provenance = provenance or {}
        (self.root / "images").mkdir(parents=True, exist_ok=True)
        (self.root / "masks").mkdir(parents=True, exist_ok=True)

    def write_file(self, rel: str, data: bytes, durable: bool = True) -> str:
        """Write bytes at ``root/rel`` atomically (see ``atomic_write_bytes`` for ``durable``)."""
        atomic_write_bytes(self.root / rel, data, durable)
        return rel

    def write_image(self, file_name: str, data: bytes, durable: bool = True) -> str:
        """Write an encoded image at ``root/images/file_name``; returns the record's ``file_name``."""
        self.write_file(f"{IMAGES_DIR}/{file_name}", data, durable)
        return file_name

    def finalize(
        self,
        images: list[dict[str, Any]],
        annotations: list[dict[str, Any]],
        extra_info: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write annotations.json then dataset.json; returns the dataset info."""
        doc = coco_document(images, annotations, self.categories, {"description": self.name})
        atomic_write_json(self.root / ANNOTATIONS_JSON, doc, indent=None)
        info: dict[str, Any] = {
            "name": self.name,
            "domain": self.domain,
            "categories": self.categories,
            "provenance": {"code_version": _code_version(), **self.provenance},
            "counts": {
                "images": len(images),
                "annotations": len(annotations),
                "negatives": sum(1 for r in images if r.get("label") == NEGATIVE),
            },
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if extra_info:
            info.update(extra_info)
        atomic_write_json(self.root / DATASET_JSON, info)
        return info
