"""Configs of ``simreal anonymize``: the anonymizer run (``anon.yaml``) and the audit (``audit.yaml``).

Defaults are those of the font-digits benchmark (20x20 grey images, 12 identities) on a CPU; larger images
want wider networks (``model.*``) and more steps."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simreal.config import StrictModel

ATTACKERS = ("logistic", "mlp", "smallcnn", "resnet18")


class AnonDataConfig(StrictModel):
    private_label: str | None = Field(
        None, description="image-record field holding the private label (a dotted path such as 'font' or "
                          "'params.writer'); the CLI's --private-label sets it")
    channels: Literal[1, 3] | None = Field(None, description="1 (grey) or 3 (RGB); None: detected from the images")
    split_field: str = Field("split", description="record field naming each image's split (absent: no split)")
    holdout: str | None = Field(
        "test", description="records whose split field has this value are left out of training (the audit tests "
                            "on images the anonymizer never saw); null trains on every record")


class AnonModelConfig(StrictModel):
    width: int = Field(16, ge=4, description="autoencoder base channels (encoder w, 2w, 2w at 1/4 resolution)")
    code_channels: int = Field(8, ge=1, description="autoencoder bottleneck channels at 1/4 resolution")
    discriminator: str = Field("smallcnn", description="classifier architecture of the discriminator D "
                                                       "(simreal.nn.registry), fed the selector's image pair")
    discriminator_width: int = Field(8, ge=4, description="width of D")
    private: str = Field("smallcnn", description="classifier architecture of the private classifier")
    private_width: int = Field(8, ge=4, description="width of the private classifier")


class AnonLossConfig(StrictModel):
    lam: float = Field(1.0, ge=0, description="lambda of eq. 12: weight of the privacy term |L_obj - L_priv|")
    adversarial: float = Field(0.05, ge=0, description="weight of D's adversarial term BCE_adv in the autoencoder "
                                                       "loss (1 with pixel 0 = eq. 12 as printed; see docs)")
    pixel: float = Field(1.0, ge=0, description="weight of the pixel loss in phases 2-3 (0 = eq. 12 as printed; "
                                                "the pixel loss alone drives phase 1)")
    pixel_kind: Literal["bce", "mse", "l1"] = Field(
        "bce", description="pixel loss of phase 1 (and of loss.pixel): bce (images in [0, 1] as probabilities; "
                           "its gradient does not vanish when the sigmoid output saturates), mse or l1")


class AnonTrainConfig(StrictModel):
    pretrain_steps: int = Field(300, ge=0, description="phase 1: autoencoder steps on the pixel loss")
    disc_pretrain_steps: int = Field(100, ge=0, description="phase 2: D (and private classifier) updates "
                                                            "alternating with autoencoder updates on BCE_D")
    steps: int = Field(600, ge=0, description="phase 3: alternating updates on the full objective (eq. 12)")
    batch_size: int = Field(32, ge=2, description="images per step")
    lr: float = Field(2e-3, gt=0, description="Adam learning rate of the autoencoder")
    lr_discriminator: float = Field(5e-4, gt=0, description="Adam learning rate of D")
    lr_private: float = Field(1e-3, gt=0, description="Adam learning rate of the private classifier")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam beta1 of every optimiser")
    disc_updates: int = Field(1, ge=1, description="D updates per autoencoder update (phases 2-3)")
    private_updates: int = Field(1, ge=1, description="private-classifier updates per autoencoder update")
    seed: int = Field(0, description="root seed (batches, selector bits and initial weights)")
    checkpoint_every: int = Field(100, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(2, ge=1, description="checkpoints kept")
    log_every: int = Field(20, ge=1, description="steps between metrics.jsonl records")
    sample_every: int = Field(200, ge=1, description="steps between sample grids (original | anonymized)")
    num_samples: int = Field(8, ge=0, description="images in a sample grid (0: none)")
    threads: int = Field(0, ge=0, description="torch CPU threads (0: torch's default)")


class IntertwinedConfig(StrictModel):
    enabled: bool = Field(False, description="intertwined mode: D's real images are images of one chosen identity, "
                                             "so outputs move toward that identity")
    identity: str | None = Field(None, description="the chosen identity (a private-label value as text); "
                                                   "null: the most frequent one")
    substitute: bool = Field(False, description="apply replaces each output by its nearest (Euclidean) training "
                                                "image of the chosen identity")


class AnonymizeConfig(StrictModel):
    """``anon.yaml``: data, networks, the eq. 12 objective, the three training phases, intertwined mode."""

    data: AnonDataConfig = Field(default_factory=AnonDataConfig, description="which field is private, splits")
    model: AnonModelConfig = Field(default_factory=AnonModelConfig, description="the three networks")
    loss: AnonLossConfig = Field(default_factory=AnonLossConfig, description="lambda and the pixel loss")
    train: AnonTrainConfig = Field(default_factory=AnonTrainConfig, description="phases, optimisers, logging")
    intertwined: IntertwinedConfig = Field(default_factory=IntertwinedConfig,
                                           description="intertwined mode and nearest-neighbour substitution")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")


class AuditConfig(StrictModel):
    """``audit.yaml``: the fresh attackers trained after release."""

    attackers: list[Literal["logistic", "mlp", "smallcnn", "resnet18"]] = Field(
        default_factory=lambda: ["logistic", "mlp", "smallcnn"],
        description="attacker architectures, each trained from scratch on every label and data version")
    width: int = Field(32, ge=4, description="width of the smallcnn attacker (the training networks have 8 by default)")
    hidden: int = Field(256, ge=8, description="hidden units of the two mlp layers")
    max_epochs: int = Field(60, ge=1, description="epoch cap; training stops earlier when validation accuracy "
                                                  "has not improved for `patience` epochs (convergence)")
    patience: int = Field(6, ge=1, description="epochs without validation improvement before stopping")
    batch_size: int = Field(64, ge=2, description="images per step")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="Adam weight decay")
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="share of the training split held out for "
                                                                "early stopping")
    test_fraction: float = Field(0.25, gt=0, lt=0.9, description="share held out for testing when the records "
                                                                 "have no split field")
    split_field: str = Field("split", description="record field naming the split; 'test' records are the test set")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="attacker seeds (mean reported)")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="level of the Wilson confidence intervals")
    clear_trained: bool = Field(True, description="also test attackers trained on the original images on the "
                                                  "anonymized test images")
    shuffled_control: bool = Field(False, description="also train attackers on shuffled private labels (they must "
                                                      "land at chance: a check of the attackers themselves)")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    threads: int = Field(0, ge=0, description="torch CPU threads (0: torch's default)")
