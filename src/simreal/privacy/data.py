"""Doubly-labelled image data for the anonymizer and the audit.

A user brings a dataset folder (the dataset contract) whose image records carry the labels as fields:
the private label (e.g. ``"writer"``, ``"font"``, ``"identity"``, ``"site"``) and, for the audit only,
a utility label (e.g. ``"digit"``, ``"expression"``). A field name may be a dotted path into the record
(``params.writer``); values may be strings or integers; ``label`` (the image's category id) works too.
An optional ``split`` field marks held-out records (value ``test``). Images must all have one size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simreal.datasets import Dataset
from simreal.errors import DatasetError
from simreal.runtime.progress import make_progress

_MISSING = object()


def field_value(rec: dict[str, Any], path: str) -> Any:
    """The value of a dotted ``path`` in a record (a sentinel when absent or null)."""
    node: Any = rec
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node or node[part] is None:
            return _MISSING
        node = node[part]
    return node


def drop_field(rec: dict[str, Any], path: str) -> dict[str, Any]:
    """A copy of ``rec`` without the dotted ``path`` (nested dicts copied on the way)."""
    out = dict(rec)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            return out
        node[part] = dict(node[part])
        node = node[part]
    node.pop(parts[-1], None)
    return out


def _class_key(v: str) -> tuple[int, float | str]:
    try:
        return (0, float(v))
    except ValueError:
        return (1, v)


@dataclass(frozen=True)
class Labels:
    """One label field over a dataset: class names (sorted, numbers numerically) and class indices."""

    field: str
    classes: list[str]
    index: np.ndarray  # (N,) int64

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def counts(self, mask: np.ndarray | None = None) -> np.ndarray:
        idx = self.index if mask is None else self.index[mask]
        return np.bincount(idx, minlength=self.num_classes)


def read_labels(ds: Dataset, field: str, option: str = "--private-label", min_classes: int = 2) -> Labels:
    """The label ``field`` of every record; DatasetError naming the record when one lacks it, or when
    fewer than ``min_classes`` values occur."""
    where = ds.root / "annotations.json"
    values: list[str] = []
    for i, rec in enumerate(ds.images):
        v = field_value(rec, field)
        if v is _MISSING:
            raise DatasetError(f"{where}: images[{i}] (id {rec.get('id')}, {rec.get('file_name')}) has no field "
                               f"{field!r} ({option}); every image record needs it")
        if isinstance(v, (dict, list)):
            raise DatasetError(f"{where}: images[{i}] field {field!r} ({option}) is a {type(v).__name__}, "
                               "expected a string or a number")
        values.append(str(v))
    classes = sorted(set(values), key=_class_key)
    if len(classes) < min_classes:
        raise DatasetError(f"{where}: field {field!r} ({option}) has a single value {classes[0]!r} over "
                           f"{len(values)} images; need {min_classes} classes or more")
    lookup = {c: k for k, c in enumerate(classes)}
    return Labels(field, classes, np.array([lookup[v] for v in values], dtype=np.int64))


def image_channels(ds: Dataset, configured: int | None) -> int:
    """1 or 3: configured, else detected from the files (grey-level files give 1)."""
    if configured is not None:
        return int(configured)
    from simreal.refine.data import dataset_channels

    return dataset_channels(ds)


def load_images(ds: Dataset, channels: int, progress: bool = False, what: str = "load images") -> np.ndarray:
    """Every image as float32 (N, C, H, W) in [0, 1]; DatasetError naming the first image whose size
    differs from the first one's."""
    mode = "L" if channels == 1 else "RGB"
    out: np.ndarray | None = None
    with make_progress("img", disable=not progress) as prog:
        task = prog.add_task(what, total=len(ds))
        for i in range(len(ds)):
            img = ds.load_image(i, mode)
            if img.ndim == 2:
                img = img[:, :, None]
            if out is None:
                out = np.zeros((len(ds), channels, img.shape[0], img.shape[1]), dtype=np.float32)
            elif img.shape[:2] != out.shape[2:]:
                raise DatasetError(
                    f"{ds.image_path(i)}: image is {img.shape[1]}x{img.shape[0]}, expected "
                    f"{out.shape[3]}x{out.shape[2]} like {ds.images[0]['file_name']} (all images must have one size)")
            out[i] = img.transpose(2, 0, 1).astype(np.float32) / 255.0
            prog.advance(task)
    if out is None:
        raise DatasetError(f"{ds.root}: no images")
    return out


def split_mask(ds: Dataset, split_field: str, value: str | None) -> np.ndarray:
    """True for records whose ``split_field`` equals ``value`` (all False when value is None)."""
    if value is None:
        return np.zeros(len(ds), dtype=bool)
    return np.array([str(field_value(r, split_field)) == value for r in ds.images], dtype=bool)


def has_split(ds: Dataset, split_field: str) -> bool:
    return any(field_value(r, split_field) is not _MISSING for r in ds.images)
