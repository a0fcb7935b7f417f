"""Gradient reversal layer and its coefficient schedules.

Forward is the identity; backward multiplies the incoming gradient by ``-alpha``. The trainer
owns the step counter: the coefficient is a pure function of (step, total_steps), never advanced
by ``forward()`` calls.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.alpha = float(alpha)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.alpha * grad, None


def grad_reverse(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Identity in the forward pass; gradient multiplied by ``-alpha`` in the backward pass."""
    return _GradReverse.apply(x, alpha)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; set ``alpha`` from the trainer each step."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def grl_coefficient(
    step: int, total_steps: int, schedule: str = "dann", alpha: float = 1.0, gamma: float = 10.0
) -> float:
    """GRL coefficient at ``step`` of ``total_steps``.

    ``constant``: ``alpha``. ``dann``: ``alpha * (2 / (1 + exp(-gamma * p)) - 1)`` with
    ``p = step / total_steps`` over the TOTAL training steps (Ganin & Lempitsky, gamma = 10).
    """
    if schedule == "constant":
        return float(alpha)
    if schedule == "dann":
        p = min(max(step / max(total_steps, 1), 0.0), 1.0)
        return float(alpha) * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)
    raise ValueError(f"unknown GRL schedule {schedule!r} (expected 'constant' or 'dann')")
