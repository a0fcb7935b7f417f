"""CycleGAN's generator loss terms against hand-computed values with every lambda != 1 (a missing
lambda factor, or lambda_A/lambda_B swapped, changes them)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from simreal.refine.config import RefinerConfig
from simreal.refine.models import CycleGAN


def _model(lambda_identity: float) -> CycleGAN:
    cfg = RefinerConfig.model_validate({
        "model": "cyclegan",
        "net": {"ngf": 4, "ndf": 4, "n_blocks": 1, "n_layers_d": 2},
        "data": {"crop_size": 32},
        "loss": {"lambda_A": 2.0, "lambda_B": 3.0, "lambda_identity": lambda_identity},
        "train": {"pool_size": 0},
    })
    torch.manual_seed(0)
    return CycleGAN(cfg, 3)


@pytest.mark.parametrize("lambda_identity", [0.7, 0.0])
def test_generator_loss_terms_match_hand_computation(lambda_identity: float) -> None:
    m = _model(lambda_identity)
    torch.manual_seed(1)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    g_a, g_b, d_a, d_b = (copy.deepcopy(n) for n in (m.G_A, m.G_B, m.D_A, m.D_B))
    losses = m.train_step(a, b, None, None, epoch=0)
    with torch.no_grad():  # the same terms with the networks as they were before the update
        fake_b, fake_a = g_a(a), g_b(b)
        mse = lambda x, target: F.mse_loss(x, torch.full_like(x, target))  # noqa: E731 (LSGAN)
        expect = {
            "G_A": mse(d_b(fake_b), 1.0),
            "G_B": mse(d_a(fake_a), 1.0),
            "cycle_A": F.l1_loss(g_b(fake_b), a) * 2.0,
            "cycle_B": F.l1_loss(g_a(fake_a), b) * 3.0,
        }
        if lambda_identity:
            # identity of G_A (which maps A -> B) is measured on B images, weighted by lambda_B
            expect["idt_A"] = F.l1_loss(g_a(b), b) * 3.0 * lambda_identity
            expect["idt_B"] = F.l1_loss(g_b(a), a) * 2.0 * lambda_identity
    assert ("idt_A" in losses) == bool(lambda_identity)
    for k, v in expect.items():
        assert losses[k] == pytest.approx(float(v), rel=1e-5, abs=1e-6), k
    assert losses["G"] == pytest.approx(sum(float(v) for v in expect.values()), rel=1e-5)
    # the discriminators' loss: LSGAN on real (1) and generated (0) images, halved
    with torch.no_grad():
        expect_db = 0.5 * (mse(d_b(b), 1.0) + mse(d_b(fake_b), 0.0))
    assert losses["D_B"] == pytest.approx(float(expect_db), rel=1e-5)
