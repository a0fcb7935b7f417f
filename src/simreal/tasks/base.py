"""What every task provides to the trainer and the evaluator.

A task model's ``forward(x)`` returns ``(out, feat)``: the task output and pooled backbone
features (B, D) that the domain discriminator of DANN sees. ``encode``/``head`` split the model
for ADDA, ``reset_head`` re-initialises the task head for fine-tuning. ``feature_levels`` names the
features multi-level adaptation may attach discriminators to (:mod:`simreal.adapt.multilevel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class FeatureLevel:
    """A named feature of a task model: the output of the sub-module at dotted path ``module`` (item
    ``key`` of a dict output). ``kind``: ``map`` (B, C, H, W), ``vector`` (B, D), ``roi`` (R, D) whose rows
    belong to the images given by the tensor at dotted path ``index``, or ``output`` (the task output's
    softmax). ``module`` "" with kind ``vector`` is the model's pooled features."""

    module: str
    kind: Literal["map", "vector", "roi", "output"]
    key: str | None = None
    index: str | None = None


class TaskModel(nn.Module):
    """Base for task models. ``network_prefix`` is where the registry network (``model.arch``) sits in
    the state dict, so torchvision-format weights map onto it (see :mod:`simreal.nn.registry`)."""

    feature_dim: int
    network_prefix: str = ""

    def encode(self, x: torch.Tensor) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def pooled(self, enc: Any) -> torch.Tensor:
        """Pooled (B, D) features from the encoder output (identity for classifiers)."""
        return enc

    def decode(self, enc: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[Any, torch.Tensor]:
        enc = self.encode(x)
        return self.decode(enc), self.pooled(enc)

    def head_modules(self) -> list[nn.Module]:  # pragma: no cover - interface
        raise NotImplementedError

    def reset_head(self) -> None:
        for m in self.head_modules():
            for sub in m.modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.head_modules() for p in m.parameters()]

    def feature_levels(self) -> dict[str, FeatureLevel]:
        """Named features for multi-level adaptation; every model has ``pooled``."""
        return {"pooled": FeatureLevel("", "vector")}


class Task:
    """A task: builds its model, turns records into targets, computes its loss and its scores."""

    name = "task"
    shared_classes = True  # False: dataset categories are not the task's classes (re-id), lists are not compared

    def __init__(self, num_classes: int, class_names: list[str] | None = None) -> None:
        self.num_classes = num_classes
        self.class_names = class_names or [str(i + 1) for i in range(num_classes)]

    def build_model(self, arch: str, in_channels: int, image_size: tuple[int, int], **kw: Any) -> TaskModel:
        raise NotImplementedError  # pragma: no cover

    def target(self, dataset: Any, rec: dict[str, Any], size: tuple[int, int]) -> Any:
        raise NotImplementedError  # pragma: no cover

    def check_labels(self, dataset: Any, where: str) -> None:
        raise NotImplementedError  # pragma: no cover

    def loss(self, out: Any, targets: list[Any], labelled: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def predict(self, model: TaskModel, x: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover

    def quality(self, preds: list[dict[str, Any]], targets: list[Any]) -> float:
        """A higher-is-better score for model selection on labelled validation data."""
        raise NotImplementedError  # pragma: no cover

    def sample_losses(self, preds: list[dict[str, Any]], targets: list[Any]) -> np.ndarray:
        """Per-sample losses (for importance-weighted validation)."""
        raise NotImplementedError  # pragma: no cover


def original_hw(dataset: Any, rec: dict[str, Any]) -> tuple[int, int]:
    """(height, width) of a record's original image (from the record, else from the file)."""
    if rec.get("width") and rec.get("height"):
        return int(rec["height"]), int(rec["width"])
    from PIL import Image

    with Image.open(dataset.image_path(rec)) as im:
        return int(im.height), int(im.width)


def box_annotations(dataset: Any, rec: dict[str, Any], by_name: dict[str, int],
                    class_names: list[str]) -> list[tuple[dict[str, Any], int]]:
    """(annotation, class index) of every annotation of ``rec`` with a box, classes matched by category
    name; an annotation of another category is bad input naming the dataset, the image and the category."""
    from simreal.errors import DatasetError

    names = {c["id"]: c["name"] for c in dataset.categories}
    out = []
    for a in dataset.anns(rec):
        if not a.get("bbox"):
            continue
        name = names.get(a.get("category_id"))
        if name not in by_name:
            raise DatasetError(f"{dataset.root}: annotation of image {rec['id']} has category "
                               f"{a.get('category_id')!r} not among the classes {class_names}")
        out.append((a, by_name[name]))
    return out


def source_targets(src: Any) -> list[Any]:
    """Targets of every sample of a source without loading images where possible."""
    if hasattr(src, "dataset") and hasattr(src, "indices") and src.target_fn is not None:
        return [src.target_fn(src.dataset, src.dataset.record(i), src.size) for i in src.indices]
    return list(getattr(src, "targets", None) or [])
