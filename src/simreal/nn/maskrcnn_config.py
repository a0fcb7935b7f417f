"""Every setting of :mod:`simreal.nn.maskrcnn`, with torchvision's ``maskrcnn_resnet50_fpn`` defaults
(the ``instance:`` block of a training config extends it; see docs/train.md, "Instance segmentation").

No torch import: configs validate without loading network code.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from simreal.config import StrictModel

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MaskRCNNConfig(StrictModel):
    """Backbone, anchors, RPN, RoI heads and mask head of Mask R-CNN (reference: torchvision)."""

    frozen_bn: bool = Field(False, description="FrozenBatchNorm2d in the ResNet (torchvision uses it with pretrained "
                                               "weights; from scratch, BatchNorm2d trains)")
    frozen_bn_eps: float = Field(1e-5, ge=0.0, description="eps of FrozenBatchNorm2d; torchvision sets 0 when it "
                                                           "loads its COCO_V1 Mask R-CNN weights")
    trainable_backbone_layers: int = Field(5, ge=0, le=5, description="ResNet stages that train, counted from "
                                           "layer4 (5 = all, incl. conv1; torchvision: 3 with pretrained weights)")
    returned_layers: list[int] = Field([1, 2, 3, 4], min_length=1, description="ResNet stages (1..4) feeding the FPN "
                                       "(P2..P5); dropping 1 removes the costly stride-4 level")
    fpn_channels: int = Field(256, ge=1, description="FPN width (and RPN head / RoI feature channels)")
    anchor_sizes: list[list[float]] = Field([[32.0], [64.0], [128.0], [256.0], [512.0]],
                                            description="anchor sizes (px at the training size) per pyramid level: "
                                            "one list per returned layer plus one for the 'pool' level")
    aspect_ratios: list[float] = Field([0.5, 1.0, 2.0], min_length=1, description="anchor aspect ratios (h / w), "
                                       "the same on every level")
    rpn_pre_nms_top_n_train: int = Field(2000, ge=1, description="RPN: best anchors per level before NMS (training)")
    rpn_pre_nms_top_n_test: int = Field(1000, ge=1, description="RPN: best anchors per level before NMS (inference)")
    rpn_post_nms_top_n_train: int = Field(2000, ge=1, description="RPN: proposals per image after NMS (training)")
    rpn_post_nms_top_n_test: int = Field(1000, ge=1, description="RPN: proposals per image after NMS (inference)")
    rpn_nms_thresh: float = Field(0.7, gt=0.0, le=1.0, description="RPN: NMS IoU threshold (per level)")
    rpn_fg_iou_thresh: float = Field(0.7, gt=0.0, le=1.0, description="RPN: anchors with IoU >= this are objects")
    rpn_bg_iou_thresh: float = Field(0.3, ge=0.0, le=1.0, description="RPN: anchors with IoU < this are background "
                                     "(between the two: ignored); each box also keeps its best anchors")
    rpn_batch_size_per_image: int = Field(256, ge=1, description="RPN: anchors sampled per image for the loss")
    rpn_positive_fraction: float = Field(0.5, gt=0.0, le=1.0, description="RPN: at most this fraction positive")
    rpn_score_thresh: float = Field(0.0, ge=0.0, le=1.0, description="RPN: proposals below this objectness dropped")
    box_roi_size: int = Field(7, ge=1, description="RoIAlign output size for the box head")
    mask_roi_size: int = Field(14, ge=1, description="RoIAlign output size for the mask head (masks: twice this)")
    roi_sampling_ratio: int = Field(2, description="RoIAlign samples per bin and axis (<= 0: adaptive)")
    canonical_scale: float = Field(224.0, gt=0.0, description="FPN level mapper: a box of this size (sqrt area) "
                                   "pools from canonical_level")
    canonical_level: int = Field(4, ge=1, description="FPN level mapper: level of a canonical_scale box")
    representation_size: int = Field(1024, ge=1, description="box head width (fc6, fc7)")
    box_fg_iou_thresh: float = Field(0.5, gt=0.0, le=1.0, description="RoI heads: proposals with IoU >= this are "
                                     "foreground")
    box_bg_iou_thresh: float = Field(0.5, ge=0.0, le=1.0, description="RoI heads: proposals with IoU < this are "
                                     "background")
    box_batch_size_per_image: int = Field(512, ge=1, description="RoI heads: proposals sampled per image")
    box_positive_fraction: float = Field(0.25, gt=0.0, le=1.0, description="RoI heads: at most this fraction "
                                         "positive")
    bbox_reg_weights: tuple[float, float, float, float] = Field((10.0, 10.0, 5.0, 5.0), description="box coder "
                                                                "weights (wx, wy, ww, wh) of the RoI heads")
    box_score_thresh: float = Field(0.05, ge=0.0, le=1.0, description="inference: detections below this score "
                                    "dropped")
    box_nms_thresh: float = Field(0.5, gt=0.0, le=1.0, description="inference: NMS IoU threshold, per class")
    box_detections_per_img: int = Field(100, ge=1, description="inference: detections kept per image")
    mask_layers: list[int] = Field([256, 256, 256, 256], min_length=1, description="mask head: 3x3 conv widths")
    mask_dilation: int = Field(1, ge=1, description="mask head: dilation of its 3x3 convs")
    mask_dim_reduced: int = Field(256, ge=1, description="mask predictor: channels of its transposed conv")
    image_mean: list[float] = Field(list(IMAGENET_MEAN), description="input normalisation mean (per channel, 0..1 "
                                    "images; one value per input channel, or 3 averaged for grey input)")
    image_std: list[float] = Field(list(IMAGENET_STD), description="input normalisation std (as image_mean)")
    size_divisible: int = Field(32, ge=1, description="batches are zero-padded (bottom/right) to a multiple of this")
    unlabelled_rois: int | None = Field(None, ge=1, description="domain adaptation: best proposals of each unlabelled "
                                        "image fed to the box head (instance-level features); default "
                                        "box_batch_size_per_image")

    @model_validator(mode="after")
    def _levels(self) -> MaskRCNNConfig:
        if sorted(set(self.returned_layers)) != self.returned_layers or not all(1 <= i <= 4 for i in
                                                                                 self.returned_layers):
            raise ValueError(f"returned_layers: {self.returned_layers} must be increasing stage numbers in 1..4")
        if len(self.anchor_sizes) != len(self.returned_layers) + 1:
            raise ValueError(f"anchor_sizes: {len(self.anchor_sizes)} levels given, expected "
                             f"{len(self.returned_layers) + 1} (one per returned layer plus the 'pool' level)")
        if self.rpn_bg_iou_thresh > self.rpn_fg_iou_thresh or self.box_bg_iou_thresh > self.box_fg_iou_thresh:
            raise ValueError("the background IoU threshold must not exceed the foreground one")
        if len(self.image_mean) != len(self.image_std):
            raise ValueError("image_mean and image_std need the same length")
        return self

    def level_strides(self) -> list[int]:
        """Strides of the pyramid levels (returned layers, then 'pool')."""
        s = [2 ** (i + 1) for i in self.returned_layers]
        return [*s, 2 * s[-1]]
