"""The refiner config (``refiner.yaml``): pydantic models with the reference defaults.

CycleGAN defaults follow junyanz/pytorch-CycleGAN-and-pix2pix; CUT defaults follow
taesungp/contrastive-unpaired-translation; AGGAN defaults follow its ``exp_01.json``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from simreal.config import ComputeSettings, StrictModel


class NetConfig(StrictModel):
    generator: Literal["resnet", "unet"] = Field(
        "resnet", description="resnet (CycleGAN/CUT's ResNet generator) or unet"
    )
    n_blocks: int = Field(9, ge=1, description="residual blocks of the resnet generator (6 or 9 in the reference)")
    unet_downs: int = Field(7, ge=5, description="U-Net levels; inputs are padded to multiples of 2**unet_downs")
    ngf: int = Field(64, ge=1, description="generator filters in the first layer")
    ndf: int = Field(64, ge=1, description="discriminator filters in the first layer")
    n_layers_d: int = Field(3, ge=1, description="PatchGAN layers (3 = 70x70 PatchGAN)")
    dropout: bool = Field(False, description="dropout in the generator's residual blocks")
    skip: bool = Field(False, description="additive skip: output = clamp(input + G(input), -1, 1)")
    init_type: Literal["normal", "xavier", "kaiming", "orthogonal"] | None = Field(
        None, description="weight initialisation; null: the model's reference default"
    )
    init_gain: float = Field(0.02, description="scale of the normal/xavier/orthogonal initialisation")


class DataConfig(StrictModel):
    channels: Literal[1, 3] | None = Field(None, description="None: detect from the images (must agree)")
    load_size: int | None = Field(None, ge=1, description="resize the shorter side to this before cropping")
    crop_size: int = Field(256, ge=8, description="side of the random training crops, pixels")
    flip: bool = Field(True, description="random horizontal flips during training")
    max_images: int | None = Field(None, ge=1, description="use at most this many images per domain (null: all)")
    cache_mb: int = Field(1024, ge=0, description="decoded images kept in memory")
    workers: int = Field(0, ge=0, description="data-loader processes preparing batches ahead of the training loop "
                         "(0: in the loop); batches are a function of the iteration, so results do not depend on it")


class PerceptualConfig(StrictModel):
    extractor: Literal["none", "vgg16", "discriminator"] = Field(
        "none",
        description="feature extractor of the perceptual losses: none, vgg16 (local weights) or the discriminator",
    )
    vgg_weights: str | None = Field(None, description="local torchvision-format vgg16 state dict")
    vgg_layers: list[str] = Field(
        default_factory=lambda: ["pool2", "pool5"], description="vgg16 layers whose features are compared"
    )
    disc_layers: list[int] = Field(default_factory=lambda: [1, 2], description="0-based LeakyReLU outputs of D")
    lambda_cycle_feat: float = Field(0.0, ge=0, description="weight of the feature-space cycle loss")
    lambda_identity_feat: float = Field(
        0.0, ge=0, description="weight of the feature-space identity loss (input vs output)"
    )
    lambda_mean_feat: float = Field(
        0.0, ge=0, description="weight of the loss pulling the batch's mean feature toward the real set's"
    )
    mean_momentum: float = Field(0.99, ge=0, lt=1, description="EMA of the real set's mean feature")


class LossConfig(StrictModel):
    gan_mode: Literal["lsgan", "vanilla"] = Field(
        "lsgan", description="lsgan (least squares, the reference default) or vanilla (cross-entropy)"
    )
    lambda_A: float = Field(10.0, ge=0, description="cycle loss weight A -> B -> A")
    lambda_B: float = Field(10.0, ge=0, description="cycle loss weight B -> A -> B")
    lambda_identity: float = Field(0.5, ge=0, description="scaled by lambda_A/lambda_B as in the reference")
    lambda_mask_identity: float = Field(0.0, ge=0, description="PTGAN: L1 between input and output in the mask")
    perceptual: PerceptualConfig = Field(
        default_factory=PerceptualConfig, description="feature-space losses (SimGAN/PTGAN style)"
    )


class AGGANConfig(StrictModel):
    enabled: bool = Field(False, description="attention-guided CycleGAN: learned attention masks keep the background")
    switch_epoch: int = Field(30, ge=0, description="epoch from which the attention mask is thresholded")
    threshold: float = Field(0.1, ge=0, le=1, description="attention values below it are set to 0 after switch_epoch")
    nf: int = Field(32, ge=1, description="filters of the attention networks")


class CUTConfig(StrictModel):
    lambda_gan: float = Field(1.0, ge=0, description="weight of the GAN loss")
    lambda_nce: float = Field(1.0, ge=0, description="weight of the PatchNCE loss")
    nce_idt: bool = Field(True, description="CUT: also NCE on (y, G(y)); FastCUT: false and lambda_nce 10")
    nce_layers: list[int] = Field(
        default_factory=lambda: [0, 4, 7, 10, 14],
        description="indices into the resnet generator's layer list",
    )
    num_patches: int = Field(256, ge=2, description="locations sampled per layer for PatchNCE")
    nce_t: float = Field(0.07, gt=0, description="temperature of the PatchNCE softmax")
    netf_nc: int = Field(256, ge=1, description="channels of the PatchNCE projection MLP")


class TrainConfig(StrictModel):
    seed: int = Field(0, description="root seed of initialisation, data order and crops")
    epochs: int = Field(100, ge=0, description="epochs at constant learning rate")
    epochs_decay: int = Field(100, ge=0, description="epochs of linear decay to 0")
    iterations_per_epoch: int | None = Field(None, ge=1, description="default max(|A|, |B|) / batch_size")
    batch_size: int = Field(1, ge=1, description="images per domain per step (the global batch: each of N "
                            "data-parallel processes takes 1/N of it)")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate of generators and discriminators")
    beta1: float = Field(0.5, description="Adam beta1")
    beta2: float = Field(0.999, description="Adam beta2")
    pool_size: int = Field(50, ge=0, description="image pool of past fakes shown to the discriminators (0: none; "
                           "per process under data parallelism)")
    checkpoint_every: int = Field(1, ge=1, description="epochs between checkpoints")
    keep_checkpoints: int = Field(3, ge=1, description="checkpoints kept (the latest k)")
    num_samples: int = Field(4, ge=0, description="rows of the per-epoch sample grid")
    log_every: int = Field(10, ge=1, description="iterations per metrics.jsonl line")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default)")


class CropConfig(StrictModel):
    enabled: bool = Field(
        False, description="train and apply on object-centred crops (re-inserted into the full images)"
    )
    size: int = Field(64, ge=8, description="side of the crops, pixels")
    rotate_upright: bool = Field(False, description="rotate so the object points away from the centre (an "
                                 "annotation's 'rotation', in degrees, wins when present)")
    center: tuple[float, float] | None = Field(
        None, description="image centre (x, y) for rotation; default: the record's 'image_center' (calibrated "
        "fisheye scenes), else the middle")
    feather: float = Field(0.25, ge=0, le=0.5, description="window ramp width as a fraction of the crop")
    mask_dilate: int = Field(0, ge=0, description="grow the blend mask by this many pixels")
    reinsert: Literal["delta", "replace"] = Field(
        "delta", description="delta: add the refiner's change (exact for unchanged pixels); replace: paste"
    )


class ConsistencyConfig(StrictModel):
    """Semantic consistency (CyCADA) and label-free refiner selection with a frozen task model."""

    run: str | None = Field(
        None, description="`simreal train` run (classify, segment or detect) whose selected model is the frozen "
                          "task model, trained on the source (synthetic) data")
    weight: float = Field(
        0.0, ge=0, description="weight of the semantic-consistency loss (CyCADA uses 1); 0: off")
    use_labels: bool = Field(
        True, description="classification: the source image's label as the target where it has one, else the "
                          "task model's prediction on the original")
    both_directions: bool = Field(
        True, description="CycleGAN: also real -> synthetic-looking against the task model's pseudo-labels on "
                          "the real images")
    min_confidence: float = Field(
        0.0, ge=0, le=1, description="pseudo-labels (or pixels) below this softmax probability are left out")
    conditional_discriminator: bool = Field(
        False, description="classification: the discriminators also see each image's class (one-hot maps: the "
                           "source label, or the task model's prediction; its pseudo-label for real images), so "
                           "a refined image must look like a real image of its own class")
    fid_images: int = Field(
        256, ge=0, description="per checkpoint: task-space FID/KID between this many refined source and real "
                               "samples, in the task model's feature space (0: off; needs run or "
                               "inception_weights)")
    inception_weights: str | None = Field(
        None, description="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: each checkpoint is also scored by "
                          "FID/KID in Inception's feature space (inception_fid, inception_kid) on the same samples")
    inception_dims: Literal[64, 192, 768, 2048] = Field(
        2048, description="Inception feature block for inception_fid (pytorch-fid's dims; 2048: the standard FID)")

    @model_validator(mode="after")
    def _check(self) -> ConsistencyConfig:
        if self.weight > 0 and not self.run:
            raise ValueError("consistency.weight > 0 needs consistency.run (a `simreal train` run folder)")
        if self.conditional_discriminator and not self.run:
            raise ValueError("consistency.conditional_discriminator needs consistency.run (a classify run whose "
                             "model gives the classes)")
        return self


class RefinerConfig(ComputeSettings):
    """Everything ``simreal refine train`` needs besides the datasets (and where it runs: ``device``,
    ``precision``, ``deterministic``)."""

    model: Literal["cyclegan", "cut"] = Field(
        "cyclegan", description="cyclegan (two generators, cycle loss) or cut (one generator, PatchNCE)"
    )
    net: NetConfig = Field(default_factory=NetConfig, description="generator and discriminator architecture")
    data: DataConfig = Field(default_factory=DataConfig, description="image loading and augmentation")
    loss: LossConfig = Field(default_factory=LossConfig, description="loss weights")
    aggan: AGGANConfig = Field(default_factory=AGGANConfig, description="attention-guided CycleGAN")
    cut: CUTConfig = Field(default_factory=CUTConfig, description="CUT / FastCUT settings (model: cut)")
    train: TrainConfig = Field(default_factory=TrainConfig, description="schedule, optimiser and checkpoints")
    crops: CropConfig = Field(default_factory=CropConfig, description="crop mode for small objects in large images")
    consistency: ConsistencyConfig = Field(
        default_factory=ConsistencyConfig,
        description="semantic consistency (CyCADA) and per-checkpoint task-space FID/KID with a frozen task model")

    @model_validator(mode="after")
    def _check(self) -> RefinerConfig:
        if self.aggan.enabled and self.model != "cyclegan":
            raise ValueError("aggan.enabled needs model: cyclegan")
        if self.model == "cut" and self.net.generator != "resnet":
            raise ValueError("model cut needs net.generator: resnet (PatchNCE uses its encoder layers)")
        if self.model == "cut" and self.loss.perceptual.lambda_cycle_feat > 0:
            raise ValueError("loss.perceptual.lambda_cycle_feat needs model: cyclegan (CUT has no cycle)")
        size = self.crops.size if self.crops.enabled else self.data.crop_size
        need = 3 * 2**self.net.n_layers_d
        if size < need:
            key = "crops.size" if self.crops.enabled else "data.crop_size"
            raise ValueError(
                f"{key} {size} is too small for the {self.net.n_layers_d}-layer PatchGAN (needs >= {need}); "
                "use larger training crops or a smaller net.n_layers_d"
            )
        p = self.loss.perceptual
        if (p.lambda_cycle_feat or p.lambda_identity_feat or p.lambda_mean_feat) and p.extractor == "none":
            raise ValueError("perceptual loss weights are set but loss.perceptual.extractor is 'none'")
        if p.extractor == "discriminator" and self.consistency.conditional_discriminator:
            raise ValueError("loss.perceptual.extractor 'discriminator' cannot be used with "
                             "consistency.conditional_discriminator (its features need the class)")
        if p.extractor == "vgg16" and not p.vgg_weights:
            raise ValueError("loss.perceptual.extractor vgg16 needs loss.perceptual.vgg_weights (a local file)")
        return self

    def architecture(self) -> dict[str, object]:
        """The fields a checkpoint's tensors depend on (a resumed run must match them)."""
        return {
            "model": self.model,
            "net": self.net.model_dump(mode="json"),
            "aggan": self.aggan.enabled,
            "aggan_nf": self.aggan.nf,
            "conditional_discriminator": self.consistency.conditional_discriminator,
            "cut": {"nce_layers": self.cut.nce_layers, "netf_nc": self.cut.netf_nc} if self.model == "cut" else None,
        }
