"""Object detection, SqueezeDet style: backbone -> ConvDet over a grid of k-means anchors.

Targets are the COCO boxes of an image rescaled to the training size (xyxy, input pixels) with
class indices matched by category *name*, and an ``ignore`` flag (``ignore`` or ``iscrowd`` on the
annotation). Predictions are per image: boxes in ORIGINAL image pixels (COCO xywh), class, score =
class probability x confidence, and an image score = highest score after NMS (0 when nothing is
left), usable for "does this image contain the object" ranking.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from simreal.datasets.coco import extras
from simreal.errors import ConfigError, DatasetError
from simreal.nn.squeezedet import ConvDet
from simreal.tasks.base import FeatureLevel, Task, TaskModel, box_annotations, original_hw, source_targets
from simreal.tasks.detect_boxes import anchor_grid, postprocess
from simreal.tasks.detect_config import DetectConfig
from simreal.tasks.detect_loss import LossWeights, assign, combine, loss_terms


class Detector(TaskModel):
    """Backbone -> (dropout) -> ConvDet. ``decode`` returns ``{"raw": (B, N, C+5), "anchors": (N, 4)
    cxcywh, "grid": (h, w), "image_hw": (H, W)}``; pooled features = global mean of the feature map."""

    def __init__(self, backbone: nn.Module, num_classes: int, anchors: torch.Tensor, image_hw: tuple[int, int],
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = ConvDet(backbone.out_channels, int(anchors.shape[0]), num_classes)
        self.register_buffer("anchor_shapes", anchors.float().clone())
        self.feature_dim = int(backbone.out_channels)
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.network_prefix = "backbone."

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def pooled(self, enc: torch.Tensor) -> torch.Tensor:
        return enc.mean((2, 3))

    def decode(self, enc: torch.Tensor) -> dict[str, Any]:
        grid = (int(enc.shape[2]), int(enc.shape[3]))
        return {"raw": self.head(self.dropout(enc)), "anchors": anchor_grid(grid, self.image_hw, self.anchor_shapes),
                "grid": grid, "image_hw": self.image_hw}

    def head_modules(self) -> list[nn.Module]:
        return [self.head]

    def feature_levels(self) -> dict[str, FeatureLevel]:
        """``pooled`` and ``backbone`` (the feature map ConvDet sees)."""
        return {**super().feature_levels(), "backbone": FeatureLevel("backbone", "map")}

    def reset_head(self) -> None:
        self.head.reset_parameters()


class DetectTask(Task):
    name = "detect"

    def __init__(self, num_classes: int, class_names: list[str] | None = None,
                 fitted_anchors: list[list[float]] | None = None, **options: Any) -> None:
        super().__init__(num_classes, class_names)
        self.opt = DetectConfig(**options)
        given = fitted_anchors if fitted_anchors is not None else self.opt.anchors
        self.anchors = None if given is None else np.asarray(given, dtype=np.float64).reshape(-1, 2)
        self.anchor_iou: float | None = None
        self._by_name = {n: i for i, n in enumerate(self.class_names)}
        self.weights = LossWeights(self.opt.loss_class, self.opt.loss_bbox, self.opt.loss_conf_pos,
                                   self.opt.loss_conf_neg, self.opt.box_loss, self.opt.ignore_iou)

    # ------------------------------------------------------------------ data
    def check_labels(self, dataset: Any, where: str) -> None:
        if not any(a.get("bbox") for a in getattr(dataset, "annotations", [])):
            raise DatasetError(f"{where}: no bounding boxes for task 'detect' (need COCO annotations with 'bbox')")

    def target(self, dataset: Any, rec: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
        """Boxes of ``rec`` in input pixels (xyxy) at ``size`` (H, W), plus what evaluation needs."""
        oh, ow = original_hw(dataset, rec)
        sy, sx = size[0] / oh, size[1] / ow
        boxes, labels, ignore, orig = [], [], [], []
        for a, cls in box_annotations(dataset, rec, self._by_name, self.class_names):
            x, y, w, h = (float(v) for v in a["bbox"])
            boxes.append([x * sx, y * sy, (x + w) * sx, (y + h) * sy])
            labels.append(cls)
            ignore.append(bool(extras(a).get("ignore") or a.get("iscrowd")))
            orig.append([x, y, w, h])
        return {"boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                "labels": np.asarray(labels, dtype=np.int64), "ignore": np.asarray(ignore, dtype=bool),
                "orig_boxes": np.asarray(orig, dtype=np.float64).reshape(-1, 4), "orig_hw": (oh, ow),
                "scale": (ow / size[1], oh / size[0]), "image_id": rec["id"]}

    def fit_anchors(self, sources: list[Any], seed: int = 0) -> np.ndarray:
        """k-means (1 - IoU) anchor shapes from the non-ignored boxes of the labelled ``sources``
        (unless fixed anchors were given); deterministic for a seed."""
        from simreal.tasks.anchors import kmeans_anchors, mean_best_iou

        wh = []
        for src in sources:
            if not getattr(src, "labelled", False):
                continue
            for t in source_targets(src):
                if t is not None and len(t["boxes"]):
                    b = t["boxes"][~t["ignore"]]
                    wh.append(b[:, 2:] - b[:, :2])
        wh_all = np.concatenate(wh) if wh else np.zeros((0, 2))
        wh_all = wh_all[(wh_all > 0).all(1)]
        if self.anchors is None:
            if len(wh_all) == 0:
                raise DatasetError("task 'detect': the labelled training domains hold no boxes to fit anchors to")
            self.anchors = kmeans_anchors(wh_all, self.opt.num_anchors, seed)
        self.anchor_iou = mean_best_iou(wh_all, self.anchors) if len(wh_all) else None
        return self.anchors

    def state(self) -> dict[str, Any]:
        """What a finished run stores (checkpoint metadata ``task_state``) for eval/predict: the anchors."""
        assert self.anchors is not None
        return {"fitted_anchors": self.anchors.tolist()}

    # ----------------------------------------------------------------- model
    def build_model(self, arch: str, in_channels: int, image_size: tuple[int, int], **kw: Any) -> Detector:
        if self.anchors is None:
            raise ConfigError("task 'detect': no anchors (fit them on the training boxes or set detect.anchors)")
        from simreal.nn.registry import create_model

        backbone = create_model(arch, "detector_backbone", in_channels=in_channels, width=int(kw.get("width", 16)),
                                batch_norm=self.opt.batch_norm)
        return Detector(backbone, self.num_classes, torch.as_tensor(self.anchors, dtype=torch.float32),
                        image_size, self.opt.dropout)

    def loss(self, out: dict[str, Any], targets: list[Any], labelled: torch.Tensor) -> torch.Tensor:
        raw = out["raw"]
        if not bool(labelled.any()):
            return raw.sum() * 0.0
        tg = [t for t in targets if t is not None]
        # matching is host-side bookkeeping (loops over boxes): anchors to the host, assignment to the device
        asg = assign(tg, out["anchors"].cpu(), out["grid"], out["image_hw"], self._k(raw),
                     self.weights.ignore_iou).to(raw.device)
        return combine(loss_terms(raw[labelled], out["anchors"], asg, self.num_classes, self.weights), self.weights)

    def _k(self, raw: torch.Tensor) -> int:
        assert self.anchors is not None
        return int(self.anchors.shape[0])

    @torch.no_grad()
    def predict(self, model: TaskModel, x: torch.Tensor) -> dict[str, Any]:
        out, feat = model(x)
        o = self.opt
        raw, anchors = out["raw"].float().cpu(), out["anchors"].cpu()  # post-processing runs on the host
        dets = postprocess(raw, anchors, self.num_classes, out["image_hw"], o.keep_threshold,
                           o.nms_iou, o.top_k, o.max_detections)
        return {"dets": dets, "image_score": np.array([d["image_score"] for d in dets]),
                "feat": feat.float().cpu().numpy(), "raw": raw.numpy(), "anchors": anchors, "grid": out["grid"],
                "image_hw": out["image_hw"]}

    # -------------------------------------------------------------- scoring
    def quality(self, preds: list[dict[str, Any]], targets: list[Any]) -> float:
        from simreal.tasks.detect_eval import coco_inputs, prf_ignoring

        gt_doc, dets, gts, ign = coco_inputs(self, preds, targets)
        if self.opt.select_metric == "ap50":
            from simreal.metrics.detection import coco_map

            return coco_map(gt_doc, dets)["AP50"]
        return float(prf_ignoring(gts, ign, dets, self.opt.score_threshold)["f1"])

    def sample_losses(self, preds: list[dict[str, Any]], targets: list[Any]) -> np.ndarray:
        """Per-image SqueezeDet loss (each image normalised by its own positives/negatives)."""
        out = []
        i = 0
        for p in preds:
            raw = torch.from_numpy(p["raw"])
            tg = targets[i:i + len(raw)]
            i += len(raw)
            asg = assign(tg, p["anchors"], p["grid"], p["image_hw"], self._k(raw), self.weights.ignore_iou)
            out.append(combine(loss_terms(raw, p["anchors"], asg, self.num_classes, self.weights), self.weights,
                               per_image=True).numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def evaluate(self, preds: list[dict[str, Any]], targets: list[Any], out: Any) -> dict[str, Any]:
        from simreal.tasks.detect_eval import detection_eval

        return detection_eval(self, preds, targets, out)
