"""Image classification: ResNet-18/50 or a small CNN; image score = softmax probability."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simreal.errors import DatasetError
from simreal.tasks.base import FeatureLevel, Task, TaskModel


class Classifier(TaskModel):
    """Backbone features -> linear head. Parameter names follow torchvision under ``backbone.``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = int(backbone.feature_dim)
        self.network_prefix = "backbone."

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.features(x)

    def decode(self, enc: torch.Tensor) -> torch.Tensor:
        return self.backbone.fc(enc)

    def head_modules(self) -> list[nn.Module]:
        return [self.backbone.fc]

    def feature_levels(self) -> dict[str, FeatureLevel]:
        """``pooled``, the ResNet stages ``layer1``..``layer4`` (or the small CNN's ``stage1``..``stage3``) and
        ``output`` (the class softmax)."""
        lv = dict(super().feature_levels())
        if hasattr(self.backbone, "layer4"):
            lv.update({f"layer{i}": FeatureLevel(f"backbone.layer{i}", "map") for i in range(1, 5)})
        elif hasattr(self.backbone, "encoder"):  # SmallCNN: the last block of each stage
            lv.update({f"stage{i + 1}": FeatureLevel(f"backbone.encoder.{j}", "map") for i, j in enumerate((1, 4, 6))})
        lv["output"] = FeatureLevel("", "output")
        return lv


class ClassifyTask(Task):
    name = "classify"

    def __init__(self, num_classes: int, class_names: list[str] | None = None) -> None:
        super().__init__(num_classes, class_names)
        self._by_name = {n: i for i, n in enumerate(self.class_names)}

    def build_model(self, arch: str, in_channels: int, image_size: tuple[int, int], **kw: Any) -> Classifier:
        from simreal.nn.registry import create_model

        return Classifier(create_model(arch, "classifier", num_classes=self.num_classes, in_channels=in_channels,
                                       width=int(kw.get("width", 32)), base_width=int(kw.get("base_width", 64))))

    def check_labels(self, dataset: Any, where: str) -> None:
        if not dataset.has_image_labels:
            raise DatasetError(f"{where}: no image-level labels for task 'classify' (need a 'label' field or "
                               "one sub-folder per class)")

    def target(self, dataset: Any, rec: dict[str, Any], size: tuple[int, int]) -> Any:
        """Class index by category *name* (ids differ between domains); a negative (label 0) is the
        ``background`` class when the task has one, else unlabelled."""
        lab = dataset.label(rec)
        if lab is None:
            return None
        if lab == 0:
            return self._by_name.get("background")
        names = {c["id"]: c["name"] for c in dataset.categories}
        return self._by_name.get(names.get(lab, ""))

    def loss(self, out: torch.Tensor, targets: list[Any], labelled: torch.Tensor) -> torch.Tensor:
        if not bool(labelled.any()):
            return out.sum() * 0.0
        y = torch.tensor([t for t in targets if t is not None], dtype=torch.long, device=out.device)
        return F.cross_entropy(out[labelled], y)

    @torch.no_grad()
    def predict(self, model: TaskModel, x: torch.Tensor) -> dict[str, Any]:
        out, feat = model(x)
        prob = torch.softmax(out.float(), 1).cpu().numpy()
        return {"prob": prob, "feat": feat.float().cpu().numpy()}

    def quality(self, preds: list[dict[str, Any]], targets: list[Any]) -> float:
        prob = np.concatenate([p["prob"] for p in preds])
        y = np.asarray(targets)
        return float((prob.argmax(1) == y).mean())

    def sample_losses(self, preds: list[dict[str, Any]], targets: list[Any]) -> np.ndarray:
        prob = np.concatenate([p["prob"] for p in preds])
        y = np.asarray(targets)
        return -np.log(np.clip(prob[np.arange(len(y)), y], 1e-12, 1.0))

    def evaluate(self, preds: list[dict[str, Any]], targets: list[Any], out: Path) -> dict[str, Any]:
        """Accuracy, per-class accuracy, confusion matrix, ROC-AUC/AP and their plots (see
        :func:`simreal.metrics.classification.classification_eval`)."""
        from simreal.metrics.classification import classification_eval

        return classification_eval(self.class_names, preds, targets, out)
