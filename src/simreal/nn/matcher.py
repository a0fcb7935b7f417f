"""Proposal/anchor matching and balanced sampling of the two-stage detectors (torchvision semantics).

:class:`Matcher` gives every prediction (anchor or proposal) the index of its best ground-truth box,
or ``BELOW_LOW_THRESHOLD`` (-1, background) / ``BETWEEN_THRESHOLDS`` (-2, ignored). With
``allow_low_quality_matches`` each ground truth also keeps its best predictions (ties included) even
below the high threshold, as in Faster R-CNN's RPN. :class:`BalancedSampler` draws up to
``fraction x batch`` positives at random, then fills the batch with negatives (it may come out short).
"""

from __future__ import annotations

import torch


class Matcher:
    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high: float, low: float, allow_low_quality_matches: bool = False) -> None:
        if low > high:
            raise ValueError("Matcher: low threshold above the high one")
        self.high, self.low, self.allow_low = high, low, allow_low_quality_matches

    def __call__(self, quality: torch.Tensor) -> torch.Tensor:
        """``quality`` (G ground truths, P predictions) -> matched index per prediction (P,)."""
        vals, matches = quality.max(dim=0)
        best = matches.clone()
        matches[vals < self.low] = self.BELOW_LOW_THRESHOLD
        matches[(vals >= self.low) & (vals < self.high)] = self.BETWEEN_THRESHOLDS
        if self.allow_low:
            per_gt = quality.max(dim=1).values
            preds = torch.nonzero(quality == per_gt[:, None])[:, 1]
            matches[preds] = best[preds]
        return matches


class BalancedSampler:
    """Random positives (label >= 1) up to ``positive_fraction * batch_size_per_image`` and negatives
    (label 0) for the rest; labels -1 are never drawn."""

    def __init__(self, batch_size_per_image: int, positive_fraction: float) -> None:
        self.batch, self.fraction = batch_size_per_image, positive_fraction

    def __call__(self, labels: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the sampled positives and negatives of one image."""
        pos = torch.nonzero(labels >= 1).squeeze(1)
        neg = torch.nonzero(labels == 0).squeeze(1)
        n_pos = min(pos.numel(), int(self.batch * self.fraction))
        n_neg = min(neg.numel(), self.batch - n_pos)
        p = torch.randperm(pos.numel(), generator=generator)[:n_pos].to(pos.device)
        q = torch.randperm(neg.numel(), generator=generator)[:n_neg].to(neg.device)
        return pos[p], neg[q]
