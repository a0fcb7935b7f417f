"""Refiners learn a toy translation with a known answer (a fixed colour shift) and the variants
behave as specified (masked identity, AGGAN attention, perceptual losses, LR schedule)."""

from __future__ import annotations

import pytest
import torch

from simreal.errors import WeightsError
from simreal.nn.vgg import VGG16Features
from simreal.refine.config import RefinerConfig
from simreal.refine.models import CycleGAN, build_model, lr_multiplier

SHIFT = 0.6


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _flat(n: int, s: int = 32) -> torch.Tensor:
    c = torch.rand(n, 3, 1, 1) * 0.8 - 0.9
    return (c + 0.05 * torch.randn(n, 3, s, s)).clamp(-1, 1)


def _cfg(model: str, **extra: object) -> RefinerConfig:
    data: dict = {
        "model": model,
        "net": {"ngf": 8, "ndf": 8, "n_blocks": 1, "skip": True},
        "loss": {"lambda_identity": 0.0},
        "train": {"lr": 2e-3, "pool_size": 0},
        "cut": {"num_patches": 32},
    }
    for k, v in extra.items():
        data.setdefault(k, {}).update(v)  # type: ignore[union-attr]
    return RefinerConfig.model_validate(data)


def _shift_error(model: torch.nn.Module) -> float:
    with torch.no_grad():
        x = _flat(16)
        y = model.refine(x)  # type: ignore[operator]
        return float(((y - x).mean(dim=(2, 3)) - SHIFT).abs().mean())


@pytest.mark.parametrize("kind", ["cyclegan", "cut"])
def test_generator_approaches_a_fixed_colour_shift(kind: str) -> None:
    torch.manual_seed(0)
    model = build_model(_cfg(kind), 3)
    before = _shift_error(model)
    for _ in range(30):
        model.train_step(_flat(4), (_flat(4) + SHIFT).clamp(-1, 1), None, None, 0)
    after = _shift_error(model)
    assert before > 0.5
    assert after < 0.5 * before, (before, after)


def test_masked_identity_keeps_the_masked_region() -> None:
    torch.manual_seed(0)
    cfg = _cfg("cyclegan", loss={"lambda_mask_identity": 200.0})
    model = build_model(cfg, 3)
    mask = torch.zeros(4, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    for _ in range(30):
        model.train_step(_flat(4), (_flat(4) + SHIFT).clamp(-1, 1), mask, None, 0)
    with torch.no_grad():
        x = _flat(8)
        d = (model.refine(x) - x).abs().mean(1)
    inside = float(d[:, 8:24, 8:24].mean())
    outside = float(d[:, :4].mean())
    assert inside < 0.05, inside
    assert outside > 3 * inside, (inside, outside)


class _FixedMask(torch.nn.Module):
    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask.expand(x.shape[0], 1, -1, -1)


def test_aggan_with_fixed_mask_changes_nothing_outside() -> None:
    torch.manual_seed(0)
    cfg = _cfg("cyclegan", aggan={"enabled": True, "switch_epoch": 1, "nf": 4})
    model = build_model(cfg, 3)
    assert isinstance(model, CycleGAN)
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 10:20, 5:25] = 1
    model.att_A = _FixedMask(mask)
    model.att_B = _FixedMask(mask)
    for epoch in (0, 1):  # before and after the switch epoch (masked discriminators, no norm)
        losses = model.train_step(_flat(2), (_flat(2) + SHIFT).clamp(-1, 1), None, None, epoch)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
    assert not model.D_B.norm_enabled
    x = _flat(3)
    with torch.no_grad():
        y = model.refine(x)
    outside = mask.expand_as(x) == 0
    assert torch.equal(y[outside], x[outside])
    assert not torch.equal(y[~outside], x[~outside])


def test_aggan_attention_freezes_after_switch() -> None:
    torch.manual_seed(0)
    model = build_model(_cfg("cyclegan", aggan={"enabled": True, "switch_epoch": 1, "nf": 4}), 3)
    before = [p.clone() for p in model.att_A.parameters()]
    model.train_step(_flat(2), _flat(2), None, None, 1)
    assert all(torch.equal(a, b) for a, b in zip(before, model.att_A.parameters(), strict=True))
    model.train_step(_flat(2), _flat(2), None, None, 0)  # before the switch they train
    assert not all(torch.equal(a, b) for a, b in zip(before, model.att_A.parameters(), strict=True))


def test_discriminator_perceptual_losses_are_logged() -> None:
    torch.manual_seed(0)
    cfg = _cfg(
        "cyclegan",
        loss={
            "perceptual": {
                "extractor": "discriminator",
                "disc_layers": [0, 1],
                "lambda_cycle_feat": 1.0,
                "lambda_identity_feat": 1.0,
                "lambda_mean_feat": 1.0,
            }
        },
    )
    model = build_model(cfg, 3)
    losses = model.train_step(_flat(2), _flat(2), None, None, 0)
    assert {"cycle_feat", "idt_feat", "mean_feat"} <= set(losses)
    assert set(model.feature_ema) == {"A.0", "A.1", "B.0", "B.1"}
    assert model.feature_ema["B.0"].shape == (8,)


def test_vgg_perceptual_loss_with_local_weights(tmp_path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    sd = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision file also has the classifier
    torch.save(sd, path)
    cfg = _cfg(
        "cut",
        loss={
            "perceptual": {
                "extractor": "vgg16",
                "vgg_weights": str(path),
                "vgg_layers": ["relu1_2", "pool2"],
                "lambda_identity_feat": 1.0,
                "lambda_mean_feat": 0.5,
            }
        },
    )
    model = build_model(cfg, 3)
    losses = model.train_step(_flat(2), _flat(2), None, None, 0)
    assert losses["idt_feat"] > 0 and "mean_feat" in losses
    bad = cfg.model_copy(deep=True)
    bad.loss.perceptual.vgg_weights = str(tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="not found"):
        build_model(bad, 3)


def test_linear_lr_policy_matches_reference() -> None:
    # n_epochs=100, n_epochs_decay=100: 1 for epochs 0..99, then 1 - k/101
    assert lr_multiplier(0, 100, 100) == 1.0
    assert lr_multiplier(98, 100, 100) == 1.0
    assert lr_multiplier(99, 100, 100) == pytest.approx(1.0 - 0 / 101)
    assert lr_multiplier(100, 100, 100) == pytest.approx(1.0 - 1 / 101)
    assert lr_multiplier(199, 100, 100) == pytest.approx(1.0 - 100 / 101)


def test_config_rejects_inconsistent_variants() -> None:
    with pytest.raises(ValueError, match="aggan"):
        RefinerConfig.model_validate({"model": "cut", "aggan": {"enabled": True}})
    with pytest.raises(ValueError, match="extractor"):
        RefinerConfig.model_validate({"loss": {"perceptual": {"lambda_mean_feat": 1.0}}})


def test_shipped_configs_are_valid() -> None:
    from pathlib import Path

    from simreal.config import load_config

    folder = Path(__file__).resolve().parents[2] / "configs" / "refine"
    files = sorted(folder.glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        # cycada.yaml leaves the task-model run to the command line (its weight > 0 needs one)
        needs_run = f.name == "cycada.yaml"
        cfg = load_config(RefinerConfig, f, {"consistency.run": "runs/source"} if needs_run else None)
        assert cfg.model in ("cyclegan", "cut")
        assert (cfg.consistency.weight > 0) == needs_run
