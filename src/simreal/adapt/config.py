"""The training config (``simreal train --config train.yaml``); see docs/train.md and docs/config.md."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from simreal.config import ComputeSettings, StrictModel
from simreal.datasets.augment import AugmentConfig
from simreal.tasks.detect_config import DetectConfig
from simreal.tasks.instance_config import InstanceConfig

METHODS = ("source_only", "mixed", "dann", "adda", "finetune")
Method = Literal["source_only", "mixed", "dann", "adda", "finetune"]
Policy = Literal["last", "source_val", "iwv", "snd", "im", "target_val"]


class DomainConfig(StrictModel):
    """One training domain: a dataset folder or image folder."""

    path: str = Field(description="dataset folder (simreal contract) or image folder (flat or one sub-folder per "
                                  "class)")
    name: str | None = Field(None, description="display name in logs and reports (default: the dataset's name)")
    role: Literal["source", "target"] = Field("source", description="source (labelled training data) or target (the "
                                                                      "domain the model must work on)")
    labelled: bool = Field(True, description="false: this domain's task labels are never used for training")
    refiner: str | None = Field(None, description="refiner run folder (simreal refine train): this domain's images "
                                                  "are refined by its generator (full resolution, before resizing) "
                                                  "as they are loaded; with method dann: CyCADA's pixel + feature "
                                                  "adaptation in one config")


class DataConfig(StrictModel):
    """Where the images come from and how they are fed to the model."""

    domains: list[DomainConfig] = Field(min_length=1, description="the training domains; DANN learns to confuse them")
    source_val: str | None = Field(None, description="labelled source validation set (for model selection)")
    source_val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="fraction of the first labelled source "
                                       "split off for validation when source_val is not given")
    target_val: str | None = Field(None, description="labelled target validation set: used only with "
                                                     "selection.allow_target_labels (oracle selection)")
    image_size: tuple[int, int] = Field((64, 64), description="(height, width) images are resized to")
    channels: Literal[1, 3] = Field(3, description="1 (grey) or 3 (RGB) input channels")
    workers: int = Field(0, ge=0, description="data-loader processes preparing batches ahead of the training loop "
                         "(0: in the loop); batches are a function of the step, so results do not depend on it")


class ModelConfig(StrictModel):
    """The task network: an architecture of the model registry (simreal.nn.registry) for the task."""

    arch: str | None = Field(None, description="architecture; allowed values depend on the task (classify/reid: "
                             "smallcnn, resnet18, resnet34, resnet50; segment: unet_small, unet_resnet18/34/50; "
                             "detect: squeezedet_tiny, squeezedet_tiny_s4, squeezedet, resnet18/34/50; instance: "
                             "maskrcnn_resnet18/34/50_fpn); default: the task's default")
    width: int = Field(32, ge=4, description="base channel width of the small networks (smallcnn, unet_small, "
                                             "squeezedet_tiny, squeezedet_tiny_s4)")
    weights: str | None = Field(None, description="local torchvision-format or simreal weights file for the "
                                                  "backbone, or a whole task model of the same config (a run's "
                                                  "checkpoints/final.safetensors); never downloaded")
    embedding_dim: int = Field(128, ge=8, description="reid: embedding size (equal to the backbone width: no "
                                                      "reduction layer)")
    base_width: int = Field(64, ge=4, description="ResNet architectures (classifier, U-Net encoder, Mask R-CNN "
                            "backbone): stem/layer1 channels, every stage scales with it; 64 = torchvision's "
                            "layout (needed for torchvision weights), smaller for CPU-sized runs")


class LevelConfig(StrictModel):
    """One domain discriminator of multi-level adaptation (method dann with ``levels``)."""

    name: str = Field(description="feature level: 'pooled' (the model's pooled features), backbone stages "
                      "('layer1'..'layer4'), FPN levels ('p2'..'p6'), 'roi' (instance level: box-head features of "
                      "the RoIs), U-Net decoder levels ('dec1'..), 'output' (output space); the model lists its own")
    weight: float = Field(1.0, ge=0.0, description="weight of this level's domain loss in the total loss")
    alpha: float | None = Field(None, ge=0.0, description="GRL coefficient of this level (or its maximum under the "
                                "dann schedule); default method.alpha")
    schedule: Literal["constant", "dann"] | None = Field(None, description="GRL coefficient schedule of this level; "
                                                         "default method.schedule")
    discriminator: Literal["auto", "mlp", "patch", "conv"] = Field(
        "auto", description="mlp: global average pool + MLP (the paper's layer-4 head); patch: 1x1 convs, one "
        "domain prediction per location (DA-Faster image level); conv: 3x3 stride-2 convs with LeakyReLU "
        "(AdaptSegNet-style, output space); auto: mlp for vectors (pooled, roi), patch for maps, conv for 'output'")
    hidden: list[int] | None = Field(None, description="hidden widths; default method.disc_hidden for mlp, [256] "
                                     "for patch, [64, 128, 256] for conv")


class ConsistencyConfig(StrictModel):
    """DA-Faster R-CNN's image/instance consistency: the image-level domain probabilities (averaged over
    locations) should agree with each RoI's instance-level domain probabilities."""

    image: str = Field(description="the image-level level (a map level in method.levels, e.g. p3)")
    instance: str = Field("roi", description="the instance-level level (in method.levels)")
    weight: float = Field(0.1, ge=0.0, description="loss weight (DA-Faster reimplementations: 0.1)")
    norm: Literal["l2", "l1"] = Field("l2", description="distance: l2 (the paper) or l1 (krumo's PyTorch code)")


