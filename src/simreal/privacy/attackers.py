"""Fresh attackers trained after release: classifiers built from scratch on a label of (anonymized or
original) images, trained to convergence (early stopping on a validation part of the training split,
the best epoch kept) and tested on a held-out split.

Architectures: ``logistic`` (a linear layer on the pixels), ``mlp`` (two hidden layers), ``smallcnn``
and ``resnet18`` (simreal.nn.registry classifiers). Inputs are standardised with the training split's
per-channel mean and deviation.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simreal.nn.registry import create_model
from simreal.privacy.config import AuditConfig
from simreal.runtime.seeding import sample_rng


def build_attacker(arch: str, channels: int, height: int, width: int, num_classes: int, cfg: AuditConfig) -> nn.Module:
    """A freshly initialised attacker of architecture ``arch``."""
    dim = channels * height * width
    if arch == "logistic":
        return nn.Sequential(nn.Flatten(), nn.Linear(dim, num_classes))
    if arch == "mlp":
        h = cfg.hidden
        return nn.Sequential(nn.Flatten(), nn.Linear(dim, h), nn.ReLU(inplace=True), nn.Dropout(0.2),
                             nn.Linear(h, h), nn.ReLU(inplace=True), nn.Dropout(0.2), nn.Linear(h, num_classes))
    return create_model(arch, "classifier", where="attackers", num_classes=num_classes, in_channels=channels,
                        width=cfg.width)


@dataclass(frozen=True)
class FitResult:
    """A trained attacker and how its training went."""

    model: nn.Module
    epochs: int  # epochs run
    best_epoch: int
    val_accuracy: float
    converged: bool  # stopped because validation accuracy stopped improving (not at the epoch cap)
    mean: torch.Tensor
    std: torch.Tensor


def _predict(model: nn.Module, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, device: torch.device,
             batch: int = 512) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for a in range(0, len(x), batch):
            xb = (x[a:a + batch].to(device) - mean) / std
            out.append(model(xb).argmax(1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def fit_attacker(arch: str, x: np.ndarray, y: np.ndarray, num_classes: int, cfg: AuditConfig, seed: int,
                 device: torch.device) -> FitResult:
    """Train an attacker on (x, y) (float32 (N, C, H, W) in [0, 1], class indices) until validation
    accuracy has not improved for ``cfg.patience`` epochs (or ``cfg.max_epochs``); the best epoch is kept."""
    rng = sample_rng(seed, 0, stream=31)
    order = rng.permutation(len(y))
    n_val = max(1, int(round(cfg.val_fraction * len(y))))
    val, tr = order[:n_val], order[n_val:]
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    mean = xt[tr].mean(dim=(0, 2, 3), keepdim=True).to(device)
    std = xt[tr].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3).to(device)
    torch.manual_seed(seed)
    model = build_attacker(arch, x.shape[1], x.shape[2], x.shape[3], num_classes, cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    best = (-1.0, 0, copy.deepcopy(model.state_dict()))
    bs = min(cfg.batch_size, len(tr))
    epoch = 0
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        perm = tr[sample_rng(seed, epoch, stream=32).permutation(len(tr))]
        for a in range(0, len(perm) - bs + 1, bs):  # full batches only (BatchNorm)
            b = perm[a:a + bs]
            xb = (xt[b].to(device) - mean) / std
            loss = F.cross_entropy(model(xb), yt[b].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        acc = float((_predict(model, xt[val], mean, std, device) == y[val]).mean())
        if acc > best[0]:
            best = (acc, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= cfg.patience:
            break
    model.load_state_dict(best[2])
    model.eval()
    converged = epoch - best[1] >= cfg.patience
    return FitResult(model, epoch, best[1], best[0], converged, mean, std)


def accuracy(fit: FitResult, x: np.ndarray, y: np.ndarray, device: torch.device) -> tuple[float, int]:
    """(accuracy, number correct) of a trained attacker on (x, y)."""
    pred = _predict(fit.model, torch.from_numpy(x), fit.mean, fit.std, device)
    correct = int((pred == np.asarray(y)).sum())
    return correct / max(len(y), 1), correct


def wilson_interval(correct: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n``."""
    if n <= 0:
        return (0.0, 1.0)
    from scipy.stats import norm

    zq = float(norm.ppf(0.5 + confidence / 2))
    p = correct / n
    denom = 1 + zq * zq / n
    centre = (p + zq * zq / (2 * n)) / denom
    half = zq * math.sqrt(p * (1 - p) / n + zq * zq / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
