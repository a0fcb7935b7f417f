"""BatchNorm over the global batch of a data-parallel job, on any device.

With N processes each holding 1/N of a batch, plain BatchNorm normalises with per-rank statistics, so the
result depends on N. :func:`convert_sync_batchnorm` swaps every BatchNorm layer for one whose training
statistics are those of the whole global batch: PyTorch's :class:`torch.nn.SyncBatchNorm` on CUDA (its
fused kernels), and :class:`PortableSyncBatchNorm` elsewhere (PyTorch's refuses CPU tensors), which
all-reduces per-channel sums with a differentiable all-reduce (two passes: the mean, then the centred
squares, for the accuracy of a single-process BatchNorm). State-dict
keys are unchanged, so checkpoints move freely between converted and plain models.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; its gradient is the sum over ranks of the incoming gradients (every rank's loss
    depends on every rank's input through the sum)."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        import torch.distributed as dist

        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        import torch.distributed as dist

        out = grad.clone()
        dist.all_reduce(out)
        return out


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``x`` over the ranks of the default process group."""
    return _AllReduceSum.apply(x)


class PortableSyncBatchNorm(_BatchNorm):
    """BatchNorm (1d/2d/3d) whose training statistics cover every rank's batch; plain BatchNorm in eval
    mode or in a single process."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {x.dim()}-D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or _world() == 1:
            return super().forward(x)
        self._check_input_dim(x)
        x = x.to(self.weight.dtype if self.affine else torch.float32)  # also under autocast, as F.batch_norm
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        sums = all_reduce_sum(torch.cat([x.sum(dims), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        var = all_reduce_sum((x - mean.view(shape)).pow(2).sum(dims)) / n  # biased, as BatchNorm normalises
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr,operator]
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp(min=1), alpha=m)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
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

