"""The RoI heads of Mask R-CNN (He et al. 2017) with torchvision's layout and semantics.

Training (labelled images): the ground-truth boxes are appended to the proposals, proposals are
matched (fg IoU >= 0.5, bg < 0.5) and sampled (512 per image, 25 % positive); losses: cross-entropy
of the sampled RoIs, smooth-L1 (beta 1/9) of the ground-truth class's deltas of the positives divided
by all sampled RoIs, and per-pixel BCE of the positives' mask logits on their class channel against
the ground-truth mask RoI-aligned onto the proposal (28 x 28, soft targets). Unlabelled images
(domain adaptation) contribute their best ``unlabelled_rois`` proposals to the box head (so the
instance-level features exist for them) but no loss. ``last_roi_image_index`` records which image
each box-head row came from.

Inference: softmax over C + 1 classes, class-specific decoding, clipping, background dropped, score
threshold, boxes with a side below 1e-2 dropped, NMS per class, the best ``detections_per_img``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simreal.nn.boxes import BoxCoder, batched_nms, box_iou, clip_boxes, remove_small_boxes
from simreal.nn.matcher import BalancedSampler, Matcher
from simreal.nn.roi_align import MultiScaleRoIAlign, roi_align


class TwoMLPHead(nn.Module):
    """fc6 (C*P*P -> rep) + ReLU, fc7 (rep -> rep) + ReLU."""

    def __init__(self, in_features: int, representation_size: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))


class FastRCNNPredictor(nn.Module):
    """``cls_score`` (C + 1 logits) and class-specific ``bbox_pred`` (4 (C + 1))."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes)
        self.bbox_pred = nn.Linear(in_features, num_classes * 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


class MaskRCNNHeads(nn.Sequential):
    """3x3 conv + ReLU blocks (``mask_head.i.0``), Kaiming-normal (fan_out) weights."""

    def __init__(self, in_channels: int, layers: Sequence[int], dilation: int = 1) -> None:
        blocks, c = [], in_channels
        for w in layers:
            blocks.append(nn.Sequential(nn.Conv2d(c, w, 3, padding=dilation, dilation=dilation),
                                        nn.ReLU(inplace=True)))
            c = w
        super().__init__(*blocks)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)


