"""The training config (``simreal train --config train.yaml``); see docs/train.md."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simreal.config import StrictModel
from simreal.datasets.augment import AugmentConfig
from simreal.tasks.detect_config import DetectConfig

METHODS = ("source_only", "mixed", "dann", "adda", "finetune")


class DomainConfig(StrictModel):
    """One training domain: a dataset folder or image folder."""

    path: str
    name: str | None = None
    role: Literal["source", "target"] = "source"
    labelled: bool = True  # False: task labels of this domain are never used for training


class DataConfig(StrictModel):
    domains: list[DomainConfig] = Field(min_length=1)
    source_val: str | None = None  # labelled source validation set (for selection)
    source_val_fraction: float = Field(0.1, ge=0.0, lt=1.0)  # split off the labelled sources when no source_val
    target_val: str | None = None  # labelled target validation set: used only with selection.allow_target_labels
    image_size: tuple[int, int] = (64, 64)
    channels: Literal[1, 3] = 3


class ModelConfig(StrictModel):
    arch: str = "resnet18"
    width: int = Field(32, ge=4)  # smallcnn width
    weights: str | None = None  # local torchvision-format or simreal weights for the backbone
    embedding_dim: int = Field(128, ge=8)  # reid


class MethodConfig(StrictModel):
    name: str = "source_only"
    alpha: float = Field(1.0, ge=0.0)  # GRL coefficient (constant) or its maximum (dann schedule)
    schedule: Literal["constant", "dann"] = "dann"
    gamma: float = 10.0
    disc_hidden: list[int] = [512, 256]
    adda_steps: int = Field(1000, ge=1)
    adda_lr: float = 2e-4
    finetune_steps: int = Field(500, ge=1)
    finetune_lr_factor: float = Field(0.1, gt=0.0)
    triplet_weight: float = Field(0.0, ge=0.0)  # reid: weight of the batch-hard triplet loss
    triplet_margin: float = 0.3

    @model_validator(mode="after")
    def _known(self) -> MethodConfig:
        if self.name not in METHODS:
            raise ValueError(f"unknown method {self.name!r} (expected one of {', '.join(METHODS)})")
        return self


class OptimConfig(StrictModel):
    steps: int = Field(1000, ge=1)
    batch_per_domain: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    lr_schedule: Literal["constant", "dann", "cosine"] = "dann"


class SelectionConfig(StrictModel):
    policy: Literal["last", "source_val", "iwv", "target_val"] = "source_val"
    allow_target_labels: bool = False  # required for policy target_val (oracle selection)
    eval_every: int = Field(200, ge=1)


class SegmentOptions(StrictModel):
    class_weights: list[float] | None = None  # pixel cross-entropy weights: background, then each class


class ReidOptions(StrictModel):
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0)  # identity cross-entropy
    instances_per_identity: int = Field(4, ge=2)  # K of the P x K batches used with the triplet loss
    distance: Literal["euclidean", "cosine"] = "euclidean"  # retrieval distance between embeddings
    normalize: bool = True  # L2-normalise embeddings before the Euclidean distance


class TrainConfig(StrictModel):
    task: Literal["classify", "segment", "detect", "reid"] = "classify"
    seed: int = 0
    data: DataConfig
    model: ModelConfig = ModelConfig()
    method: MethodConfig = MethodConfig()
    optim: OptimConfig = OptimConfig()
    selection: SelectionConfig = SelectionConfig()
    checkpoint_every: int = Field(200, ge=1)
    segment: SegmentOptions = SegmentOptions()  # task segment only
    reid: ReidOptions = ReidOptions()  # task reid only
    detect: DetectConfig = DetectConfig()  # task detect only (anchors, NMS, loss weights)
    augment: AugmentConfig = Field(AugmentConfig(), description=(
        "Training-batch augmentation for every task (flip, blur/sharpen, colour jitter); see docs/train.md."))
