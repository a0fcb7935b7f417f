"""Mask R-CNN (He et al. 2017) with a ResNet-18/34/50 + FPN backbone, in plain torch.

The module tree and parameter names are torchvision's ``maskrcnn_resnet50_fpn`` (``backbone.body``,
``backbone.fpn``, ``rpn.head``, ``roi_heads.{box_head, box_predictor, mask_head, mask_predictor}``),
so a torchvision state dict loads as it is; :func:`torchvision_to_simreal` also renames the legacy keys
of torchvision's COCO_V1 file (the renames its ``_load_from_state_dict`` hooks do). Every setting is a
field of :class:`~simreal.nn.maskrcnn_config.MaskRCNNConfig` (torchvision's defaults).

Differences from torchvision, by design: images arrive already resized (the data pipeline resizes to
``data.image_size``; torchvision resizes to a short side of 800), and a batch may hold unlabelled
images (domain adaptation): they pass the RPN and the box head (their best proposals) without loss.
``num_classes`` counts the object classes; the heads have ``num_classes + 1`` outputs (0 = background).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simreal.nn.fpn import BackboneWithFPN, freeze_batchnorm
from simreal.nn.maskrcnn_config import MaskRCNNConfig
from simreal.nn.roi_align import MultiScaleRoIAlign
from simreal.nn.roi_heads import FastRCNNPredictor, MaskRCNNHeads, MaskRCNNPredictor, RoIHeads, TwoMLPHead
from simreal.nn.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead

ARCHS = ("resnet18", "resnet34", "resnet50")


@dataclass
class Features:
    """The backbone output of one batch: ResNet stages C2..C5, the FPN maps ('0'.., 'pool'), the image
    size before padding and the padded size."""

    stages: list[torch.Tensor]
    fpn: OrderedDict[str, torch.Tensor]
    image_hw: tuple[int, int]
    padded_hw: tuple[int, int]


class MaskRCNN(nn.Module):
    """``backbone`` (ResNet + FPN), ``rpn`` and ``roi_heads`` in torchvision's layout."""

    def __init__(self, backbone: BackboneWithFPN, num_classes: int, config: MaskRCNNConfig | None = None,
                 in_channels: int = 3) -> None:
        super().__init__()
        c = config or MaskRCNNConfig()
        self.config = c
        self.num_classes = num_classes
        self.backbone = backbone
        ch = backbone.out_channels
        anchors = AnchorGenerator(c.anchor_sizes, [c.aspect_ratios] * len(c.anchor_sizes))
        self.rpn = RegionProposalNetwork(
            anchors, RPNHead(ch, anchors.num_anchors_per_location()[0]), fg_iou_thresh=c.rpn_fg_iou_thresh,
            bg_iou_thresh=c.rpn_bg_iou_thresh, batch_size_per_image=c.rpn_batch_size_per_image,
            positive_fraction=c.rpn_positive_fraction,
            pre_nms_top_n=(c.rpn_pre_nms_top_n_train, c.rpn_pre_nms_top_n_test),
            post_nms_top_n=(c.rpn_post_nms_top_n_train, c.rpn_post_nms_top_n_test), nms_thresh=c.rpn_nms_thresh,
            score_thresh=c.rpn_score_thresh)
        names = [str(i) for i in range(len(c.returned_layers))]
        pool_kw = {"sampling_ratio": c.roi_sampling_ratio, "canonical_scale": c.canonical_scale,
                   "canonical_level": c.canonical_level}
        self.roi_heads = RoIHeads(
            MultiScaleRoIAlign(names, c.box_roi_size, **pool_kw),
            TwoMLPHead(ch * c.box_roi_size ** 2, c.representation_size),
            FastRCNNPredictor(c.representation_size, num_classes + 1),
            MultiScaleRoIAlign(names, c.mask_roi_size, **pool_kw),
            MaskRCNNHeads(ch, c.mask_layers, c.mask_dilation),
            MaskRCNNPredictor(c.mask_layers[-1], c.mask_dim_reduced, num_classes + 1),
            fg_iou_thresh=c.box_fg_iou_thresh, bg_iou_thresh=c.box_bg_iou_thresh,
            batch_size_per_image=c.box_batch_size_per_image, positive_fraction=c.box_positive_fraction,
            bbox_reg_weights=c.bbox_reg_weights, score_thresh=c.box_score_thresh, nms_thresh=c.box_nms_thresh,
            detections_per_img=c.box_detections_per_img, unlabelled_rois=c.unlabelled_rois)
        mean, std = list(c.image_mean), list(c.image_std)
        if in_channels == 1 and len(mean) == 3:
            mean, std = [sum(mean) / 3], [sum(std) / 3]
        if len(mean) != in_channels:
            raise ValueError(f"instance.image_mean has {len(mean)} values for {in_channels} input channels")
        self.register_buffer("image_mean", torch.tensor(mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(std).view(-1, 1, 1), persistent=False)

    def prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Normalised images zero-padded (bottom/right) to a multiple of ``size_divisible``."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        s = self.config.size_divisible
        x = (x - self.image_mean) / self.image_std
        ph, pw = (-h) % s, (-w) % s
        return (F.pad(x, (0, pw, 0, ph)) if ph or pw else x), (h, w)

    def features(self, x: torch.Tensor) -> Features:
        xp, hw = self.prepare(x)
        stages, fpn = self.backbone(xp)
        return Features(stages, fpn, hw, (int(xp.shape[-2]), int(xp.shape[-1])))

    def proposals(self, f: Features, targets: Sequence[dict[str, Any] | None] | None = None,
                  generator: torch.Generator | None = None) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        return self.rpn(list(f.fpn.values()), f.image_hw, f.padded_hw, targets, generator)

    def losses(self, f: Features, targets: Sequence[dict[str, Any] | None],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The five Mask R-CNN losses over the images with a target (``None`` = unlabelled): targets hold
        ``boxes`` (n, 4) xyxy, ``labels`` (n,) in 1..C and ``masks`` (n, H, W) at the input size."""
        props, rpn_losses = self.proposals(f, targets, generator)
        roi_losses = self.roi_heads.losses(f.fpn, props, f.image_hw, targets, generator)
        if not rpn_losses:  # no labelled image: zero RPN losses that still reach the RPN head
            z = sum(p.sum() for p in self.rpn.head.parameters()) * 0.0
            rpn_losses = {"loss_objectness": z, "loss_rpn_box_reg": z}
        return {**rpn_losses, **roi_losses}

    @torch.no_grad()
    def detect(self, f: Features, score_thresh: float | None = None) -> list[dict[str, torch.Tensor]]:
        """Detections per image at the input size (boxes, scores, labels 1..C, M x M mask probabilities)."""
        props, _ = self.proposals(f)
        return self.roi_heads.detect(f.fpn, props, f.image_hw, score_thresh)

    def forward(self, x: torch.Tensor, targets: Sequence[dict[str, Any] | None] | None = None,
                generator: torch.Generator | None = None) -> Any:
        f = self.features(x)
        return self.losses(f, targets, generator) if targets is not None else self.detect(f)


def freeze_backbone_layers(body: nn.Module, trainable: int) -> None:
    """torchvision's ``trainable_backbone_layers``: only the last ``trainable`` of (layer4, layer3, layer2,
    layer1, conv1) train; 5 includes bn1."""
    train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable]
    if trainable == 5:
        train.append("bn1")
    for name, p in body.named_parameters():
        if not any(name.startswith(t) for t in train):
            p.requires_grad_(False)


def build_maskrcnn(arch: str, num_classes: int, in_channels: int = 3, base_width: int = 64,
                   config: MaskRCNNConfig | Mapping[str, Any] | None = None) -> MaskRCNN:
    """Mask R-CNN with a ResNet ``arch`` (resnet18 | resnet34 | resnet50) + FPN backbone for
    ``num_classes`` object classes."""
    from simreal.nn import resnet

    if arch not in ARCHS:
        raise ValueError(f"Mask R-CNN backbone {arch!r} (expected one of {', '.join(ARCHS)})")
    cfg = config if isinstance(config, MaskRCNNConfig) else MaskRCNNConfig(**dict(config or {}))
    body = getattr(resnet, arch)(1, in_channels, base_width)
    if cfg.frozen_bn:
        freeze_batchnorm(body, cfg.frozen_bn_eps)
    backbone = BackboneWithFPN(body, cfg.returned_layers, cfg.fpn_channels)
    freeze_backbone_layers(backbone.body, cfg.trainable_backbone_layers)
    return MaskRCNN(backbone, num_classes, cfg, in_channels)


# ------------------------------------------------------------------------- torchvision state dicts
_LEGACY = [  # (legacy torchvision name, current name)
    (re.compile(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$"), r"\1.0.\2"),
    (re.compile(r"^rpn\.head\.conv\.(weight|bias)$"), r"rpn.head.conv.0.0.\1"),
]
_MASK_FCN = re.compile(r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$")
_MASK_NEW = re.compile(r"^roi_heads\.mask_head\.(\d+)\.0\.(weight|bias)$")


def torchvision_to_simreal(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchvision Mask R-CNN state dict (current or legacy names, e.g. the COCO_V1 file; DataParallel
    ``module.`` prefixes stripped) in simreal's (= torchvision's current) names. A torchvision ResNet
    classifier file (ImageNet weights) becomes the backbone body, without its ``fc``."""
    state = {k.removeprefix("module.").removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith(("conv1.", "layer1.")) for k in state):
        return {f"backbone.body.{k}": v for k, v in state.items() if not k.startswith("fc.")}
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        for pat, rep in _LEGACY:
            k = pat.sub(rep, k)
        m = _MASK_FCN.match(k)
        if m:
            k = f"roi_heads.mask_head.{int(m.group(1)) - 1}.0.{m.group(2)}"
        out[k] = v
    return out


def simreal_to_torchvision_legacy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`torchvision_to_simreal` for legacy names (the COCO_V1 file layout)."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        k = re.sub(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.(weight|bias)$", r"\1.\2", k)
        k = re.sub(r"^rpn\.head\.conv\.0\.0\.(weight|bias)$", r"rpn.head.conv.\1", k)
        m = _MASK_NEW.match(k)
        if m:
            k = f"roi_heads.mask_head.mask_fcn{int(m.group(1)) + 1}.{m.group(2)}"
        out[k] = v
    return out
