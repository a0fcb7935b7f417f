"""BatchNorm over the global batch of a data-parallel job, on any device.

With N processes each holding 1/N of a batch, plain BatchNorm normalises with per-rank statistics, so the
result depends on N. :func:`convert_sync_batchnorm` swaps every BatchNorm layer for one whose training
statistics are those of the whole global batch: PyTorch's :class:`torch.nn.SyncBatchNorm` on CUDA (its
fused kernels), and :class:`PortableSyncBatchNorm` elsewhere (PyTorch's refuses CPU tensors): each rank's
statistics from BatchNorm's fused training kernel, merged across ranks (Chan's formula, the accuracy of a
single-process BatchNorm), and the backward of PyTorch's SyncBatchNorm (two per-channel gradient sums
all-reduced) on BatchNorm's fused inference backward. State-dict
keys are unchanged, so checkpoints move freely between converted and plain models.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


_GROUP: list[Any] = []  # [default group, BatchNorm's own group]


def bn_group() -> Any:
    """A process group for BatchNorm's collectives beside the default one, created collectively on the first
    synchronised forward: DistributedDataParallel all-reduces gradient buckets asynchronously on the default
    group while backward runs, and a BatchNorm collective queued behind a 25 MB bucket would stall the
    backward until the bucket is done (measured: 2 gloo processes at 0.9x one instead of 1.6x)."""
    import torch.distributed as dist

    world = dist.group.WORLD
    if not _GROUP or _GROUP[0] is not world:
        _GROUP[:] = [world, dist.new_group(backend=dist.get_backend())]
    return _GROUP[1]


def merge_moments(mean: torch.Tensor, var: torch.Tensor, n: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The global per-channel mean and biased variance, and the global count, from each rank's ``mean``,
    biased ``var`` and count ``n``: gathered in one collective and merged with Chan's parallel formula
    (ranks may hold different batch sizes)."""
    import torch.distributed as dist

    local = torch.cat([mean, var * n, mean.new_tensor([n])])
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local, group=bn_group())
    allp = torch.stack(parts)  # world x (2C + 1)
    c = mean.numel()
    counts = allp[:, -1:]
    total = counts.sum()
    g_mean = (allp[:, :c] * counts).sum(0) / total
    m2 = allp[:, c:2 * c].sum(0) + ((allp[:, :c] - g_mean) ** 2 * counts).sum(0)
    return g_mean, m2 / total, total


class _SyncBatchNormFn(torch.autograd.Function):
    """Training-mode BatchNorm over the global batch with PyTorch's fused CPU kernels.

    Forward: BatchNorm's training kernel normalises with this rank's statistics and returns them; the
    statistics are merged across ranks (:func:`merge_moments`) and one fused pass turns the rank-normalised
    values into globally normalised ones. Backward: BatchNorm's inference backward gives ``dy * invstd * w``
    and this rank's two per-channel gradient sums; the sums are all-reduced and the statistics' share of the
    input gradient is added in two in-place passes (the formula of PyTorch's CUDA SyncBatchNorm). Weight and
    bias gradients are this rank's, like every other parameter's under DistributedDataParallel."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        xhat, mean_l, invstd_l = torch.native_batch_norm(x, None, None, None, None, True, 0.0, eps)
        var_l = (invstd_l.pow(-2) - eps).clamp_(min=0)
        mean, var, total = merge_moments(mean_l, var_l, float(x.numel() // x.shape[1]))
        invstd = torch.rsqrt(var + eps)
        w = weight if weight is not None else torch.ones_like(mean)
        a = invstd / invstd_l * w
        c = (mean_l - mean) * invstd * w + (bias if bias is not None else 0.0)
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = torch.addcmul(c.view(shape), xhat, a.view(shape))
        ctx.save_for_backward(x, w, mean, var, total)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, var, total)
        return y, mean, var, total

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor, *_: Any) -> tuple[torch.Tensor | None, ...]:
        import torch.distributed as dist

        x, w, mean, var, total = ctx.saved_tensors
        # inference-mode backward: dy * invstd * w, sum(dy * (x - mean)) * invstd and sum(dy), local sums
        gi, gw, gb = torch.ops.aten.native_batch_norm_backward(
            dy.contiguous(), x, w, mean, var, None, None, False, ctx.eps, [True, True, True])
        if ctx.needs_input_grad[0]:
            invstd = torch.rsqrt(var + ctx.eps)
            both = torch.cat([gb, gw])
            dist.all_reduce(both, group=bn_group())
            c = mean.numel()
            mean_dy, mean_dy_xmu = both[:c] / total, both[c:] / invstd / total
            k = invstd * w
            big_k = k * invstd * invstd * mean_dy_xmu
            shape = [1, -1] + [1] * (x.dim() - 2)
            # gi - k * mean_dy - (x - mean) * big_k, in two in-place passes
            gi = gi.addcmul_(x, -big_k.view(shape)).add_((mean * big_k - k * mean_dy).view(shape))
        else:
            gi = None
        return gi, gw if ctx.needs_input_grad[1] else None, gb if ctx.needs_input_grad[2] else None, None


class PortableSyncBatchNorm(_BatchNorm):
    """BatchNorm (1d/2d/3d) whose training statistics cover every rank's batch; plain BatchNorm in eval
    mode or in a single process. Two small collectives per layer and step (the moments forward, two
    gradient sums backward) and BatchNorm's fused kernels for the elementwise work."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {x.dim()}-D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or _world() == 1:
            return super().forward(x)
        self._check_input_dim(x)
        x = x.to(self.weight.dtype if self.affine else torch.float32)  # also under autocast, as F.batch_norm
        w, b = (self.weight, self.bias) if self.affine else (None, None)
        y, mean, var, n = _SyncBatchNormFn.apply(x, w, b, self.eps)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr,operator]
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var * n / (n - 1).clamp(min=1), alpha=m)
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm layer of ``module`` made synchronous across ranks (in place where possible; returns
    the converted module)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, (PortableSyncBatchNorm, nn.SyncBatchNorm)):
        ref = next(iter([*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]), None)
        kw = {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
        out = PortableSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                    module.track_running_stats, **kw)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
        for old, new in zip(module.parameters(), out.parameters(), strict=True):
            new.requires_grad_(old.requires_grad)  # e.g. a frozen BNNeck shift stays frozen
    for name, child in module.named_children():
        out.add_module(name, _convert(child))
    return out

