"""The objective of Feutry, Piantanida & Duhamel (ICASSP 2020), eqs. 12-15.

Notation: x an image, x_hat = AE(x) its anonymized version, z its private label (K classes), p the
empirical distribution of z over the training set, q(.|x_hat) = softmax(C(x_hat)) the private classifier,
s the selector bit (1: the pair fed to D is (original, anonymized); 0: (anonymized, original)).

* eq. 13, the discriminator:          BCE_D  = mean_i BCE(D(pair_i), s_i)
* eq. 14, the private classifier:     L_priv = mean_i -log q(z_i | x_hat_i)
* eq. 15, the random-guessing loss:   L_obj  = mean_i sum_k -p_k log q(k | x_hat_i)
* eq. 12, the autoencoder:            L_AE   = BCE_adv + lambda * |L_obj - L_priv|

For any classifier whose output does not depend on z, E[L_priv] = E[L_obj] (the cross-entropy of a
classifier that knows nothing about z equals its cross-entropy against the label prior), so the privacy
term is zero in expectation exactly when the classifier's view of x_hat carries no information on z; a
classifier that is confidently right (L_priv small) or confidently wrong in a systematic way (L_priv much
larger than L_obj) is penalised alike. The autoencoder's adversarial term BCE_adv is D's cross-entropy
against the swapped selector bits 1 - s (the non-saturating form of maximising BCE_D): the autoencoder
wins when D cannot tell which image of the pair is the original, which (D seeing both) drives x_hat toward
x when lambda = 0. The batch means are taken before the absolute value, as in eq. 12.

:func:`objective_terms` evaluates all terms from logits in torch (differentiable);
:func:`objective_reference` recomputes them in plain Python floats for checking by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def empirical_prior(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The empirical distribution p of the private labels (class indices 0..K-1)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    return counts / counts.sum()


def discriminator_bce(d_logits: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Eq. 13: D's binary cross-entropy on the selector bits ``s`` (1 = original first)."""
    return F.binary_cross_entropy_with_logits(d_logits.reshape(-1), s.float().reshape(-1))


def adversarial_bce(d_logits: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The autoencoder's term of eq. 12: D's cross-entropy against the swapped bits ``1 - s``."""
    return F.binary_cross_entropy_with_logits(d_logits.reshape(-1), 1.0 - s.float().reshape(-1))


def private_ce(c_logits: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Eq. 14: the private classifier's cross-entropy on the true private labels."""
    return F.cross_entropy(c_logits, z)


def objective_ce(c_logits: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Eq. 15: the private classifier's cross-entropy against the empirical label distribution."""
    return -(F.log_softmax(c_logits, dim=1) * prior.to(c_logits)).sum(dim=1).mean()


def privacy_term(c_logits: torch.Tensor, z: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """|L_obj - L_priv| of eq. 12."""
    return (objective_ce(c_logits, prior) - private_ce(c_logits, z)).abs()


@dataclass(frozen=True)
class ObjectiveTerms:
    """Every term of eqs. 12-15 for one batch (tensors; ``autoencoder`` is what the autoencoder minimises)."""

    bce_d: torch.Tensor
    bce_adv: torch.Tensor
    l_priv: torch.Tensor
    l_obj: torch.Tensor
    privacy: torch.Tensor
    autoencoder: torch.Tensor


def objective_terms(d_logits: torch.Tensor, s: torch.Tensor, c_logits: torch.Tensor, z: torch.Tensor,
                    prior: torch.Tensor, lam: float) -> ObjectiveTerms:
    """Eqs. 12-15 from D's logits on the selector's pairs and the private classifier's logits on x_hat."""
    l_priv = private_ce(c_logits, z)
    l_obj = objective_ce(c_logits, prior)
    privacy = (l_obj - l_priv).abs()
    bce_adv = adversarial_bce(d_logits, s)
    return ObjectiveTerms(discriminator_bce(d_logits, s), bce_adv, l_priv, l_obj, privacy, bce_adv + lam * privacy)


def objective_reference(d_logits: Sequence[float], s: Sequence[int], c_logits: Sequence[Sequence[float]],
                        z: Sequence[int], prior: Sequence[float], lam: float) -> dict[str, float]:
    """The same terms in plain Python, one formula per line (for recomputing by hand)."""

    def sigmoid(v: float) -> float:
        return 1.0 / (1.0 + math.exp(-v))

    def bce(v: float, t: float) -> float:
        return -(t * math.log(sigmoid(v)) + (1 - t) * math.log(1 - sigmoid(v)))

    def log_softmax(row: Sequence[float]) -> list[float]:
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        return [v - lse for v in row]

    n = len(d_logits)
    bce_d = sum(bce(d_logits[i], s[i]) for i in range(n)) / n
    bce_adv = sum(bce(d_logits[i], 1 - s[i]) for i in range(n)) / n
    logq = [log_softmax(r) for r in c_logits]
    l_priv = sum(-logq[i][z[i]] for i in range(len(z))) / len(z)
    l_obj = sum(-sum(p * lq for p, lq in zip(prior, logq[i], strict=True)) for i in range(len(z))) / len(z)
    privacy = abs(l_obj - l_priv)
    return {"bce_d": bce_d, "bce_adv": bce_adv, "l_priv": l_priv, "l_obj": l_obj, "privacy": privacy,
            "autoencoder": bce_adv + lam * privacy}