class MethodConfig(StrictModel):
    """The adaptation method and its settings."""

    name: Method = Field("source_only", description="source_only | mixed (balanced batches over labelled domains) "
                         "| dann (k-domain gradient reversal) | adda | finetune (pretrain, then labelled target)")
    alpha: float = Field(1.0, ge=0.0, description="DANN: GRL coefficient (constant) or its maximum (dann schedule)")
    schedule: Literal["constant", "dann"] = Field("dann", description="DANN: GRL coefficient schedule; dann = "
                                                  "alpha * (2 / (1 + exp(-gamma p)) - 1) over training progress p")
    gamma: float = Field(10.0, description="DANN: steepness of the dann schedule")
    disc_hidden: list[int] = Field([512, 256], description="hidden layer widths of the domain discriminator MLP")
    levels: list[LevelConfig] | None = Field(None, description="dann: multi-level adaptation, one discriminator per "
                                             "named feature level with its own weight and GRL coefficient; unset: "
                                             "one MLP discriminator on the pooled features")
    consistency: ConsistencyConfig | None = Field(None, description="dann with levels: DA-Faster image/instance "
                                                  "consistency term")
    adda_steps: int = Field(1000, ge=1, description="ADDA: adversarial steps after source pre-training")
    adda_lr: float = Field(2e-4, gt=0.0, description="ADDA: Adam learning rate of the target encoder and the "
                                                      "discriminator (reference: 2e-4, beta1 0.5)")
    pretrain: bool = Field(True, description="adda, finetune: run the source pre-training phase (optim.steps); "
                           "false: model.weights already holds a model trained on the sources (e.g. a source_only "
                           "run's checkpoints/final.safetensors), so one source model serves several targets")
    finetune_steps: int = Field(500, ge=1, description="finetune: steps on the labelled target domain")
    finetune_lr_factor: float = Field(0.1, gt=0.0, description="finetune: learning rate = optim.lr * factor")
    triplet_weight: float = Field(0.0, ge=0.0, description="reid: weight of the batch-hard triplet loss")
    triplet_margin: float = Field(0.3, description="reid: margin of the batch-hard triplet loss")


    @model_validator(mode="after")
    def _levels(self) -> MethodConfig:
        if self.levels is not None:
            if self.name != "dann":
                raise ValueError(f"method.levels: used by method dann only (method is {self.name})")
            if not self.levels:
                raise ValueError("method.levels: give at least one level (or leave it unset)")
            names = [lv.name for lv in self.levels]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"method.levels: level {dup[0]!r} given twice")
        if self.consistency is not None:
            names = [lv.name for lv in self.levels or []]
            for key in ("image", "instance"):
                if getattr(self.consistency, key) not in names:
                    raise ValueError(f"method.consistency.{key}: {getattr(self.consistency, key)!r} is not among "
                                     f"method.levels ({', '.join(names) or 'none'})")
        return self


class OptimConfig(StrictModel):
    """Optimisation of the task model."""

    steps: int = Field(1000, ge=1, description="training steps (the pre-training phase of adda and finetune)")
    batch_per_domain: int = Field(32, ge=1, description="images drawn from each domain per step "
                                  "(the global batch: each of N data-parallel processes takes 1/N of it)")
    lr: float = Field(1e-3, gt=0.0, description="Adam(W) learning rate")
    weight_decay: float = Field(1e-4, ge=0.0, description="AdamW weight decay (0: Adam)")
    lr_schedule: Literal["constant", "dann", "cosine"] = Field(
        "dann", description="learning-rate factor per phase: constant, dann = 1 / (1 + 10 p)^0.75, or cosine")
    sync_batchnorm: bool = Field(True, description="data-parallel runs (--nproc, torchrun): BatchNorm statistics "
                                 "over the global batch, so the result does not depend on the number of processes; "
                                 "false: per-process statistics (faster)")


