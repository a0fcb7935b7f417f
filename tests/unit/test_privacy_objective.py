"""The anonymizer's objective (eqs. 12-15) recomputed by hand, and the networks' plumbing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simreal.privacy.nets import ConvAutoencoder, PairDiscriminator, select_pairs
from simreal.privacy.objective import (
    adversarial_bce,
    discriminator_bce,
    empirical_prior,
    objective_reference,
    objective_terms,
)

LN2, LN3 = math.log(2), math.log(3)


def test_objective_equals_the_formula_on_hand_made_logits() -> None:
    # D: logit 0 -> sigmoid 1/2; logit ln 3 -> sigmoid 3/4. Selector bits s = (1, 0).
    d = torch.tensor([0.0, LN3])
    s = torch.tensor([1, 0])
    # C: logits (ln 3, 0) -> q = (3/4, 1/4); (0, 0) -> q = (1/2, 1/2). True labels z = (0, 1). Prior (1/4, 3/4).
    c = torch.tensor([[LN3, 0.0], [0.0, 0.0]])
    z = torch.tensor([0, 1])
    prior = torch.tensor([0.25, 0.75])
    lam = 2.0
    bce_d = (-math.log(1 / 2) - math.log(1 - 3 / 4)) / 2  # targets 1 and 0: ln 2 and ln 4
    bce_adv = (-math.log(1 - 1 / 2) - math.log(3 / 4)) / 2  # swapped targets 0 and 1
    l_priv = (-math.log(3 / 4) - math.log(1 / 2)) / 2
    l_obj = (-(0.25 * math.log(3 / 4) + 0.75 * math.log(1 / 4)) - (0.25 * math.log(1 / 2) + 0.75 * math.log(1 / 2))) / 2
    privacy = abs(l_obj - l_priv)
    expected = {"bce_d": bce_d, "bce_adv": bce_adv, "l_priv": l_priv, "l_obj": l_obj, "privacy": privacy,
                "autoencoder": bce_adv + lam * privacy}
    assert bce_d == pytest.approx(1.5 * LN2)  # the hand values themselves, in closed form
    assert privacy == pytest.approx(0.75 * LN2 - 0.375 * math.log(4 / 3))  # = 0.41198...
    terms = objective_terms(d, s, c, z, prior, lam)
    ref = objective_reference([0.0, LN3], [1, 0], [[LN3, 0.0], [0.0, 0.0]], [0, 1], [0.25, 0.75], lam)
    for key, value in expected.items():
        assert float(getattr(terms, key)) == pytest.approx(value, rel=1e-6), key
        assert ref[key] == pytest.approx(value, rel=1e-12), key


def test_privacy_term_is_zero_for_a_classifier_blind_to_z_and_positive_otherwise() -> None:
    prior = torch.tensor([0.25, 0.75])
    z = torch.tensor([0, 1, 1, 1])  # the batch follows the prior exactly
    blind = torch.tensor([[0.3, -1.2]]).repeat(4, 1)  # any output that ignores z
    assert float(objective_terms(torch.zeros(4), torch.ones(4), blind, z, prior, 1.0).privacy) == pytest.approx(
        0.0, abs=1e-6)
    right = torch.tensor([[5.0, -5.0], [-5.0, 5.0], [-5.0, 5.0], [-5.0, 5.0]])
    wrong = -right  # confidently wrong in a systematic way: as revealing, also penalised
    for logits in (right, wrong):
        assert float(objective_terms(torch.zeros(4), torch.ones(4), logits, z, prior, 1.0).privacy) > 1.0


def test_adversarial_term_is_the_discriminator_loss_with_swapped_bits() -> None:
    g = torch.Generator().manual_seed(0)
    d = torch.randn(16, generator=g)
    s = torch.randint(0, 2, (16,), generator=g)
    assert torch.allclose(adversarial_bce(d, s), discriminator_bce(d, 1 - s))
    # a D that is right makes the autoencoder's term large, a D at chance gives ln 2 to both
    right = torch.where(s.bool(), 6.0, -6.0)
    assert float(discriminator_bce(right, s)) < 0.01 < 5 < float(adversarial_bce(right, s))
    assert float(adversarial_bce(torch.zeros(16), s)) == pytest.approx(LN2)


def test_empirical_prior() -> None:
    assert empirical_prior(np.array([0, 2, 2, 2]), 4).tolist() == [0.25, 0.0, 0.75, 0.0]


def test_selector_puts_the_reference_first_when_s_is_one() -> None:
    ref = torch.full((2, 1, 4, 4), 1.0)
    cand = torch.full((2, 1, 4, 4), 2.0)
    pair = select_pairs(ref, cand, torch.tensor([1, 0]))
    assert pair.shape == (2, 2, 4, 4)
    assert pair[0, 0].eq(1).all() and pair[0, 1].eq(2).all()
    assert pair[1, 0].eq(2).all() and pair[1, 1].eq(1).all()
    d = PairDiscriminator(1, "smallcnn", 4)
    assert d(ref, cand, torch.tensor([1, 0])).shape == (2,)


@pytest.mark.parametrize("shape", [(1, 20, 20), (3, 30, 22), (1, 32, 32)])
def test_autoencoder_keeps_any_size_and_range(shape: tuple[int, int, int]) -> None:
    ae = ConvAutoencoder(shape[0], width=8, code=4)
    with torch.no_grad():
        y = ae(torch.rand(2, *shape))
    assert y.shape == (2, *shape) and float(y.min()) >= 0 and float(y.max()) <= 1
    c, w, k = shape[0], 8, 4  # parameter count by hand: 4 encoder and 4 decoder convolutions with biases
    enc = (c * w * 9 + w) + (w * 2 * w * 16 + 2 * w) + (2 * w * 2 * w * 16 + 2 * w) + (2 * w * k + k)
    dec = (k * 2 * w * 9 + 2 * w) + (2 * w * 2 * w * 16 + 2 * w) + (2 * w * w * 16 + w) + (w * c * 9 + c)
    assert sum(p.numel() for p in ae.parameters()) == enc + dec
