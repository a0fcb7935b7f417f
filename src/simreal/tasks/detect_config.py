"""Options of the detection task (the ``detect:`` block of a training config; see docs/train.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simreal.config import StrictModel


class DetectConfig(StrictModel):
    """Anchors, decoding/NMS, loss weights and the selection metric of task ``detect``."""

    num_anchors: int = Field(9, ge=1, description="anchor shapes per grid cell, from k-means over the training boxes")
    anchors: list[tuple[float, float]] | None = Field(
        None, description="fixed (w, h) in input pixels instead of k-means")
    score_threshold: float = Field(
        0.3, ge=0.0, le=1.0, description="operating point of P/R/F1 (and source-val quality)")
    keep_threshold: float = Field(0.01, ge=0.0, le=1.0, description="detections below are dropped before NMS")
    nms_iou: float = Field(0.4, gt=0.0, le=1.0, description="class-wise NMS: suppress IoU > nms_iou")
    top_k: int = Field(64, ge=1, description="best anchors per image entering NMS (SqueezeDet: 64)")
    max_detections: int = Field(100, ge=1, description="detections kept per image after NMS")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="before ConvDet (SqueezeDet: 0.5)")
    batch_norm: bool = Field(True, description="BatchNorm in the SqueezeNet backbone (the published one has none)")
    loss_class: float = Field(1.0, ge=0.0, description="weight of the class cross-entropy (SqueezeDet: 1)")
    loss_bbox: float = Field(5.0, ge=0.0, description="weight of the box regression loss (SqueezeDet: 5)")
    loss_conf_pos: float = Field(5.0, ge=0.0, description="weight of the confidence loss on matched anchors")
    loss_conf_neg: float = Field(50.0, ge=0.0, description="weight of the confidence loss on unmatched anchors")
    box_loss: Literal["l2", "smooth_l1"] = Field("l2", description="box regression loss on the deltas")
    ignore_iou: float = Field(
        0.4, gt=0.0, le=1.0, description="anchors overlapping an ignored box more are not negatives")
    select_metric: Literal["f1", "ap50"] = Field(
        "f1", description="source-val quality: F1@0.5 at score_threshold, or COCO AP50")
