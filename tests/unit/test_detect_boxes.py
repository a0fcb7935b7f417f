"""Anchors by IoU k-means, assignment + delta round trip, NMS against a brute-force reference."""

from __future__ import annotations

import numpy as np
import torch

from simreal.tasks.anchors import kmeans_anchors, mean_best_iou
from simreal.tasks.detect_boxes import anchor_grid, box_iou, cxcywh_to_xyxy, decode, encode, nms, postprocess
from simreal.tasks.detect_loss import LossWeights, assign, assign_image, combine, loss_terms


def test_kmeans_recovers_two_box_shapes_deterministically() -> None:
    rng = np.random.default_rng(0)
    a = np.array([10.0, 10.0]) * rng.uniform(0.95, 1.05, (200, 2))
    b = np.array([40.0, 16.0]) * rng.uniform(0.95, 1.05, (100, 2))
    wh = rng.permutation(np.concatenate([a, b]))
    anc = kmeans_anchors(wh, 2, seed=3)
    assert np.allclose(anc, [[10, 10], [40, 16]], rtol=0.03)
    assert np.array_equal(anc, kmeans_anchors(wh, 2, seed=3))
    assert mean_best_iou(wh, anc) > 0.9 > mean_best_iou(wh, anc[:1])


def _brute_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, thr: float) -> list[int]:
    def iou(p: np.ndarray, q: np.ndarray) -> float:
        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        u = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - iw * ih
        return iw * ih / u

    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(labels[i] != labels[j] or iou(boxes[i], boxes[j]) <= thr for j in kept):
            kept.append(i)
    return kept


def test_nms_matches_brute_force_on_random_boxes() -> None:
    rng = np.random.default_rng(1)
    for trial in range(30):
        n = int(rng.integers(1, 80))
        xy = rng.uniform(0, 50, (n, 2))
        wh = rng.uniform(2, 25, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        scores = rng.permutation(n) / n + 0.01  # distinct scores
        labels = rng.integers(0, 1 + trial % 3, n)
        thr = float(rng.choice([0.3, 0.5, 0.7]))
        got = nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(labels), thr).tolist()
        assert got == _brute_nms(boxes, scores, labels, thr)
    assert nms(torch.zeros(0, 4), torch.zeros(0), None, 0.5).numel() == 0


def test_assignment_then_encode_decode_round_trip() -> None:
    shapes = torch.tensor([[8.0, 8.0], [20.0, 10.0], [14.0, 14.0]])
    anchors = anchor_grid((6, 6), (48, 48), shapes)
    boxes = np.array([[5.0, 6.0, 26.0, 15.0], [30.0, 30.0, 44.0, 45.0], [30.5, 31.0, 39.0, 40.0]], np.float32)
    gts, anc, neg = assign_image(boxes, np.zeros(3, bool), anchors, (6, 6), (48, 48), 3)
    assert sorted(gts) == [0, 1, 2] and len(set(anc)) == 3 and not bool(neg[anc].any())
    for g, a in zip(gts, anc, strict=True):
        cx, cy = (boxes[g, 0] + boxes[g, 2]) / 2, (boxes[g, 1] + boxes[g, 3]) / 2
        assert a // 3 == int(cy // 8) * 6 + int(cx // 8)  # the anchor sits in the centre cell
    assert anc[gts.index(0)] % 3 == 1  # the wide box takes the wide anchor
    gt = torch.tensor(boxes[gts])
    a_boxes = anchors[torch.tensor(anc)]
    from simreal.tasks.detect_boxes import xyxy_to_cxcywh

    d = encode(xyxy_to_cxcywh(gt), a_boxes)
    assert torch.allclose(cxcywh_to_xyxy(decode(d, a_boxes)), gt, atol=1e-4)


