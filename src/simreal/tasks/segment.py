"""Semantic segmentation: U-Net (ResNet or light encoder), pixel cross-entropy, mIoU.

Targets come from the 16-bit instance masks: each instance id becomes its annotation's class index
(category ids in dataset order -> 1..K, 0 = background); instances marked ``ignore`` or ``iscrowd``,
and mask ids with no annotation, become ``IGNORE`` (255, left out of loss and metrics). Masks are
resized to the training size with nearest neighbour. The image score of class c is the mean of the
top 5 % of its pixel probabilities.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simreal.datasets.coco import extras
from simreal.errors import ConfigError, DatasetError
from simreal.tasks.base import FeatureLevel, Task, TaskModel

IGNORE = 255
TOP_FRACTION = 0.05


def top_fraction_score(prob: torch.Tensor, fraction: float = TOP_FRACTION) -> torch.Tensor:
    """Mean of the top ``fraction`` (at least one) of the pixel values of each (B, C, H, W) map -> (B, C)."""
    flat = prob.flatten(2)
    k = max(1, math.ceil(fraction * flat.shape[-1]))
    return flat.topk(k, dim=-1).values.mean(-1)


class SegModel(TaskModel):
    """A :class:`simreal.nn.unet.UNet` as a task model: pooled bottleneck features for DANN/ADDA,
    the final 1x1 conv as the head (reset by fine-tuning)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.feature_dim = int(net.feature_dim)
        self.network_prefix = "net."

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], tuple[int, int], tuple[int, int]]:
        xp = self.net.pad(x)
        return self.net.encode(xp), tuple(x.shape[-2:]), tuple(xp.shape[-2:])

    def pooled(self, enc: Any) -> torch.Tensor:
        return self.net.pooled(enc[0])

    def decode(self, enc: Any) -> torch.Tensor:
        feats, (h, w), padded = enc
        return self.net.decode(feats, padded)[..., :h, :w]

    def head_modules(self) -> list[nn.Module]:
        return [self.net.head]

    def feature_levels(self) -> dict[str, FeatureLevel]:
        """``pooled``; encoder levels (ResNet ``layer1``..``layer4``, light encoder ``enc1``..); decoder
        levels ``dec1`` (deepest) .. ``decN``; ``output`` (the pixel softmax: output-space adaptation)."""
        lv = dict(super().feature_levels())
        enc = self.net.encoder
        if hasattr(enc, "layer4"):
            lv.update({f"layer{i}": FeatureLevel(f"net.encoder.layer{i}", "map") for i in range(1, 5)})
        else:
            lv.update({f"enc{i + 1}": FeatureLevel(f"net.encoder.blocks.{i}", "map") for i in range(len(enc.blocks))})
        lv.update({f"dec{i + 1}": FeatureLevel(f"net.up_blocks.{i}", "map") for i in range(len(self.net.up_blocks))})
        lv["output"] = FeatureLevel("", "output")
        return lv