class SelectionConfig(StrictModel):
    """Which checkpoint becomes the run's model. No target labels unless explicitly allowed."""

    policy: Policy | None = Field(None, description="last | source_val (labelled source validation) | iwv "
                                  "(importance-weighted validation) | snd (soft neighbourhood density of the "
                                  "unlabelled target predictions; classify) | im (information maximisation of "
                                  "the unlabelled target predictions: H(mean p) - mean H(p); classify) | target_val "
                                  "(oracle: needs allow_target_labels); default: iwv for adda, source_val otherwise")
    allow_target_labels: bool = Field(False, description="required for policy target_val (oracle selection); "
                                                         "reports say when it was used")
    eval_every: int = Field(200, ge=1, description="steps between selection evaluations (last phase)")


class SegmentOptions(StrictModel):
    """Options of task segment."""

    class_weights: list[float] | None = Field(None, description="pixel cross-entropy weights: background, then "
                                                                "each class")


class ReidOptions(StrictModel):
    """Options of task reid."""

    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0, description="identity cross-entropy label smoothing")
    instances_per_identity: int = Field(4, ge=2, description="K of the P x K batches used with the triplet loss")
    distance: Literal["euclidean", "cosine"] = Field("euclidean", description="retrieval distance between "
                                                                               "embeddings")
    normalize: bool = Field(True, description="L2-normalise embeddings before the Euclidean distance")


class TrainConfig(ComputeSettings):
    """A training run: task, data domains, model, adaptation method, optimisation and selection; where it
    runs (``device``, ``precision``, ``deterministic``)."""

    task: str = Field("classify", description="classify | segment | detect | instance | reid (the task registry)")
    seed: int = Field(0, description="root seed: batches, initialisation and splits are functions of it")
    data: DataConfig = Field(description="domains and image format")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the task network")
    method: MethodConfig = Field(default_factory=MethodConfig, description="the adaptation method")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="optimisation")
    selection: SelectionConfig = Field(default_factory=SelectionConfig, description="model selection")
    checkpoint_every: int = Field(200, ge=1, description="steps between checkpoints (resume points)")
    keep_checkpoints: int = Field(2, ge=1, description="how many of the latest checkpoints are kept")
    segment: SegmentOptions = Field(default_factory=SegmentOptions, description="task segment only")
    reid: ReidOptions = Field(default_factory=ReidOptions, description="task reid only")
    detect: DetectConfig = Field(default_factory=DetectConfig, description="task detect only (anchors, NMS, loss "
                                                                           "weights)")
    instance: InstanceConfig = Field(default_factory=InstanceConfig, description="task instance only (Mask R-CNN "
                                     "settings with torchvision's defaults, image scores, selection metric)")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description=(
        "training-batch augmentation for every task (flip, blur/sharpen, colour jitter); see docs/train.md"))

    @field_validator("task")
    @classmethod
    def _task(cls, v: str) -> str:
        from simreal.tasks.registry import task_names

        if v not in task_names():
            raise ValueError(f"unknown task {v!r} (expected one of {', '.join(task_names())})")
        return v

    @model_validator(mode="after")
    def _resolve(self) -> TrainConfig:
        from simreal.nn.registry import list_models
        from simreal.tasks.registry import TASKS

        entry = TASKS.get(self.task)
        family = entry.meta["model_family"]
        allowed = list_models(family)
        if self.model.arch is None:
            self.model.arch = DEFAULT_ARCH.get(self.task, allowed[0])
        elif self.model.arch not in allowed:
            raise ValueError(f"model.arch: {self.model.arch!r} is not an architecture for task {self.task} "
                             f"(expected one of {', '.join(allowed)})")
        if not self.method.pretrain and self.method.name in ("adda", "finetune") and not self.model.weights:
            raise ValueError(f"method.pretrain: false needs model.weights (a model trained on the sources) for "
                             f"method {self.method.name}")
        if self.selection.policy is None:
            # source_val picks ADDA's least-adapted checkpoint by construction: importance weighting
            # scores the source-validation loss under the target distribution instead
            self.selection.policy = "iwv" if self.method.name == "adda" else "source_val"
        return self


DEFAULT_ARCH: dict[str, Any] = {"classify": "resnet18", "reid": "resnet18", "segment": "unet_resnet18",
                                "detect": "resnet18", "instance": "maskrcnn_resnet50_fpn"}