def test_sub_cell_box_takes_the_anchor_of_its_shape_wherever_it_sits_in_the_cell() -> None:
    # a head-sized box (6 px) in 8-px cells with anchors of 6 px and 12 px (k-means fits shapes, so an exact 6 px
    # anchor exists): it must take the 6-px anchor whether it sits at the cell centre or at a cell corner. (Scoring
    # the anchors at the cell centre picked the 12-px anchor for the off-centre box, so the anchor a box trains
    # depended on its sub-cell offset: same-cell duplicates the detector could not learn to suppress.)
    shapes = torch.tensor([[6.0, 6.0], [12.0, 12.0]])
    anchors = anchor_grid((4, 4), (32, 32), shapes)
    for cx, cy in [(12.0, 12.0), (9.2, 9.1), (14.9, 9.1), (9.1, 14.8), (14.8, 14.9)]:  # cell (1, 1): 8..16 px
        box = np.array([[cx - 3, cy - 3, cx + 3, cy + 3]], np.float32)
        gts, anc, _ = assign_image(box, np.zeros(1, bool), anchors, (4, 4), (32, 32), 2)
        assert gts == [0] and anc == [(1 * 4 + 1) * 2 + 0], (cx, cy, anc)
    big = np.array([[12.5 - 6, 9.5 - 6, 12.5 + 6, 9.5 + 6]], np.float32)  # a 12-px box off-centre: the 12-px anchor
    assert assign_image(big, np.zeros(1, bool), anchors, (4, 4), (32, 32), 2)[1] == [(1 * 4 + 1) * 2 + 1]


def test_ignored_boxes_are_neither_positive_nor_negative() -> None:
    shapes = torch.tensor([[10.0, 10.0]])
    anchors = anchor_grid((4, 4), (32, 32), shapes)
    boxes = np.array([[1.0, 1.0, 11.0, 11.0], [17.0, 17.0, 27.0, 27.0]], np.float32)
    gts, anc, neg = assign_image(boxes, np.array([False, True]), anchors, (4, 4), (32, 32), 1)
    assert gts == [0]
    ign_anchor = 2 * 4 + 2
    assert not bool(neg[ign_anchor]) and ign_anchor not in anc and not bool(neg[anc[0]])
    assert int(neg.sum()) == 16 - 2


def _raw_for(boxes: np.ndarray, labels: list[int], anchors: torch.Tensor, asg_anchor: list[int],
             c: int) -> torch.Tensor:
    raw = torch.zeros(1, anchors.shape[0], c + 5)
    raw[..., c] = -12.0  # confidence ~0 everywhere
    from simreal.tasks.detect_boxes import xyxy_to_cxcywh

    for b, lab, a in zip(boxes, labels, asg_anchor, strict=True):
        raw[0, a, lab] = 12.0
        raw[0, a, c] = 12.0
        raw[0, a, c + 1:] = encode(xyxy_to_cxcywh(torch.tensor(b)), anchors[a])
    return raw


def test_loss_small_for_perfect_output_and_postprocess_recovers_boxes() -> None:
    shapes = torch.tensor([[10.0, 10.0], [16.0, 16.0]])
    anchors = anchor_grid((4, 4), (32, 32), shapes)
    boxes = np.array([[2.0, 3.0, 12.0, 13.0], [16.0, 15.0, 31.0, 30.0]], np.float32)
    tgt = {"boxes": boxes, "labels": np.array([1, 0]), "ignore": np.zeros(2, bool)}
    asg = assign([tgt], anchors, (4, 4), (32, 32), 2)
    w = LossWeights()
    good = _raw_for(asg.box.numpy(), asg.label.tolist(), anchors, asg.anchor.tolist(), 2)
    bad = good.clone()
    bad[0, asg.anchor, 3:] += 0.5
    loss_good = combine(loss_terms(good, anchors, asg, 2, w), w)
    assert float(loss_good) < 1e-3 < float(combine(loss_terms(bad, anchors, asg, 2, w), w))
    per_img = combine(loss_terms(good, anchors, asg, 2, w), w, per_image=True)
    assert per_img.shape == (1,) and torch.allclose(per_img[0], loss_good)
    det = postprocess(good, anchors, 2, (32, 32), 0.01, 0.4)[0]
    order = np.argsort(det["labels"])
    assert np.allclose(det["boxes"][order], boxes[[1, 0]], atol=1e-3) and list(det["labels"][order]) == [0, 1]
    assert det["image_score"] > 0.99
    empty = postprocess(torch.full_like(good, -12.0), anchors, 2, (32, 32), 0.01, 0.4)[0]
    assert empty["image_score"] == 0.0 and len(empty["boxes"]) == 0


def test_box_iou_known_values() -> None:
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [20.0, 20, 30, 30], [0.0, 0, 10, 10]])
    assert torch.allclose(box_iou(a, b), torch.tensor([[1 / 3, 0.0, 1.0]]))
