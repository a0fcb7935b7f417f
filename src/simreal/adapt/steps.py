"""One optimisation step of each method, as plain functions (the trainer loops over them; tests
recompute them by hand)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simreal.datasets.torchdata import Batch
from simreal.nn.grl import grad_reverse


def supervised_step(model: nn.Module, task: Any, batch: Batch, opt: torch.optim.Optimizer) -> dict[str, float]:
    """Task loss on the labelled samples of the batch (source only, mixed, fine-tuning)."""
    out, _ = model(batch.x)
    loss = task.loss(out, batch.targets, batch.labelled)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": float(loss.detach()), "task_loss": float(loss.detach())}


def dann_losses(
    model: nn.Module, disc: nn.Module, task: Any, batch: Batch, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
    """DANN with k domains: one joint forward pass; task loss on labelled samples; pooled features
    pass a gradient-reversal layer (coefficient ``alpha``) into the k-way discriminator (cross-entropy
    on domain ids). Returns (total, task loss, domain loss, per-domain discriminator accuracy)."""
    out, feat = model(batch.x)
    task_loss = task.loss(out, batch.targets, batch.labelled)
    d_logits = disc(grad_reverse(feat, alpha))
    d_loss = F.cross_entropy(d_logits, batch.domain)
    with torch.no_grad():
        hit = d_logits.argmax(1) == batch.domain
        accs = {f"disc_acc/{int(d)}": float(hit[batch.domain == d].float().mean()) for d in batch.domain.unique()}
    return task_loss + d_loss, task_loss, d_loss, accs


def dann_step(
    model: nn.Module, disc: nn.Module, task: Any, batch: Batch, alpha: float, opt: torch.optim.Optimizer
) -> dict[str, float]:
    """One DANN update of encoder, task head and discriminator with a single optimiser."""
    total, task_loss, d_loss, accs = dann_losses(model, disc, task, batch, alpha)
    opt.zero_grad(set_to_none=True)
    total.backward()
    opt.step()
    return {"loss": float(total.detach()), "task_loss": float(task_loss.detach()),
            "domain_loss": float(d_loss.detach()), "alpha": alpha, **accs}


def adda_step(
    src_model: nn.Module, tgt_model: nn.Module, disc: nn.Module, x_src: torch.Tensor, x_tgt: torch.Tensor,
    opt_d: torch.optim.Optimizer, opt_t: torch.optim.Optimizer,
) -> dict[str, float]:
    """ADDA (Tzeng et al. 2017): the discriminator learns source (0) vs target (1) features; then the
    target encoder is updated with the inverted-label GAN loss (target features labelled 0). The
    source encoder is frozen (no gradient, eval mode)."""
    with torch.no_grad():
        f_src = src_model.pooled(src_model.encode(x_src))
    f_tgt = tgt_model.pooled(tgt_model.encode(x_tgt))
    d_in = torch.cat([f_src, f_tgt.detach()])
    d_lab = torch.cat([torch.zeros(len(f_src)), torch.ones(len(f_tgt))]).long()
    d_logits = disc(d_in)
    d_loss = F.cross_entropy(d_logits, d_lab)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    g_logits = disc(f_tgt)
    g_loss = F.cross_entropy(g_logits, torch.zeros(len(f_tgt), dtype=torch.long))
    opt_t.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_t.step()
    with torch.no_grad():
        hit = d_logits.argmax(1) == d_lab
    return {"loss": float(g_loss.detach()), "domain_loss": float(d_loss.detach()),
            "disc_acc/0": float(hit[: len(f_src)].float().mean()), "disc_acc/1": float(hit[len(f_src):].float().mean())}
