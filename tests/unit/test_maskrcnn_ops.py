"""Mask R-CNN building blocks against brute-force references: RoIAlign (torchvision's CPU kernel rules,
written out per sample), multi-scale level mapping, NMS and class-wise NMS, box coding round trip,
anchor counts and order per level, matcher/sampler semantics, mask pasting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simreal.nn.boxes import BoxCoder, batched_nms, box_iou, nms, nms_mask
from simreal.nn.matcher import BalancedSampler, Matcher
from simreal.nn.roi_align import LevelMapper, MultiScaleRoIAlign, roi_align
from simreal.nn.roi_heads import paste_masks
from simreal.nn.rpn import AnchorGenerator, flatten_predictions


# ----------------------------------------------------------------------------------------------- RoIAlign
def _bilinear(f: np.ndarray, y: float, x: float) -> np.ndarray:
    """torchvision's bilinear_interpolate (roi_align_kernel.cpp), one sample of a (C, H, W) map."""
    h, w = f.shape[-2:]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(f.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y_lo, x_lo = int(y), int(x)
    if y_lo >= h - 1:
        y_hi = y_lo = h - 1
        y = float(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= w - 1:
        x_hi = x_lo = w - 1
        x = float(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = y - y_lo, x - x_lo
    hy, hx = 1 - ly, 1 - lx
    return hy * hx * f[:, y_lo, x_lo] + hy * lx * f[:, y_lo, x_hi] + ly * hx * f[:, y_hi, x_lo] + ly * lx * f[:, y_hi,
                                                                                                             x_hi]


def _brute_roi_align(feat: torch.Tensor, rois: torch.Tensor, ph_: int, pw_: int, scale: float, sr: int,
                     aligned: bool) -> np.ndarray:
    feat_np = feat.numpy()
    out = np.zeros((len(rois), feat.shape[1], ph_, pw_))
    off = 0.5 if aligned else 0.0
    for k, r in enumerate(rois.numpy()):
        f = feat_np[int(r[0])]
        x1, y1, x2, y2 = (v * scale - off for v in r[1:])
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph_, rw / pw_
        gh = sr if sr > 0 else math.ceil(rh / ph_)
        gw = sr if sr > 0 else math.ceil(rw / pw_)
        count = max(gh * gw, 1)
        for ph in range(ph_):
            for pw in range(pw_):
                acc = np.zeros(f.shape[0])
                for iy in range(gh):
                    for ix in range(gw):
                        acc += _bilinear(f, y1 + ph * bh + (iy + 0.5) * bh / gh, x1 + pw * bw + (ix + 0.5) * bw / gw)
                out[k, :, ph, pw] = acc / count
    return out


def _random_rois(rng: np.random.Generator, k: int, n_img: int, lo: float, hi: float) -> torch.Tensor:
    xy = rng.uniform(lo, hi, (k, 2))
    wh = rng.uniform(0.0, (hi - lo) * 0.7, (k, 2))
    wh[: k // 4] = rng.uniform(0.0, 0.6, (k // 4, 2))  # sub-pixel boxes
    return torch.tensor(np.concatenate([rng.integers(0, n_img, (k, 1)), xy, xy + wh], 1))


METHODS = ["separable", "grid"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2])
def test_roi_align_matches_brute_force(aligned: bool, sampling_ratio: int, method: str) -> None:
    rng = np.random.default_rng(3 + sampling_ratio)
    feat = torch.tensor(rng.normal(size=(2, 3, 7, 9)))
    for scale in (1.0, 0.5):
        rois = _random_rois(rng, 24, 2, -6.0 / scale, 13.0 / scale)  # many cross the borders
        got = roi_align(feat, rois, (3, 4), scale, sampling_ratio, aligned, method).numpy()  # type: ignore[arg-type]
        want = _brute_roi_align(feat, rois, 3, 4, scale, sampling_ratio, aligned)
        assert np.abs(got - want).max() < 1e-10


@pytest.mark.parametrize("method", METHODS)
def test_roi_align_edge_cases(method: str) -> None:
    def ra(*a: object) -> torch.Tensor:
        return roi_align(*a, method=method)  # type: ignore[arg-type]

    feat = torch.arange(2 * 5 * 6, dtype=torch.float64).reshape(1, 2, 5, 6)
    # no boxes -> (0, C, PH, PW)
    assert ra(feat, torch.zeros(0, 5, dtype=torch.float64), 7, 1.0, 2).shape == (0, 2, 7, 7)
    # aligned, box = the whole map, one sample per bin at each pixel centre -> the input itself
    whole = torch.tensor([[0.0, 0.0, 0.0, 6.0, 5.0]], dtype=torch.float64)
    assert torch.allclose(ra(feat, whole, (5, 6), 1.0, 1, True)[0], feat[0])
    # a constant map gives the constant for every box that stays within [-1, H] x [-1, W]
    const = torch.full((1, 1, 5, 6), 3.0, dtype=torch.float64)
    inside = torch.tensor([[0, -0.9, -0.9, 5.9, 4.9], [0, 2.0, 1.0, 2.3, 1.2]], dtype=torch.float64)
    assert torch.allclose(ra(const, inside, 4, 1.0, 2), torch.tensor(3.0, dtype=torch.float64))
    # a box entirely beyond the image pools zeros; a zero-size aligned box has no samples
    outside = torch.tensor([[0, 20.0, 20.0, 30.0, 30.0], [0, 2.0, 2.0, 2.0, 2.0]], dtype=torch.float64)
    assert float(ra(feat, outside, 2, 1.0, -1, True).abs().max()) == 0.0
    # a linear ramp is reproduced at the mean sample position of each bin
    ramp = torch.arange(6, dtype=torch.float64).expand(1, 1, 5, 6).contiguous()
    box = torch.tensor([[0, 1.0, 1.0, 4.0, 3.0]], dtype=torch.float64)
    got = ra(ramp, box, (2, 3), 1.0, 2, True)[0, 0]
    assert torch.allclose(got, (0.5 + torch.arange(3, dtype=torch.float64) + 0.5).expand(2, 3))
    # a one-row map: every sample reads that row; samples beyond W - 1 read the last column
    row = torch.arange(4, dtype=torch.float64).reshape(1, 1, 1, 4)
    assert torch.allclose(ra(row, torch.tensor([[0, 0.0, -0.5, 4.0, 0.5]], dtype=torch.float64), (1, 2), 1.0, 2),
                          torch.tensor([[[[1.0, 2.75]]]], dtype=torch.float64))  # x = 3.5 reads column 3


@pytest.mark.parametrize("method", METHODS)
def test_roi_align_gradient_flows_to_the_features(method: str) -> None:
    feat = torch.randn(2, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.5, 0.5, 4.5, 3.5], [1, -1.0, 2.0, 3.0, 7.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, 2, 1.0, 2, False, method), (feat,))  # type: ignore


def test_level_mapper_and_multiscale_pooling() -> None:
    mapper = LevelMapper(2, 5)  # canonical 224 px at level 4
    boxes = torch.tensor([[0, 0, 50.0, 50.0], [0, 0, 112.0, 112.0], [0, 0, 224.0, 224.0], [0, 0, 500.0, 500.0],
                          [0, 0, 1000.0, 1000.0]])
    assert mapper(boxes).tolist() == [0, 1, 2, 3, 3]  # P2, P3, P4, P5 (clamped)
    rng = np.random.default_rng(0)
    feats = {str(i): torch.tensor(rng.normal(size=(2, 3, 64 // 2 ** i, 64 // 2 ** i))) for i in range(3)}
    pool = MultiScaleRoIAlign(["0", "1", "2"], 3, 2, canonical_scale=16, canonical_level=1)
    per_image = [torch.tensor([[1.0, 1.0, 9.0, 9.0], [2.0, 3.0, 40.0, 50.0]], dtype=torch.float64),
                 torch.tensor([[10.0, 10.0, 40.0, 30.0]], dtype=torch.float64)]
    got = pool(feats, per_image, (64, 64))
    assert pool.scales(list(feats.values()), (64, 64)) == [1.0, 0.5, 0.25]
    rois = torch.tensor([[0, 1, 1, 9, 9], [0, 2, 3, 40, 50], [1, 10, 10, 40, 30]], dtype=torch.float64)
    levels = LevelMapper(0, 2, 16, 1)(rois[:, 1:]).tolist()
    assert levels == [0, 2, 1]  # 8 px -> level 0 (clamped), ~43 px -> level 2, ~24 px -> level 1
    for r, lvl in zip(rois, levels, strict=True):
        want = _brute_roi_align(feats[str(lvl)], r[None], 3, 3, 0.5 ** lvl, 2, False)
        assert np.abs(got[rois.tolist().index(r.tolist())].numpy() - want[0]).max() < 1e-10
    assert pool(feats, [torch.zeros(0, 4, dtype=torch.float64)] * 2, (64, 64)).shape == (0, 3, 3, 3)


# ------------------------------------------------------------------------------------------------ NMS
def _brute_nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, thr: float) -> list[int]:
    def iou(p: np.ndarray, q: np.ndarray) -> float:
        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        u = max(p[2] - p[0], 0) * max(p[3] - p[1], 0) + max(q[2] - q[0], 0) * max(q[3] - q[1], 0) - iw * ih
        return iw * ih / u if u > 0 else 0.0

    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(groups[i] != groups[j] or iou(boxes[i], boxes[j]) <= thr for j in kept):
            kept.append(i)
    return kept


def test_nms_and_batched_nms_match_brute_force() -> None:
    rng = np.random.default_rng(5)
    for trial in range(40):
        n = int(rng.integers(1, 120))
        xy = rng.uniform(-10, 60, (n, 2))  # some boxes hang over the image border (negative coordinates)
        wh = rng.uniform(0, 30, (n, 2))
        wh[: n // 10] = 0.0  # degenerate boxes
        boxes = np.concatenate([xy, xy + wh], 1)
        scores = rng.permutation(n) / n + 0.01
        groups = rng.integers(0, 1 + trial % 4, n)
        thr = float(rng.choice([0.3, 0.5, 0.7]))
        tb, ts = torch.tensor(boxes), torch.tensor(scores)
        assert nms(tb, ts, thr).tolist() == _brute_nms(boxes, scores, np.zeros(n), thr)
        assert batched_nms(tb, ts, torch.tensor(groups), thr).tolist() == _brute_nms(boxes, scores, groups, thr)
    empty = torch.zeros(0, 4)
    assert nms(empty, torch.zeros(0), 0.5).numel() == 0
    assert batched_nms(empty, torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).numel() == 0


def test_nms_mask_handles_padding_and_ties_to_the_threshold() -> None:
    b = torch.tensor([[[0.0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 30, 30], [0, 0, 10, 10]]])
    s = torch.tensor([[0.9, 0.8, 0.7, 0.95]])
    valid = torch.tensor([[True, True, True, False]])  # the invalid best box neither survives nor suppresses
    assert nms_mask(b, s, 0.5, valid).tolist() == [[True, True, True, False]]  # IoU exactly 0.5: not > 0.5
    assert nms_mask(b, s, 0.49, valid).tolist() == [[True, False, True, False]]


# ------------------------------------------------------------------------------------- coding, anchors
def test_box_coder_round_trip_and_reference_formula() -> None:
    rng = np.random.default_rng(2)
    props = torch.tensor(rng.uniform(0, 50, (30, 2)))
    props = torch.cat([props, props + torch.tensor(rng.uniform(2, 40, (30, 2)))], 1)
    gt = torch.tensor(rng.uniform(0, 50, (30, 2)))
    gt = torch.cat([gt, gt + torch.tensor(rng.uniform(2, 40, (30, 2)))], 1)
    for weights in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        coder = BoxCoder(weights)
        d = coder.encode(gt, props)
        pw = props[:, 2] - props[:, 0]
        gx, px = (gt[:, 0] + gt[:, 2]) / 2, (props[:, 0] + props[:, 2]) / 2
        assert torch.allclose(d[:, 0], weights[0] * (gx - px) / pw)
        assert torch.allclose(d[:, 2], weights[2] * torch.log((gt[:, 2] - gt[:, 0]) / pw))
        assert torch.allclose(coder.decode(d, props)[:, 0], gt, atol=1e-9)
        # class-specific deltas: K boxes per proposal
        k3 = coder.decode(torch.cat([d, torch.zeros_like(d), d], 1), props)
        assert k3.shape == (30, 3, 4) and torch.allclose(k3[:, 2], gt, atol=1e-9)
        assert torch.allclose(k3[:, 1], props, atol=1e-9)  # zero deltas give the proposal back
    huge = BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(torch.tensor([[0.0, 0.0, 50.0, 50.0]]),
                                                  torch.tensor([[0.0, 0.0, 10.0, 10.0]]))
    assert math.isclose(float(huge[0, 0, 2] - huge[0, 0, 0]), 10 * 1000 / 16, rel_tol=1e-5)  # dw clamped


def test_anchor_counts_shapes_and_order_per_level() -> None:
    gen = AnchorGenerator([[32.0], [64.0], [128.0], [256.0], [512.0]], [[0.5, 1.0, 2.0]] * 5)
    grids = [(32, 40), (16, 20), (8, 10), (4, 5), (2, 3)]
    anchors = gen((128, 160), grids)
    assert [len(a) for a in anchors] == [h * w * 3 for h, w in grids]
    assert gen.num_anchors_per_location() == [3] * 5
    # base anchors: h = s sqrt(r), w = s / sqrt(r), rounded, centred on the cell corner
    assert anchors[0][:3].tolist() == [[-23.0, -11.0, 23.0, 11.0], [-16.0, -16.0, 16.0, 16.0],
                                       [-11.0, -23.0, 11.0, 23.0]]
    # order: location-major (row, column), then anchor; stride = padded size // grid size
    a = anchors[1].reshape(16, 20, 3, 4)
    assert torch.equal(a[2, 5, 1], torch.tensor([5 * 8 - 32.0, 2 * 8 - 32.0, 5 * 8 + 32.0, 2 * 8 + 32.0]))
    # the head's (N, A*K, H, W) outputs flatten in the same order as the anchors
    logits = [torch.arange(3 * h * w, dtype=torch.float32).reshape(1, 3, h, w) for h, w in grids[:2]]
    deltas = [torch.zeros(1, 12, h, w) for h, w in grids[:2]]
    flat, _ = flatten_predictions(logits, deltas)
    idx = (2 * 20 + 5) * 3 + 1  # level 1 is offset by level 0's anchors
    assert float(flat[0, 32 * 40 * 3 + idx, 0]) == float(logits[1][0, 1, 2, 5])


def test_matcher_low_quality_matches_and_sampler() -> None:
    q = torch.tensor([[0.1, 0.6, 0.8, 0.2], [0.65, 0.2, 0.1, 0.65]])  # 2 ground truths x 4 predictions
    m = Matcher(0.7, 0.3, allow_low_quality_matches=True)(q)
    # pred 2 is a confident match; preds 0 and 3 are gt 1's best (a tie, both kept); pred 1 is in between
    assert m.tolist() == [1, -2, 0, 1]
    assert Matcher(0.7, 0.3)(q).tolist() == [-2, -2, 0, -2]
    labels = torch.tensor([1] * 10 + [0] * 100 + [-1] * 5)
    pos, neg = BalancedSampler(32, 0.25)(labels, torch.Generator().manual_seed(0))
    assert len(pos) == 8 and len(neg) == 24 and bool((labels[pos] == 1).all()) and bool((labels[neg] == 0).all())
    pos, neg = BalancedSampler(32, 0.5)(torch.tensor([1, 1, 0, 0, 0]))
    assert len(pos) == 2 and len(neg) == 3  # a short batch
    assert box_iou(torch.zeros(0, 4), torch.ones(3, 4)).shape == (0, 3)


def test_paste_masks_fills_the_box_at_the_original_resolution() -> None:
    masks = torch.ones(2, 28, 28)
    boxes = torch.tensor([[10.0, 20.0, 40.0, 60.0], [-5.0, 50.0, 12.0, 90.0]])  # the second crosses the border
    out = paste_masks(masks, boxes, (80, 64)) > 0.5
    ys, xs = torch.nonzero(out[0], as_tuple=True)
    got = np.array([int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())])
    assert np.abs(got - np.array([10, 20, 40, 60])).max() <= 1  # the box, up to torchvision's integer rounding
    assert bool(out[1, 50:80, 0:12].all()) and not bool(out[1, :49].any())
    assert paste_masks(torch.zeros(0, 28, 28), torch.zeros(0, 4), (8, 8)).shape == (0, 8, 8)
