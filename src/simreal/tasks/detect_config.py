"""Options of the detection task (the ``detect:`` block of a training config; see docs/train.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simreal.config import StrictModel


class DetectConfig(StrictModel):
    """Anchors, decoding/NMS, loss weights and the selection metric of task ``detect``."""

    num_anchors: int = Field(9, ge=1)  # anchor shapes per grid cell, from k-means over the training boxes
    anchors: list[tuple[float, float]] | None = None  # fixed (w, h) in input pixels instead of k-means
    score_threshold: float = Field(0.3, ge=0.0, le=1.0)  # operating point of P/R/F1 (and source-val quality)
    keep_threshold: float = Field(0.01, ge=0.0, le=1.0)  # detections below are dropped before NMS
    nms_iou: float = Field(0.4, gt=0.0, le=1.0)  # class-wise NMS: suppress IoU > nms_iou
    top_k: int = Field(64, ge=1)  # best anchors per image entering NMS (SqueezeDet: 64)
    max_detections: int = Field(100, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # before ConvDet (SqueezeDet: 0.5)
    batch_norm: bool = True  # BatchNorm in the SqueezeNet backbone (the published one has none)
    loss_class: float = Field(1.0, ge=0.0)
    loss_bbox: float = Field(5.0, ge=0.0)
    loss_conf_pos: float = Field(5.0, ge=0.0)
    loss_conf_neg: float = Field(50.0, ge=0.0)
    box_loss: Literal["l2", "smooth_l1"] = "l2"
    ignore_iou: float = Field(0.4, gt=0.0, le=1.0)  # anchors overlapping an ignored box more are not negatives
    select_metric: Literal["f1", "ap50"] = "f1"  # source-val quality: F1@0.5 at score_threshold, or COCO AP50
