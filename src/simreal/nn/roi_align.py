"""RoIAlign and multi-scale RoIAlign in plain torch, with torchvision's semantics.

:func:`roi_align` reproduces ``torchvision.ops.roi_align`` (its CPU kernel): a box is scaled by
``spatial_scale`` and shifted by -0.5 px when ``aligned`` (the half-pixel convention: pixel ``i``
covers ``[i, i + 1)`` and its value sits at ``i + 0.5``); without ``aligned`` the box is not shifted
and its width/height are clamped to at least 1. Each output bin averages a ``grid_h x grid_w`` grid
of bilinear samples at ``y = y1 + (ph + (iy + 0.5) / grid_h) * bin_h``; ``sampling_ratio <= 0``
uses ``ceil(roi_h / PH)`` samples per bin (adaptive, per box). A sample above ``H`` or below -1
contributes 0 (but counts in the average); samples in [-1, 0] read row 0, samples in [H - 1, H]
row ``H - 1``.

Two exact implementations, autograd supplying both backward passes:

* ``separable`` (the default unless its intermediate exceeds ``SEPARABLE_LIMIT`` values): sampling a
  regular grid bilinearly is separable (the validity rules too), so each box's pooled map is
  ``A_y F A_x^T`` with (PH x H) and (PW x W) matrices averaging each bin's sample weights; two batched
  products whose backward is two more (many times faster than ``grid_sample``'s scatter on a CPU).
* ``grid`` (large maps): the samples are taken with ``grid_sample(align_corners=True,
  padding_mode='border')`` (border padding is exactly the edge clamping above) and averaged by
  pooling, one call per image and distinct sampling grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

SEPARABLE_LIMIT = 1 << 25  # values of the separable method's intermediate (128 MB in float32)


def _sample_coords(lo: torch.Tensor, bin_size: torch.Tensor, pooled: int, grid: int) -> torch.Tensor:
    """(K, pooled * grid) sample coordinates along one axis."""
    p = torch.arange(pooled, device=lo.device, dtype=lo.dtype)
    g = torch.arange(grid, device=lo.device, dtype=lo.dtype)
    off = (p[:, None] + (g[None, :] + 0.5) / grid).reshape(-1)  # (pooled * grid,)
    return lo[:, None] + off[None, :] * bin_size[:, None]


def _normalise(c: torch.Tensor, size: int) -> torch.Tensor:
    return 2.0 * c / (size - 1) - 1.0 if size > 1 else torch.zeros_like(c)


def _align_one_grid(feat: torch.Tensor, boxes: torch.Tensor, pooled: tuple[int, int], grid: tuple[int, int],
                    bin_h: torch.Tensor, bin_w: torch.Tensor) -> torch.Tensor:
    """RoIAlign of ``boxes`` (K, 4; x1, y1 in feature coordinates) on one image ``feat`` (C, H, W) with a
    fixed sampling grid -> (K, C, PH, PW)."""
    c, h, w = feat.shape
    ph, pw = pooled
    gh, gw = grid
    k = boxes.shape[0]
    ys = _sample_coords(boxes[:, 1], bin_h, ph, gh)  # (K, PH*gh)
    xs = _sample_coords(boxes[:, 0], bin_w, pw, gw)  # (K, PW*gw)
    valid = ((ys >= -1.0) & (ys <= h))[:, :, None] & ((xs >= -1.0) & (xs <= w))[:, None, :]
    yn = _normalise(ys, h)[:, :, None].expand(k, ph * gh, pw * gw)
    xn = _normalise(xs, w)[:, None, :].expand(k, ph * gh, pw * gw)
    grid_xy = torch.stack([xn, yn], -1).reshape(1, k * ph * gh, pw * gw, 2).to(feat.dtype)
    s = F.grid_sample(feat[None], grid_xy, mode="bilinear", padding_mode="border", align_corners=True)
    s = s * valid.reshape(1, 1, k * ph * gh, pw * gw).to(feat.dtype)
    pooled_s = F.avg_pool2d(s, (gh, gw)) if gh * gw > 1 else s  # (1, C, K*PH, PW)
    return pooled_s.reshape(c, k, ph, pw).permute(1, 0, 2, 3)


def _axis_weights(lo: torch.Tensor, bin_size: torch.Tensor, pooled: int, grid: int, size: int
                  ) -> tuple[torch.Tensor, ...]:
    """Per box, along one axis: the two neighbour indices and weights of every sample, and its validity
    (torchvision's ``bilinear_interpolate`` rules)."""
    c = _sample_coords(lo, bin_size, pooled, grid)
    valid = (c >= -1.0) & (c <= size)
    c = c.clamp(min=0)
    low = torch.floor(c).long()
    edge = low >= size - 1
    low = torch.where(edge, torch.full_like(low, size - 1), low)
    high = torch.where(edge, low, low + 1)
    frac = torch.where(edge, torch.zeros_like(c), c - low.to(c.dtype))
    return low, high, 1 - frac, frac, valid


def _axis_matrix(lo: torch.Tensor, bin_size: torch.Tensor, pooled: int, grids: torch.Tensor, size: int
                 ) -> torch.Tensor:
    """(K, pooled, size) interpolation matrix along one axis: bin p's row averages the bilinear weights of
    its ``grids[k]`` samples (0 for invalid samples; boxes with no samples stay 0)."""
    k = len(lo)
    mat = lo.new_zeros((k, pooled, size))
    for g in torch.unique(grids).tolist():
        if g <= 0:
            continue
        idx = torch.nonzero(grids == g).squeeze(1)
        low, high, w_low, w_high, valid = _axis_weights(lo[idx], bin_size[idx], pooled, g, size)
        scale = valid.to(lo.dtype) / g
        rows = (torch.arange(pooled * g, device=lo.device) // g).expand(len(idx), -1)
        sub = lo.new_zeros((len(idx), pooled, size))
        for col, wt in ((low, w_low), (high, w_high)):
            sub.view(len(idx), -1).scatter_add_(1, rows * size + col, wt * scale)
        mat[idx] = sub
    return mat


def _align_separable(features: torch.Tensor, xy: torch.Tensor, batch: torch.Tensor, pooled: tuple[int, int],
                     gh: torch.Tensor, gw: torch.Tensor, bin_h: torch.Tensor, bin_w: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling on a regular grid is separable: each box's pooled map is ``A_y F A_x^T`` with
    (PH, H) and (PW, W) interpolation matrices; one batched product per axis (images padded to the
    most boxes)."""
    n, c, h, w = features.shape
    ph, pw = pooled
    k = len(batch)
    counts = torch.bincount(batch, minlength=n)
    order = torch.argsort(batch, stable=True)
    slot = torch.empty_like(batch)
    slot[order] = torch.arange(k, device=batch.device) - (torch.cumsum(counts, 0) - counts)[batch[order]]
    kmax = int(counts.max())
    ay = features.new_zeros((n, kmax, ph, h))
    ax = features.new_zeros((n, kmax, pw, w))
    ay[batch, slot] = _axis_matrix(xy[:, 1], bin_h, ph, gh, h)
    ax[batch, slot] = _axis_matrix(xy[:, 0], bin_w, pw, gw, w)
    t = torch.bmm(ay.reshape(n, kmax * ph, h), features.permute(0, 2, 1, 3).reshape(n, h, c * w))
    out = torch.einsum("nkpcw,nkqw->nkcpq", t.reshape(n, kmax, ph, c, w), ax)
    return out.reshape(n * kmax, c, ph, pw)[batch * kmax + slot]


def roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False,
              method: Literal["auto", "separable", "grid"] = "auto") -> torch.Tensor:
    """RoIAlign of ``rois`` (K, 5: batch index, x1, y1, x2, y2 in image pixels) on ``features``
    (N, C, H, W) -> (K, C, PH, PW). See the module docstring for the exact semantics and the two
    methods (``auto``: ``separable`` when its intermediate fits in :data:`SEPARABLE_LIMIT` values)."""
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    n, c, h, w = features.shape
    k = rois.shape[0]
    if k == 0:
        return features.new_zeros((0, c, ph, pw))
    rois = rois.to(features.dtype)
    off = 0.5 if aligned else 0.0
    xy = rois[:, 1:] * spatial_scale - off
    rw, rh = xy[:, 2] - xy[:, 0], xy[:, 3] - xy[:, 1]
    if not aligned:
        rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
    bin_h, bin_w = rh / ph, rw / pw
    if sampling_ratio > 0:
        gh = torch.full((k,), sampling_ratio, dtype=torch.long, device=rois.device)
        gw = gh
    else:  # adaptive: ceil(roi_size / pooled_size) samples per bin, per box
        gh, gw = torch.ceil(rh / ph).long(), torch.ceil(rw / pw).long()
    batch = rois[:, 0].long()
    if method == "separable" or (method == "auto" and n * int(torch.bincount(batch, minlength=n).max()) * ph * c * w
                                 <= SEPARABLE_LIMIT):
        return _align_separable(features, xy, batch, (ph, pw), gh, gw, bin_h, bin_w)
    out = features.new_zeros((k, c, ph, pw))
    keys = torch.stack([batch, gh, gw], 1)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, key in enumerate(keys.tolist()):
        groups.setdefault(tuple(key), []).append(i)
    pieces, where = [], []
    for (b, g_h, g_w), idx_list in groups.items():
        if g_h <= 0 or g_w <= 0:  # an empty box with aligned=True: no samples, the output stays 0
            continue
        idx = torch.tensor(idx_list, device=rois.device)
        pieces.append(_align_one_grid(features[b], xy[idx], (ph, pw), (g_h, g_w), bin_h[idx], bin_w[idx]))
        where.append(idx)
    if pieces:
        out = out.index_copy(0, torch.cat(where), torch.cat(pieces))
    return out


def boxes_to_rois(boxes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image box lists -> (K, 5) RoIs with the image index in column 0."""
    if not boxes:
        return torch.zeros(0, 5)
    idx = [torch.full((len(b), 1), i, dtype=b.dtype, device=b.device) for i, b in enumerate(boxes)]
    return torch.cat([torch.cat(idx), torch.cat(list(boxes))], 1)


class LevelMapper:
    """FPN level of each box (Lin et al. 2017, eq. 1): ``floor(k0 + log2(sqrt(area) / s0) + eps)``,
    clamped to [k_min, k_max], returned relative to k_min."""

    def __init__(self, k_min: int, k_max: int, canonical_scale: float = 224, canonical_level: int = 4,
                 eps: float = 1e-6) -> None:
        self.k_min, self.k_max = k_min, k_max
        self.s0, self.lvl0, self.eps = canonical_scale, canonical_level, eps

    def __call__(self, boxes: torch.Tensor) -> torch.Tensor:
        s = torch.sqrt(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0))
        lvl = torch.floor(self.lvl0 + torch.log2(s / self.s0) + self.eps)
        return (lvl.clamp(min=self.k_min, max=self.k_max) - self.k_min).long()


class MultiScaleRoIAlign(nn.Module):
    """RoIAlign over several pyramid levels (torchvision's ``MultiScaleRoIAlign``): each box is pooled
    from the level :class:`LevelMapper` assigns to it; level scales are inferred from the feature
    and image sizes (powers of two). No parameters."""

    def __init__(self, featmap_names: Sequence[str], output_size: int, sampling_ratio: int,
                 canonical_scale: float = 224, canonical_level: int = 4, aligned: bool = False) -> None:
        super().__init__()
        self.featmap_names = list(featmap_names)
        self.output_size = (output_size, output_size)
        self.sampling_ratio = sampling_ratio
        self.canonical_scale, self.canonical_level = canonical_scale, canonical_level
        self.aligned = aligned

    def scales(self, features: list[torch.Tensor], image_hw: tuple[int, int]) -> list[float]:
        return [2.0 ** round(math.log2(f.shape[-2] / image_hw[0])) for f in features]

    def forward(self, features: dict[str, torch.Tensor], boxes: Sequence[torch.Tensor],
                image_hw: tuple[int, int]) -> torch.Tensor:
        feats = [features[k] for k in self.featmap_names]
        rois = boxes_to_rois(boxes).to(feats[0].device)
        scales = self.scales(feats, image_hw)
        if len(feats) == 1:
            return roi_align(feats[0], rois, self.output_size, scales[0], self.sampling_ratio, self.aligned)
        k_min, k_max = int(-math.log2(scales[0])), int(-math.log2(scales[-1]))
        levels = LevelMapper(k_min, k_max, self.canonical_scale, self.canonical_level)(rois[:, 1:])
        out = feats[0].new_zeros((rois.shape[0], feats[0].shape[1], *self.output_size))
        for lvl, (f, s) in enumerate(zip(feats, scales, strict=True)):
            idx = torch.nonzero(levels == lvl).squeeze(1)
            if idx.numel():  # levels that receive no box are skipped
                out = out.index_copy(0, idx, roi_align(f, rois[idx], self.output_size, s, self.sampling_ratio,
                                                       self.aligned))
        return out
