"""Semantic consistency (CyCADA, Hoffman et al. ICML 2018): a frozen source task model must give the same
prediction on a translated image as on the original.

For a refiner G_A (synthetic -> real) and, in CycleGAN, G_B (real -> synthetic), with the frozen model f::

    sem_A = CE(f(G_A(x_a)), y_a)                   y_a: the source label, or argmax f(x_a) where it has none
    sem_B = CE(f(G_B(x_b)), argmax f(x_b))         CycleGAN only: pseudo-labels of f on the real images

each multiplied by ``weight``. The task decides what "prediction" means:

* ``classify``: one class per image (hard targets, as in CyCADA); pseudo-labels whose probability is below
  ``min_confidence`` are left out.
* ``segment``: one class per pixel: per-pixel CE against the original's argmax map (low-confidence pixels left
  out; source labels are never used, the refiner's crops do not carry masks).
* ``detect``: the dense SqueezeDet head outputs per anchor: BCE of the confidence logit against the original's
  confidence, plus the cross-entropy of the class distribution against the original's and the smooth-L1 of the
  box deltas against the original's, both weighted by the original's confidence.

The model is frozen (eval mode, no parameter gradients); gradients flow through it into the generator. Refiner
images (``[-1, 1]``, the refiner's channels and crop size) are brought to the task model's input by
:class:`TaskInput` (``[0, 1]``, its channels, its image size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simreal.errors import ConfigError

KINDS = ("classify", "segment", "detect")
IGNORE = -100  # cross-entropy ignore index for left-out samples / pixels
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's RGB -> L conversion that the task model was trained on


class TaskInput:
    """Refiner images (B, C, h, w) in [-1, 1] -> the task model's input (B, channels, H, W) in [0, 1].

    ``resize="bilinear"`` (antialiased, like the PIL resize of :class:`simreal.datasets.torchdata.FolderSource`)
    or ``"area"`` (average pooling for integer down-scaling, as the in-memory digits refiner does)."""

    def __init__(self, channels: int, size: Sequence[int], resize: Literal["bilinear", "area"] = "bilinear") -> None:
        self.channels = int(channels)
        self.size = (int(size[0]), int(size[1]))
        self.resize = resize

    def __call__(self, x: Tensor) -> Tensor:
        y = (x + 1.0) * 0.5
        if y.shape[1] != self.channels:
            if self.channels == 1:
                w = torch.tensor(_LUMA, dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
                y = (y * w).sum(1, keepdim=True)
            else:
                y = y.expand(-1, 3, -1, -1)
        if tuple(y.shape[-2:]) != self.size:
            if self.resize == "area":
                y = F.interpolate(y, size=self.size, mode="area")
            else:
                y = F.interpolate(y, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return y


def _zero(t: Tensor) -> Tensor:
    return t.sum() * 0.0


class SemanticConsistency:
    """The semantic-consistency loss of one frozen task model (see the module docstring).

    Not an ``nn.Module`` child of the refiner on purpose: checkpoints of a refiner never carry the task model."""

    def __init__(
        self,
        model: nn.Module,
        kind: str,
        to_input: Callable[[Tensor], Tensor],
        weight: float = 1.0,
        *,
        use_labels: bool = True,
        both_directions: bool = True,
        min_confidence: float = 0.0,
        num_classes: int | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"consistency: task {kind!r} is not supported (expected one of {', '.join(KINDS)})")
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.kind = kind
        self.to_input = to_input
        self.weight = float(weight)
        self.use_labels = use_labels
        self.both_directions = both_directions
        self.min_confidence = float(min_confidence)
        self.num_classes = num_classes  # classification: needed by class-conditional discriminators

    def to(self, device: Any) -> SemanticConsistency:
        """Move the frozen model (e.g. next to the refiner's networks)."""
        self.model.to(device)
        return self

    def _out(self, x: Tensor) -> Any:
        return self.model(self.to_input(x))[0]

    # ------------------------------------------------------------------ targets
    def _hard_targets(self, logits: Tensor, labels: Tensor | None) -> Tensor:
        """Class per sample (B,) or per pixel (B, H, W): the label where given (>= 0), else the argmax of the
        original's prediction; low-confidence pseudo-labels become IGNORE."""
        prob = torch.softmax(logits.float(), 1)
        conf, pred = prob.max(1)
        if self.min_confidence > 0:
            pred = torch.where(conf >= self.min_confidence, pred, torch.full_like(pred, IGNORE))
        return self._with_labels(pred, labels) if self.kind == "classify" else pred

    def _with_labels(self, pred: Tensor, labels: Tensor | None) -> Tensor:
        """``pred`` (B,) with the source label wherever one is given (>= 0) and labels are used."""
        if labels is None or not self.use_labels:
            return pred
        lab = labels.to(pred.device).long()
        return torch.where(lab >= 0, lab, pred)

    @torch.no_grad()
    def reference(self, x: Tensor) -> Any:
        """The frozen model's output on original images (no gradient): what translations are held to, and what
        class-conditional discriminators take the classes from — compute it once per batch and pass it on."""
        return self._out(x.detach())

    @torch.no_grad()
    def classes(self, x: Tensor, labels: Tensor | None = None, ref: Tensor | None = None) -> Tensor:
        """Classification: the class of each refiner-space image (B,) long, for class-conditional
        discriminators: the label where given (>= 0, and labels are used), else the task model's prediction
        (argmax, whatever its confidence); ``ref``: :meth:`reference` of ``x`` when already computed."""
        if self.kind != "classify":
            raise ConfigError(f"class-conditional discriminators need a classify task model, not {self.kind!r}")
        return self._with_labels((self.reference(x) if ref is None else ref).argmax(1), labels)

    # ------------------------------------------------------------------ the loss
    def loss(self, original: Tensor, translated: Tensor, labels: Tensor | None = None, ref: Any = None) -> Tensor:
        """``weight`` x the consistency of ``translated`` with ``original`` (refiner-space images); ``labels``
        (B,) long, -1 where a sample has none (classification only); ``ref``: :meth:`reference` of ``original``
        when already computed."""
        if ref is None:
            ref = self.reference(original)
        out = self._out(translated)
        if self.kind == "detect":
            return self.weight * dense_detection_consistency(out["raw"], ref["raw"])
        target = self._hard_targets(ref, labels)
        if not bool((target != IGNORE).any()):
            return _zero(out)
        return self.weight * F.cross_entropy(out.float(), target, ignore_index=IGNORE)

    def losses(self, real_a: Tensor, fake_b: Tensor, labels_a: Tensor | None = None, real_b: Tensor | None = None,
               fake_a: Tensor | None = None, ref_a: Any = None, ref_b: Any = None) -> dict[str, Tensor]:
        """The generator loss terms: ``sem_A`` (synthetic -> refined) and, when both directions are on and the
        backward translation is given (CycleGAN), ``sem_B`` (real -> synthetic-looking, pseudo-labels);
        ``ref_a``/``ref_b``: :meth:`reference` of ``real_a``/``real_b`` when already computed."""
        out = {"sem_A": self.loss(real_a, fake_b, labels_a, ref_a)}
        if self.both_directions and real_b is not None and fake_a is not None:
            out["sem_B"] = self.loss(real_b, fake_a, None, ref_b)
        return out


def dense_detection_consistency(raw: Tensor, ref: Tensor) -> Tensor:
    """Consistency of SqueezeDet head outputs ``raw`` with the original's ``ref`` (both (B, N, C + 5): class
    logits, confidence logit, 4 box deltas): BCE(conf) + conf-weighted soft CE(class) + conf-weighted smooth-L1
    (deltas), the weights summing to one over the batch's anchors."""
    c = raw.shape[-1] - 5
    raw, ref = raw.float(), ref.detach().float()
    conf_ref = torch.sigmoid(ref[..., c])
    l_conf = F.binary_cross_entropy_with_logits(raw[..., c], conf_ref)
    w = conf_ref / conf_ref.sum().clamp_min(1e-8)
    l_cls = (w * -(torch.softmax(ref[..., :c], -1) * torch.log_softmax(raw[..., :c], -1)).sum(-1)).sum()
    l_box = (w * F.smooth_l1_loss(raw[..., c + 1:], ref[..., c + 1:], reduction="none").sum(-1)).sum()
    return l_conf + l_cls + l_box


# ---------------------------------------------------------------------- from a training run
class RunConsistency(SemanticConsistency):
    """Semantic consistency with the selected model of a ``simreal train`` run (:func:`simreal.load_run`)."""

    def __init__(self, run: str | Path, weight: float = 1.0, *, use_labels: bool = True,
                 both_directions: bool = True, min_confidence: float = 0.0) -> None:
        from simreal.adapt.api import load_run

        loaded = load_run(run)
        if loaded.config.task not in KINDS:
            raise ConfigError(f"consistency.run {run}: a {loaded.config.task!r} run; semantic consistency needs a "
                              f"{', '.join(KINDS)} run")
        self.run = Path(run)
        self.task = loaded.task
        self.image_size = tuple(loaded.config.data.image_size)
        super().__init__(loaded.model, loaded.config.task, TaskInput(loaded.config.data.channels, self.image_size),
                         weight, use_labels=use_labels, both_directions=both_directions,
                         min_confidence=min_confidence, num_classes=int(loaded.task.num_classes))

    def label_lookup(self, dataset: Any, items: Sequence[tuple[int, Any]]) -> Callable[[Sequence[int]], Tensor] | None:
        """For classification with labelled source images: refiner sample indices -> labels (B,) long, -1 where an
        image has none (its pseudo-label is used). None when labels are not used."""
        if self.kind != "classify" or not self.use_labels or not getattr(dataset, "has_image_labels", False):
            return None
        labels = []
        for i, _ in items:
            t = self.task.target(dataset, dataset.record(i), self.image_size)
            labels.append(-1 if t is None else int(t))
        table = torch.tensor(labels, dtype=torch.long)

        def lookup(idx: Sequence[int]) -> Tensor:
            return table[torch.as_tensor(list(idx), dtype=torch.long)]

        return lookup


__all__ = ["IGNORE", "KINDS", "RunConsistency", "SemanticConsistency", "TaskInput", "dense_detection_consistency"]