class MaskRCNNPredictor(nn.Sequential):
    """``conv5_mask`` (2x2 transposed conv, stride 2) + ReLU + ``mask_fcn_logits`` (1x1, C + 1)."""

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        super().__init__(OrderedDict([("conv5_mask", nn.ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0)),
                                      ("relu", nn.ReLU(inplace=True)),
                                      ("mask_fcn_logits", nn.Conv2d(dim_reduced, num_classes, 1))]))
        for name, p in self.named_parameters():
            if "weight" in name:
                nn.init.kaiming_normal_(p, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.zeros_(p)


def project_masks(gt_masks: torch.Tensor, boxes: torch.Tensor, matched: torch.Tensor, size: int) -> torch.Tensor:
    """Soft mask targets (K, size, size): ground-truth masks (G, H, W) RoI-aligned onto ``boxes`` (K, 4),
    scale 1, adaptive sampling, not aligned (torchvision's ``project_masks_on_boxes``)."""
    rois = torch.cat([matched[:, None].to(boxes.dtype), boxes], 1)
    return roi_align(gt_masks[:, None].to(boxes.dtype), rois, (size, size), 1.0, -1, False)[:, 0]


class RoIHeads(nn.Module):
    """Box and mask branches with their pooling, matching, sampling, losses and post-processing."""

    def __init__(self, box_roi_pool: MultiScaleRoIAlign, box_head: nn.Module, box_predictor: FastRCNNPredictor,
                 mask_roi_pool: MultiScaleRoIAlign, mask_head: nn.Module, mask_predictor: nn.Module, *,
                 fg_iou_thresh: float = 0.5, bg_iou_thresh: float = 0.5, batch_size_per_image: int = 512,
                 positive_fraction: float = 0.25, bbox_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
                 score_thresh: float = 0.05, nms_thresh: float = 0.5, detections_per_img: int = 100,
                 unlabelled_rois: int | None = None) -> None:
        super().__init__()
        self.box_roi_pool, self.box_head, self.box_predictor = box_roi_pool, box_head, box_predictor
        self.mask_roi_pool, self.mask_head, self.mask_predictor = mask_roi_pool, mask_head, mask_predictor
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=False)
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder(tuple(bbox_reg_weights))  # type: ignore[arg-type]
        self.score_thresh, self.nms_thresh, self.detections_per_img = score_thresh, nms_thresh, detections_per_img
        self.unlabelled_rois = unlabelled_rois if unlabelled_rois is not None else batch_size_per_image
        self.last_roi_image_index = torch.zeros(0, dtype=torch.long)

    # ------------------------------------------------------------------ training
    def sample(self, proposals: torch.Tensor, t: dict[str, Any], generator: torch.Generator | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled RoIs of one labelled image: boxes, labels (0 = background), matched gt index, box targets."""
        gt, gl = t["boxes"].to(proposals.dtype), t["labels"]
        props = torch.cat([proposals, gt])
        if gt.numel() == 0:
            matched = torch.zeros(len(props), dtype=torch.long, device=props.device)
            labels = torch.zeros(len(props), dtype=torch.long, device=props.device)
            gt = torch.zeros((1, 4), dtype=props.dtype, device=props.device)
        else:
            m = self.matcher(box_iou(gt, props))
            matched = m.clamp(min=0)
            labels = gl[matched].clone()
            labels[m == Matcher.BELOW_LOW_THRESHOLD] = 0
            labels[m == Matcher.BETWEEN_THRESHOLDS] = -1
        pos, neg = self.sampler(labels, generator)
        keep = torch.cat([pos, neg])
        props, labels, matched = props[keep], labels[keep], matched[keep]
        return props, labels, matched, self.box_coder.encode(gt[matched], props)

    def losses(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor], image_hw: tuple[int, int],
               targets: Sequence[dict[str, Any] | None], generator: torch.Generator | None = None
               ) -> dict[str, torch.Tensor]:
        """The three RoI losses over the labelled images; every image's RoIs pass the box head."""
        rois, labels, matched, reg = [], [], [], []
        for p, t in zip(proposals, targets, strict=True):
            if t is None:
                rois.append(p[: self.unlabelled_rois])
                continue
            r, lab, mt, rg = self.sample(p, t, generator)
            rois.append(r)
            labels.append(lab)
            matched.append(mt)
            reg.append(rg)
        device = proposals[0].device if proposals else torch.device("cpu")
        self.last_roi_image_index = torch.cat([torch.full((len(r),), i, dtype=torch.long, device=device)
                                               for i, r in enumerate(rois)]) if rois else torch.zeros(0)
        feats = self.box_head(self.box_roi_pool(features, rois, image_hw))
        logits, deltas = self.box_predictor(feats)
        lab_rows = torch.cat([torch.full((len(r),), t is not None, dtype=torch.bool, device=device)
                              for r, t in zip(rois, targets, strict=True)])
        zero = logits.sum() * 0.0
        if not labels:
            return {"loss_classifier": zero, "loss_box_reg": zero, "loss_mask": zero}
        y = torch.cat(labels)
        logits, deltas = logits[lab_rows], deltas[lab_rows].reshape(len(y), -1, 4)
        loss_cls = F.cross_entropy(logits, y)
        pos = torch.nonzero(y > 0).squeeze(1)
        loss_box = F.smooth_l1_loss(deltas[pos, y[pos]], torch.cat(reg)[pos], beta=1 / 9, reduction="sum") / max(
            y.numel(), 1)
        # masks: positives of the labelled images
        lab_targets = [t for t in targets if t is not None]
        lab_rois = [r for r, t in zip(rois, targets, strict=True) if t is not None]
        mboxes, mtargets, mlabels = [], [], []
        for r, lab, mt, t in zip(lab_rois, labels, matched, lab_targets, strict=True):
            p = torch.nonzero(lab > 0).squeeze(1)
            mboxes.append(r[p])
            mlabels.append(lab[p])
            if p.numel():
                mtargets.append(project_masks(t["masks"], r[p], mt[p], self.mask_size))
        if not mtargets:
            loss_mask = zero
        else:
            all_boxes = [torch.zeros((0, 4), device=device) for _ in rois]  # unlabelled images: no mask RoIs
            for i, b in zip([i for i, t in enumerate(targets) if t is not None], mboxes, strict=True):
                all_boxes[i] = b
            mlogits = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, all_boxes, image_hw)))
            ml = torch.cat(mlabels)
            loss_mask = F.binary_cross_entropy_with_logits(mlogits[torch.arange(len(ml), device=device), ml],
                                                           torch.cat(mtargets))
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box, "loss_mask": loss_mask}

    @property
    def mask_size(self) -> int:
        return 2 * self.mask_roi_pool.output_size[0]

    # ----------------------------------------------------------------- inference
    @torch.no_grad()
    def detect(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor], image_hw: tuple[int, int],
               score_thresh: float | None = None) -> list[dict[str, torch.Tensor]]:
        """Per image: ``boxes`` (n, 4), ``scores``, ``labels`` (1..C) and ``masks`` (n, M, M) probabilities of
        the predicted class (not pasted: see :func:`paste_masks`)."""
        thr = self.score_thresh if score_thresh is None else score_thresh
        feats = self.box_head(self.box_roi_pool(features, proposals, image_hw))
        logits, deltas = self.box_predictor(feats)
        counts = [len(p) for p in proposals]
        boxes = self.box_coder.decode(deltas, torch.cat(proposals)) if sum(counts) else deltas.reshape(0, 1, 4)
        probs = F.softmax(logits, -1)
        out = []
        for b, s in zip(boxes.split(counts), probs.split(counts), strict=True):
            c = s.shape[1]
            b = clip_boxes(b, image_hw)[:, 1:].reshape(-1, 4)
            lab = torch.arange(c, device=s.device).expand_as(s)[:, 1:].reshape(-1)
            s = s[:, 1:].reshape(-1)
            keep = torch.nonzero(s > thr).squeeze(1)
            b, s, lab = b[keep], s[keep], lab[keep]
            keep = remove_small_boxes(b, 1e-2)
            b, s, lab = b[keep], s[keep], lab[keep]
            keep = batched_nms(b, s, lab, self.nms_thresh)[: self.detections_per_img]
            out.append({"boxes": b[keep], "scores": s[keep], "labels": lab[keep]})
        det_boxes = [o["boxes"] for o in out]
        if sum(len(x) for x in det_boxes):
            ml = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, det_boxes, image_hw)))
            lab = torch.cat([o["labels"] for o in out])
            mp = torch.sigmoid(ml[torch.arange(len(lab), device=ml.device), lab])
            for o, m in zip(out, mp.split([len(x) for x in det_boxes]), strict=True):
                o["masks"] = m
        else:
            m = self.mask_size
            for o in out:
                o["masks"] = torch.zeros((0, m, m), device=logits.device)
        return out


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, image_hw: tuple[int, int], padding: int = 1) -> torch.Tensor:
    """Paste M x M mask probabilities (n, M, M) into an image of ``image_hw`` at ``boxes`` (n, 4)
    (torchvision's ``paste_masks_in_image``: pad 1 px, grow the box by (M + 2) / M, round to integers,
    bilinear resize into the box) -> (n, H, W) probabilities."""
    h, w = image_hw
    n, m = masks.shape[0], masks.shape[-1]
    out = masks.new_zeros((n, h, w))
    if n == 0:
        return out
    padded = F.pad(masks, (padding,) * 4)
    scale = (m + 2 * padding) / m
    cx, cy = (boxes[:, 0] + boxes[:, 2]) * 0.5, (boxes[:, 1] + boxes[:, 3]) * 0.5
    hw_, hh = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale, (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    grown = torch.stack([cx - hw_, cy - hh, cx + hw_, cy + hh], 1).to(torch.int64).tolist()
    for i, (x0, y0, x1, y1) in enumerate(grown):
        bw, bh = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        res = F.interpolate(padded[i][None, None], size=(bh, bw), mode="bilinear", align_corners=False)[0, 0]
        xa, xb, ya, yb = max(x0, 0), min(x1 + 1, w), max(y0, 0), min(y1 + 1, h)
        if xb > xa and yb > ya:
            out[i, ya:yb, xa:xb] = res[ya - y0:yb - y0, xa - x0:xb - x0]
    return out
