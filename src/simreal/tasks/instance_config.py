"""Options of the instance segmentation task (the ``instance:`` block of a training config; see
docs/train.md): every Mask R-CNN setting (torchvision's defaults) plus how the task scores images and
selects models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simreal.nn.maskrcnn_config import MaskRCNNConfig


class InstanceConfig(MaskRCNNConfig):
    """Mask R-CNN settings (:class:`~simreal.nn.maskrcnn_config.MaskRCNNConfig`) and task options."""

    rank_score_thresh: float = Field(1e-3, ge=0.0, le=1.0, description="image-level scores (the highest class "
                                     "probability after NMS) are computed from detections above this, so images "
                                     "without a detection above box_score_thresh still rank")
    mask_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="pasted mask probabilities above this are the "
                                  "instance (COCO segm evaluation, drawings)")
    select_metric: Literal["segm_ap50", "segm_ap", "bbox_ap50", "bbox_ap"] = Field(
        "segm_ap50", description="source-val quality for model selection (COCO, pycocotools)")
    anchor_check: bool = Field(True, description="refuse training when most training boxes overlap no anchor by "
                               "IoU >= rpn_bg_iou_thresh (anchor sizes that do not fit the objects)")
    samples: int = Field(8, ge=0, description="evaluation: test images drawn with their predicted masks and boxes "
                         "(samples.png)")
