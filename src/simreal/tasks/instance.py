"""Instance segmentation with Mask R-CNN (task ``instance``).

Targets (per labelled image, at the training size): ``boxes`` (n, 4) xyxy scaled from the COCO boxes,
``labels`` 1..C matched by category *name*, ``masks`` (n, H, W) uint8 resized with nearest neighbour
(from the 16-bit instance mask via ``simreal.instance_id``, else the annotation's RLE); instances marked
``simreal.ignore``/``iscrowd`` are left out of training and become COCO crowd regions in evaluation. The
target also keeps what evaluation needs at the ORIGINAL resolution (boxes, RLE masks, areas).

Predictions: detections (boxes at the input size, scores, labels, 28 x 28 mask probabilities, pasted
at the original resolution only for evaluation) and ``image_score`` (B, C): the highest probability
of each class after NMS over detections above ``rank_score_thresh`` (0 when none), the paper's image
score for Mask R-CNN. Proposal and RoI sampling draw from a generator seeded by the batch, so a
resumed run continues exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from simreal.datasets.coco import extras
from simreal.errors import DatasetError
from simreal.nn.maskrcnn import Features, MaskRCNN
from simreal.tasks.base import FeatureLevel, Task, TaskModel, box_annotations, original_hw, source_targets
from simreal.tasks.instance_config import InstanceConfig


@dataclass
class InstanceOutput:
    """What the instance model's forward returns: the backbone features and the network whose heads the
    task runs (with targets for the losses, without for detection)."""

    features: Features
    net: MaskRCNN
    seed: int = 0


class InstanceModel(TaskModel):
    """A :class:`~simreal.nn.maskrcnn.MaskRCNN` as a task model. Pooled features (DANN, ADDA, IWV) =
    global mean of C5 (layer4, the paper's adaptation point); the class-specific predictors are the head
    (reset by fine-tuning)."""

    def __init__(self, net: MaskRCNN) -> None:
        super().__init__()
        self.net = net
        self.feature_dim = int(net.backbone.body.stage_channels[-1])
        self.network_prefix = "net."

    def encode(self, x: torch.Tensor) -> Features:
        return self.net.features(x)

    def pooled(self, enc: Features) -> torch.Tensor:
        return enc.stages[-1].mean((2, 3))

    def decode(self, enc: Features) -> InstanceOutput:
        return InstanceOutput(enc, self.net)

    def forward(self, x: torch.Tensor) -> tuple[InstanceOutput, torch.Tensor]:
        enc = self.encode(x)
        return InstanceOutput(enc, self.net, batch_seed(x)), self.pooled(enc)

    def head_modules(self) -> list[nn.Module]:
        return [self.net.roi_heads.box_predictor, self.net.roi_heads.mask_predictor]

    def feature_levels(self) -> dict[str, FeatureLevel]:
        lv = dict(super().feature_levels())
        for i in range(1, 5):
            lv[f"layer{i}"] = FeatureLevel(f"net.backbone.body.layer{i}", "map")
        returned = self.net.config.returned_layers
        for j, i in enumerate(returned):
            lv[f"p{i + 1}"] = FeatureLevel("net.backbone.fpn", "map", str(j))
        lv[f"p{returned[-1] + 2}"] = FeatureLevel("net.backbone.fpn", "map", "pool")
        lv["roi"] = FeatureLevel("net.roi_heads.box_head", "roi", index="net.roi_heads.last_roi_image_index")
        return lv


def batch_seed(x: torch.Tensor) -> int:
    """A seed from the batch's pixels (exact integer arithmetic): proposal/RoI sampling is a function of the
    batch, so a resumed run samples as an uninterrupted one."""
    q = torch.round(x.detach()[..., ::3, ::3].float() * 255).to(torch.int64)
    w = torch.arange(1, q.numel() + 1, device=q.device).reshape(q.shape) % 9973
    return int((q * w).sum().item()) % (2 ** 62) + int(x.shape[0])


class InstanceTask(Task):
    name = "instance"

    def __init__(self, num_classes: int, class_names: list[str] | None = None, **options: Any) -> None:
        super().__init__(num_classes, class_names)
        self.opt = InstanceConfig(**options)
        self._by_name = {n: i + 1 for i, n in enumerate(self.class_names)}
        self.anchor_coverage: dict[str, float] | None = None

    # ------------------------------------------------------------------ data
    def check_labels(self, dataset: Any, where: str) -> None:
        if not any(r.get("mask_file") for r in dataset.images) and not any(
                a.get("segmentation") for a in dataset.annotations):
            raise DatasetError(f"{where}: no instance masks for task 'instance' (need 'mask_file' on image records "
                               "or RLE 'segmentation' on annotations)")
        if not any(a.get("bbox") for a in dataset.annotations):
            raise DatasetError(f"{where}: no bounding boxes for task 'instance' (need COCO annotations with 'bbox')")

    def target(self, dataset: Any, rec: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
        """Training target at ``size`` (H, W) plus the original-resolution ground truth for evaluation."""
        from PIL import Image

        from simreal.datasets.coco import mask_to_rle

        oh, ow = original_hw(dataset, rec)
        sy, sx = size[0] / oh, size[1] / ow
        inst = dataset.load_mask(rec)
        boxes, labels, masks, crowd, orig_boxes, rles, areas = [], [], [], [], [], [], []
        for a, cls in box_annotations(dataset, rec, self._by_name, self.class_names):
            m = _instance_mask(dataset, inst, a, (oh, ow))
            x, y, w, h = (float(v) for v in a["bbox"])
            is_crowd = bool(extras(a).get("ignore") or a.get("iscrowd"))
            orig_boxes.append([x, y, w, h])
            rles.append(mask_to_rle(m))
            areas.append(float(m.sum()))
            crowd.append(is_crowd)
            labels.append(cls)
            if not is_crowd and w > 0 and h > 0:
                boxes.append([x * sx, y * sy, (x + w) * sx, (y + h) * sy])
                small = Image.fromarray(m.astype(np.uint8)).resize((size[1], size[0]), Image.Resampling.NEAREST)
                masks.append(np.asarray(small, dtype=np.uint8))
        train_labels = [lab for lab, c, b in zip(labels, crowd, orig_boxes, strict=True)
                        if not c and b[2] > 0 and b[3] > 0]
        return {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                "labels": np.asarray(train_labels, np.int64),
                "masks": np.stack(masks) if masks else np.zeros((0, *size), np.uint8),
                "orig_boxes": np.asarray(orig_boxes, np.float64).reshape(-1, 4), "orig_rles": rles,
                "orig_areas": areas, "orig_labels": np.asarray(labels, np.int64), "crowd": np.asarray(crowd, bool),
                "orig_hw": (oh, ow), "size": tuple(size), "image_id": rec["id"],
                "image_path": str(dataset.image_path(rec))}

    def fit_anchors(self, sources: list[Any], seed: int = 0) -> None:
        """Check the configured anchors against the labelled training boxes (the anchors are fixed; the
        name is the trainer's hook): most boxes must overlap an anchor by IoU >= rpn_bg_iou_thresh."""
        from simreal.nn.rpn import AnchorGenerator, anchor_match_quality
        boxes, size = [], None
        for src in sources:
            if not getattr(src, "labelled", False):
                continue
            for t in source_targets(src):
                if t is not None and len(t["boxes"]):
                    boxes.append(t["boxes"])
                    size = t["size"]
        if not boxes or size is None:
            raise DatasetError("task 'instance': the labelled training domains hold no boxes")
        o = self.opt
        b = torch.from_numpy(np.concatenate(boxes))
        div = o.size_divisible
        padded = (-(-size[0] // div) * div, -(-size[1] // div) * div)
        gen = AnchorGenerator(o.anchor_sizes, [o.aspect_ratios] * len(o.anchor_sizes))
        best = anchor_match_quality(gen, padded, o.level_strides(), b).numpy()
        side = np.sqrt(np.prod((b[:, 2:] - b[:, :2]).clamp(min=0).numpy(), 1))
        low = float((best < o.rpn_bg_iou_thresh).mean())
        self.anchor_coverage = {"boxes": len(best), "median_best_iou": float(np.median(best)),
                                "fraction_below_bg_iou": low}
        if o.anchor_check and low > 0.5:
            raise DatasetError(
                f"instance.anchor_sizes {o.anchor_sizes} at data.image_size {list(size)}: {100 * low:.0f}% of the "
                f"{len(best)} training boxes (median side {np.median(side):.0f} px) overlap no anchor by IoU >= "
                f"{o.rpn_bg_iou_thresh}; choose anchor sizes near the box sizes (or set instance.anchor_check: "
                "false)")

    # ----------------------------------------------------------------- model
    def build_model(self, arch: str, in_channels: int, image_size: tuple[int, int], **kw: Any) -> InstanceModel:
        from simreal.nn.maskrcnn_config import MaskRCNNConfig
        from simreal.nn.registry import create_model

        net_cfg = MaskRCNNConfig(**{k: v for k, v in self.opt.model_dump().items() if k in MaskRCNNConfig.model_fields})
        return InstanceModel(create_model(arch, "instance_segmenter", num_classes=self.num_classes,
                                          in_channels=in_channels, base_width=int(kw.get("base_width", 64)),
                                          config=net_cfg))

    @staticmethod
    def _tensors(t: dict[str, Any] | None, device: torch.device) -> dict[str, torch.Tensor] | None:
        if t is None:
            return None
        return {"boxes": torch.as_tensor(t["boxes"], device=device),
                "labels": torch.as_tensor(t["labels"], device=device),
                "masks": torch.as_tensor(t["masks"], device=device)}

    def loss_terms(self, out: InstanceOutput, targets: list[Any], labelled: torch.Tensor) -> dict[str, torch.Tensor]:
        """The five Mask R-CNN losses (labelled images only; unlabelled ones still feed the box head)."""
        dev = out.features.stages[-1].device
        tg = [self._tensors(t, dev) if bool(m) else None for t, m in zip(targets, labelled.tolist(), strict=True)]
        return out.net.losses(out.features, tg, torch.Generator().manual_seed(out.seed))

    def loss(self, out: InstanceOutput, targets: list[Any], labelled: torch.Tensor) -> torch.Tensor:
        terms = self.loss_terms(out, targets, labelled)
        return sum(terms.values())  # type: ignore[return-value]

    @torch.no_grad()
    def predict(self, model: TaskModel, x: torch.Tensor) -> dict[str, Any]:
        out, feat = model(x)
        o = self.opt
        dets = out.net.detect(out.features, min(o.rank_score_thresh, o.box_score_thresh))
        scores = np.zeros((len(dets), self.num_classes), np.float32)
        kept = []
        for i, d in enumerate(dets):
            lab, sc = d["labels"].cpu().numpy(), d["scores"].cpu().numpy()
            for c in np.unique(lab):
                scores[i, c - 1] = sc[lab == c].max()
            k = sc > o.box_score_thresh
            kept.append({"boxes": d["boxes"].cpu().numpy()[k], "scores": sc[k], "labels": lab[k],
                         "masks": d["masks"].cpu().numpy()[k].astype(np.float16)})
        return {"dets": kept, "image_score": scores, "feat": feat.cpu().numpy(),
                "input_hw": tuple(int(v) for v in x.shape[-2:])}

    # -------------------------------------------------------------- scoring
    def quality(self, preds: list[dict[str, Any]], targets: list[Any]) -> float:
        from simreal.metrics.detection import coco_map
        from simreal.tasks.instance_eval import coco_inputs

        kind, _, stat = self.opt.select_metric.partition("_")
        gt, bbox, segm = coco_inputs(self, preds, targets)
        return coco_map(gt, segm if kind == "segm" else bbox, kind)["AP50" if stat == "ap50" else "AP"]

    def sample_losses(self, preds: list[dict[str, Any]], targets: list[Any]) -> np.ndarray:
        """Per image: 1 - |matched| / (|ground truth| + |detections| - |matched|), matching by class and
        mask IoU > 0.5 at the input size (0 when the image has neither)."""
        from simreal.tasks.instance_eval import image_match_errors

        return image_match_errors(self, preds, targets)

    def evaluate(self, preds: list[dict[str, Any]], targets: list[Any], out: Path) -> dict[str, Any]:
        from simreal.tasks.instance_eval import instance_eval

        return instance_eval(self, preds, targets, out)


def _instance_mask(dataset: Any, inst: np.ndarray | None, ann: dict[str, Any], hw: tuple[int, int]) -> np.ndarray:
    """The annotation's full-resolution binary mask: its id in the instance mask, else its RLE, else its box."""
    iid = extras(ann).get("instance_id")
    if inst is not None and iid is not None and inst.shape == hw:
        return inst == int(iid)
    if ann.get("segmentation"):
        m = dataset.ann_mask(ann)
        if m.shape == hw:
            return m
    m = np.zeros(hw, bool)
    x, y, w, h = (int(round(float(v))) for v in ann["bbox"])
    m[max(y, 0):y + h, max(x, 0):x + w] = True
    return m