class SegmentTask(Task):
    name = "segment"

    def __init__(self, num_classes: int, class_names: list[str] | None = None,
                 class_weights: list[float] | None = None) -> None:
        super().__init__(num_classes, class_names)
        self._index = {i + 1: i + 1 for i in range(num_classes)}  # category id -> class index 1..K
        if class_weights is not None and len(class_weights) != num_classes + 1:
            raise ConfigError(f"segment.class_weights: expected {num_classes + 1} weights (background + "
                              f"{num_classes} classes), got {len(class_weights)}")
        self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)

    def bind(self, category_ids: list[int]) -> None:
        """Map dataset category ids (in order) to class indices 1..K."""
        self._index = {cid: i + 1 for i, cid in enumerate(category_ids)}

    def build_model(self, arch: str, in_channels: int, image_size: tuple[int, int], **kw: Any) -> SegModel:
        from simreal.nn.registry import create_model

        return SegModel(create_model(arch, "segmenter", num_classes=self.num_classes, in_channels=in_channels,
                                     width=int(kw.get("width", 16)),
                                     base_width=int(kw.get("base_width", 64))))

    def check_labels(self, dataset: Any, where: str) -> None:
        if not any(r.get("mask_file") for r in dataset.images):
            raise DatasetError(f"{where}: no instance masks (record 'mask_file') for task 'segment'")

    # ------------------------------------------------------------------ targets
    def semantic_mask(self, dataset: Any, rec: dict[str, Any]) -> np.ndarray | None:
        """Full-resolution class-index map (uint8; 0 background, 1..K, IGNORE) of one record."""
        inst = dataset.load_mask(rec)
        if inst is None:
            return None
        lut = np.full(int(inst.max()) + 1, IGNORE, dtype=np.uint8)
        lut[0] = 0
        sem = lut[inst]
        for a in dataset.anns(rec):
            ignored = extras(a).get("ignore") or a.get("iscrowd")
            cls = IGNORE if ignored else self._index.get(a.get("category_id"), IGNORE)
            iid = extras(a).get("instance_id")
            if iid is not None:
                if 0 < int(iid) < len(lut):
                    sem[inst == int(iid)] = cls
            elif a.get("segmentation"):
                m = dataset.ann_mask(a)
                if m.shape == sem.shape:
                    sem[m > 0] = cls
        return sem

    def target(self, dataset: Any, rec: dict[str, Any], size: tuple[int, int]) -> Any:
        from PIL import Image

        sem = self.semantic_mask(dataset, rec)
        if sem is None:
            return None
        sem = np.asarray(Image.fromarray(sem).resize((size[1], size[0]), Image.Resampling.NEAREST))
        present = np.zeros(self.num_classes, dtype=bool)
        for a in dataset.anns(rec):
            cls = self._index.get(a.get("category_id"))
            if cls is not None and not (extras(a).get("ignore") or a.get("iscrowd")):
                present[cls - 1] = True
        return {"mask": torch.from_numpy(sem.copy()), "present": present}

    # ------------------------------------------------------------------ training
    def loss(self, out: torch.Tensor, targets: list[Any], labelled: torch.Tensor) -> torch.Tensor:
        if not bool(labelled.any()):
            return out.sum() * 0.0
        y = torch.stack([t["mask"] for t in targets if t is not None]).long()
        if not bool((y != IGNORE).any()):  # checked on the host: no device sync
            return out.sum() * 0.0
        w = None if self.class_weights is None else self.class_weights.to(out.device)
        return F.cross_entropy(out[labelled], y.to(out.device, non_blocking=True), weight=w, ignore_index=IGNORE)

    @torch.no_grad()
    def predict(self, model: TaskModel, x: torch.Tensor) -> dict[str, Any]:
        out, feat = model(x)
        logp = torch.log_softmax(out.float(), 1)
        prob = logp.exp()
        return {"prob": top_fraction_score(prob[:, 1:]).cpu().numpy(), "feat": feat.float().cpu().numpy(),
                "pred": prob.argmax(1).to(torch.uint8).cpu().numpy(), "logp": logp.to(torch.float16).cpu().numpy()}

    # ------------------------------------------------------------------ scores
    def confusion(self, preds: list[dict[str, Any]], targets: list[Any]) -> np.ndarray:
        """(K+1) x (K+1) pixel confusion matrix (rows = true class), IGNORE pixels and unlabelled images left out."""
        k = self.num_classes + 1
        cm = np.zeros((k, k), dtype=np.int64)
        pred = np.concatenate([p["pred"] for p in preds])
        for pm, t in zip(pred, targets, strict=True):
            if t is None:
                continue
            y = t["mask"].numpy().astype(np.int64)
            keep = y != IGNORE
            cm += np.bincount(y[keep] * k + pm[keep].astype(np.int64), minlength=k * k).reshape(k, k)
        return cm

    def quality(self, preds: list[dict[str, Any]], targets: list[Any]) -> float:
        return float(iou_from_confusion(self.confusion(preds, targets))[1])

    def sample_losses(self, preds: list[dict[str, Any]], targets: list[Any]) -> np.ndarray:
        """Mean pixel cross-entropy of each image (IGNORE pixels left out; 0 for an image without any)."""
        logp = np.concatenate([p["logp"] for p in preds]).astype(np.float32)
        out = np.zeros(len(targets))
        for i, t in enumerate(targets):
            if t is None:
                continue
            y = t["mask"].numpy().astype(np.int64)
            keep = y != IGNORE
            if keep.any():
                picked = np.take_along_axis(logp[i], np.where(keep, y, 0)[None], 0)[0]
                out[i] = -float(picked[keep].mean())
        return out

    def evaluate(self, preds: list[dict[str, Any]], targets: list[Any], out: Path) -> dict[str, Any]:
        return segmentation_eval(self, preds, targets, out)


def iou_from_confusion(cm: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-class IoU (NaN where the class is neither present nor predicted) and their mean over the others."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    valid = ~np.isnan(iou)
    return iou, float(iou[valid].mean()) if valid.any() else float("nan")


def segmentation_eval(task: SegmentTask, preds: list[dict[str, Any]], targets: list[Any], out: Path) -> dict[str, Any]:
    """Pixel accuracy, per-class IoU, mIoU; image-level ROC-AUC/AP of the top-5 % score; roc.png, pr.png."""
    from simreal.metrics.plots import save_curves
    from simreal.metrics.ranking import pr_curve, roc_curve

    cm = task.confusion(preds, targets)
    iou, miou = iou_from_confusion(cm)
    names = ["background"] + list(task.class_names)
    per_class = {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou, strict=True)}
    res: dict[str, Any] = {"n": sum(t is not None for t in targets),
                           "pixel_accuracy": float(np.trace(cm) / max(cm.sum(), 1)), "miou": miou,
                           "per_class_iou": per_class}
    keep = np.array([t is not None for t in targets])
    score = np.concatenate([p["prob"] for p in preds])[keep]
    present = np.array([t["present"] for t in targets if t is not None]).reshape(-1, task.num_classes)
    rocs, prs, aucs, aps = [], [], {}, {}
    for i, name in enumerate(task.class_names):
        y = present[:, i].astype(int)
        aucs[name] = aps[name] = None
        if 0 < y.sum() < len(y):
            fpr, tpr, a = roc_curve(y, score[:, i])
            r, p, ap = pr_curve(y, score[:, i])
            aucs[name], aps[name] = a, ap
            rocs.append((fpr, tpr, f"{name} (AUC {a:.3f})"))
            prs.append((r, p, f"{name} (AP {ap:.3f})"))
    res["image_roc_auc_per_class"], res["image_ap_per_class"] = aucs, aps
    got = [v for v in aucs.values() if v is not None]
    res["image_roc_auc_macro"] = float(np.mean(got)) if got else None
    res["image_ap_macro"] = float(np.mean([v for v in aps.values() if v is not None])) if got else None
    if rocs:
        save_curves(out / "roc.png", rocs, "false positive rate", "true positive rate",
                    "image-level ROC (top-5 % pixel score)", True)
        save_curves(out / "pr.png", prs, "recall", "precision", "image-level precision-recall (top-5 % pixel score)")
    return res
