"""Tasks registered by name: ``get_task(name, num_classes, class_names, **options)``.

Each entry names the model family its architectures come from (``model.arch`` is validated against
:func:`simreal.nn.registry.list_models` of that family). Task modules are imported on first use, so
configs validate task names without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simreal.registry import Registry

if TYPE_CHECKING:
    from simreal.tasks.base import Task

TASKS = Registry("task")


def register_task(name: str, target: str, model_family: str, description: str = "") -> None:
    """Register a task class (``"module:Class"``) whose models come from ``model_family``."""
    TASKS.register(name, target, description=description, model_family=model_family)


def task_names() -> list[str]:
    return TASKS.names()


def task_model_family(name: str, where: str = "task") -> str:
    return str(TASKS.get(name, where=where).meta["model_family"])


def get_task(name: str, num_classes: int, class_names: list[str] | None = None, **kw: Any) -> Task:
    """The task called ``name``; ConfigError listing the registered tasks when it is unknown."""
    return TASKS.get(name, where="task").load()(num_classes, class_names, **kw)


register_task("classify", "simreal.tasks.classify:ClassifyTask", "classifier",
              "image classification; image score = softmax probability")
register_task("segment", "simreal.tasks.segment:SegmentTask", "segmenter",
              "semantic segmentation (U-Net); image score = mean of the top 5 % pixel probabilities")
register_task("detect", "simreal.tasks.detect:DetectTask", "detector_backbone",
              "object detection (SqueezeDet-style); image score = maximum after NMS")
register_task("instance", "simreal.tasks.instance:InstanceTask", "instance_segmenter",
              "instance segmentation (Mask R-CNN + FPN); image score = highest class probability after NMS")
register_task("reid", "simreal.tasks.reid:ReidTask", "classifier",
              "re-identification (BNNeck embedding, identity CE + batch-hard triplet)")
