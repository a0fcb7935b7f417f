"""One optimisation step of each method, as plain functions (the trainer loops over them; tests
recompute them by hand).

Each step takes an optional :class:`simreal.runtime.compute.Compute` (``amp``): forward passes and losses
run under its autocast, backward passes and optimiser steps go through its loss scaler (16-mixed); by
default plain float32. Models may be DistributedDataParallel wrappers (gradients are then averaged over
ranks in backward). Steps return detached 0-dim tensors (no host sync per step; the trainer converts the
ones it logs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simreal.datasets.torchdata import Batch
from simreal.nn.grl import grad_reverse
from simreal.runtime.compute import Compute

_FP32 = Compute()


def supervised_step(model: nn.Module, task: Any, batch: Batch, opt: torch.optim.Optimizer,
                    amp: Compute = _FP32) -> dict[str, torch.Tensor]:
    """Task loss on the labelled samples of the batch (source only, mixed, fine-tuning)."""
    with amp.autocast():
        out, _ = model(batch.x)
        loss = task.loss(out, batch.targets, batch.labelled)
    opt.zero_grad(set_to_none=True)
    amp.backward(loss)
    amp.step(opt)
    amp.update()
    return {"loss": loss.detach(), "task_loss": loss.detach()}


def domain_accuracy(logits: torch.Tensor, domain: torch.Tensor) -> dict[str, torch.Tensor]:
    """Discriminator accuracy per domain id (0..k-1, k = logits' width), computed on the device."""
    with torch.no_grad():
        hit = (logits.argmax(1) == domain).float()
        onehot = (domain[:, None] == torch.arange(logits.shape[1], device=domain.device)[None, :]).float()
        acc = (onehot * hit[:, None]).sum(0) / onehot.sum(0).clamp(min=1)
    return {f"disc_acc/{d}": acc[d] for d in range(logits.shape[1])}


def dann_losses(
    model: nn.Module, disc: nn.Module, task: Any, batch: Batch, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """DANN with k domains: one joint forward pass; task loss on labelled samples; pooled features
    pass a gradient-reversal layer (coefficient ``alpha``) into the k-way discriminator (cross-entropy
    on domain ids). Returns (total, task loss, domain loss, per-domain discriminator accuracy)."""
    out, feat = model(batch.x)
    task_loss = task.loss(out, batch.targets, batch.labelled)
    d_logits = disc(grad_reverse(feat, alpha))
    d_loss = F.cross_entropy(d_logits, batch.domain)
    return task_loss + d_loss, task_loss, d_loss, domain_accuracy(d_logits, batch.domain)


def dann_step(
    model: nn.Module, disc: nn.Module, task: Any, batch: Batch, alpha: float, opt: torch.optim.Optimizer,
    amp: Compute = _FP32,
) -> dict[str, Any]:
    """One DANN update of encoder, task head and discriminator with a single optimiser."""
    with amp.autocast():
        total, task_loss, d_loss, accs = dann_losses(model, disc, task, batch, alpha)
    opt.zero_grad(set_to_none=True)
    amp.backward(total)
    amp.step(opt)
    amp.update()
    return {"loss": total.detach(), "task_loss": task_loss.detach(), "domain_loss": d_loss.detach(), "alpha": alpha,
            **accs}


def pooled_features(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> the model's pooled encoder features (what the ADDA discriminator sees)."""
    return lambda x: model.pooled(model.encode(x))


class PooledFeatures(nn.Module):
    """A module whose forward is a task model's pooled encoder features (so ADDA's target encoder can be
    wrapped in DistributedDataParallel, which only sees ``forward``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.pooled(self.model.encode(x))


def adda_step(
    src_model: nn.Module, tgt_model: nn.Module, disc: nn.Module, x_src: torch.Tensor, x_tgt: torch.Tensor,
    opt_d: torch.optim.Optimizer, opt_t: torch.optim.Optimizer, amp: Compute = _FP32,
    tgt_features: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """ADDA (Tzeng et al. 2017): the discriminator learns source (0) vs target (1) features; then the
    target encoder is updated with the inverted-label GAN loss (target features labelled 0). The
    source encoder is frozen (no gradient, eval mode). ``tgt_features`` computes the target encoder's
    features (default: ``tgt_model``'s pooled encoder output; the trainer passes a DDP-wrapped one)."""
    feats = tgt_features or pooled_features(tgt_model)
    with amp.autocast():
        with torch.no_grad():
            f_src = src_model.pooled(src_model.encode(x_src))
        f_tgt = feats(x_tgt)
        d_in = torch.cat([f_src, f_tgt.detach()])
        d_lab = torch.cat([torch.zeros(len(f_src), dtype=torch.long, device=f_src.device),
                           torch.ones(len(f_tgt), dtype=torch.long, device=f_src.device)])
        d_logits = disc(d_in)
        d_loss = F.cross_entropy(d_logits, d_lab)
    opt_d.zero_grad(set_to_none=True)
    amp.backward(d_loss)
    amp.step(opt_d)
    with amp.autocast():
        g_logits = disc(f_tgt)
        g_loss = F.cross_entropy(g_logits, torch.zeros(len(f_tgt), dtype=torch.long, device=f_tgt.device))
    opt_t.zero_grad(set_to_none=True)
    amp.backward(g_loss)
    amp.step(opt_t)
    amp.update()
    acc = domain_accuracy(d_logits, d_lab)
    return {"loss": g_loss.detach(), "domain_loss": d_loss.detach(), **acc}
