"""Segmentation task: targets from instance masks, top-5 % image score, pixel loss, tiny U-Net training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from simreal.datasets import Dataset, DatasetWriter, encode_image, encode_mask, extras, mask_bbox, mask_to_rle
from simreal.errors import DatasetError
from simreal.tasks.segment import IGNORE, SegmentTask, iou_from_confusion, top_fraction_score

CATEGORIES = [{"id": 1, "name": "square"}, {"id": 2, "name": "disc"}]


def make_shapes(root: Path, n: int, seed: int, size: int = 32, shift: float = 0.0, masks: bool = True,
                ignore_every: int = 0) -> Path:
    """Noisy grey images with 1-2 reddish squares / bluish discs; 16-bit instance masks + COCO annotations.

    ``shift`` brightens the whole image (a second domain); every ``ignore_every``-th object is marked ignore.
    """
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, root.name, "synthetic", CATEGORIES)
    yy, xx = np.mgrid[:size, :size]
    images, anns = [], []
    for i in range(n):
        img = rng.normal(0.45, 0.08, (size, size, 3))
        inst = np.zeros((size, size), np.uint16)
        for k in range(1 + int(rng.integers(0, 2))):
            cat = int(rng.integers(1, 3))
            r = int(rng.integers(size // 8, size // 4))
            cy, cx = (int(v) for v in rng.integers(r, size - r, 2))
            square = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
            m = square if cat == 1 else (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            m &= inst == 0
            if m.sum() < 4:
                continue
            color = np.array([0.85, 0.2, 0.2]) if cat == 1 else np.array([0.2, 0.3, 0.85])
            img[m] = color + rng.normal(0, 0.05, (int(m.sum()), 3))
            inst[m] = k + 1
            a = {"image_id": i + 1, "category_id": cat, "bbox": mask_bbox(m), "area": float(m.sum()),
                 "segmentation": mask_to_rle(m), "iscrowd": 0, "simreal": {"instance_id": k + 1}}
            if ignore_every and len(anns) % ignore_every == ignore_every - 1:
                a["simreal"]["ignore"] = True
            anns.append(a)
        img = np.clip(img + shift, 0, 1)
        png = encode_image((img * 255).astype(np.uint8))
        rec = {"id": i + 1, "file_name": w.write_image(f"{i:04d}.png", png), "width": size, "height": size}
        if masks:
            rec["mask_file"] = w.write_file(f"masks/{i:04d}.png", encode_mask(inst))
        images.append(rec)
    w.finalize(images, anns if masks else [])
    return root


def test_top_fraction_score_matches_hand_computation() -> None:
    rng = np.random.default_rng(0)
    prob = rng.random((2, 3, 9, 11))  # 99 pixels -> ceil(4.95) = 5 pixels
    got = top_fraction_score(torch.from_numpy(prob)).numpy()
    for b in range(2):
        for c in range(3):
            assert got[b, c] == pytest.approx(np.sort(prob[b, c].ravel())[::-1][:5].mean())
    one = torch.zeros(1, 1, 4, 4)
    one[0, 0, 1, 2] = 0.8  # 16 pixels -> at least one pixel
    assert float(top_fraction_score(one)) == pytest.approx(0.8)
    assert math.ceil(0.05 * 99) == 5


def test_targets_from_instance_masks(tmp_path: Path) -> None:
    root = make_shapes(tmp_path / "ds", 6, 1, ignore_every=2)
    ds = Dataset.open(root)
    task = SegmentTask(2, ["square", "disc"])
    task.bind([1, 2])
    n_ignored = 0
    for rec in ds.images:
        inst = ds.load_mask(rec)
        t = task.target(ds, rec, (32, 32))
        y = t["mask"].numpy()
        assert y.dtype == np.uint8 and y.shape == (32, 32)
        assert (y[inst == 0] == 0).all()
        for a in ds.anns(rec):
            want = IGNORE if extras(a).get("ignore") else a["category_id"]
            assert (y[inst == extras(a)["instance_id"]] == want).all()
            n_ignored += bool(extras(a).get("ignore"))
        want_present = {a["category_id"] for a in ds.anns(rec) if not extras(a).get("ignore")}
        assert {i + 1 for i in np.flatnonzero(t["present"])} == want_present
    assert n_ignored > 0
    small = task.target(ds, ds.images[0], (16, 8))["mask"]
    assert tuple(small.shape) == (16, 8) and set(np.unique(small.numpy())) <= {0, 1, 2, IGNORE}


def test_loss_ignores_255_and_unlabelled() -> None:
    task = SegmentTask(2)
    logits = torch.randn(3, 3, 4, 4, requires_grad=True)
    y = torch.randint(0, 3, (4, 4), dtype=torch.uint8)
    y[0, :] = IGNORE
    targets = [{"mask": y}, None, {"mask": y}]
    labelled = torch.tensor([True, False, True])
    loss = task.loss(logits, targets, labelled)
    keep = y != IGNORE
    logp = torch.log_softmax(logits, 1)
    manual = -torch.stack([logp[b][y.long().clamp(max=2), torch.arange(4)[:, None], torch.arange(4)][keep]
                           for b in (0, 2)]).mean()
    assert float(loss.detach()) == pytest.approx(float(manual.detach()), rel=1e-5)
    loss.backward()
    assert float(logits.grad[1].abs().sum()) == 0.0  # the unlabelled image gets no gradient
    assert float(task.loss(logits, [None] * 3, torch.zeros(3, dtype=torch.bool)).detach()) == 0.0


def test_iou_from_confusion() -> None:
    cm = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    iou, miou = iou_from_confusion(cm)
    assert iou[0] == pytest.approx(5 / 8) and iou[1] == pytest.approx(3 / 6) and np.isnan(iou[2])
    assert miou == pytest.approx((5 / 8 + 3 / 6) / 2)


def test_check_labels_without_masks(tmp_path: Path) -> None:
    root = make_shapes(tmp_path / "nomask", 3, 2, masks=False)
    with pytest.raises(DatasetError, match="nomask.*no instance masks"):
        SegmentTask(2).check_labels(Dataset.open(root), str(root))


def test_tiny_unet_learns_shapes(tmp_path: Path) -> None:
    """A light U-Net trained 120 steps on 32x32 shapes reaches mIoU >= 0.7 on held-out images."""
    from simreal.adapt.selection import all_targets, predict_all
    from simreal.adapt.steps import supervised_step
    from simreal.datasets.torchdata import FolderSource, balanced_batch

    torch.manual_seed(0)
    task = SegmentTask(2, ["square", "disc"])
    task.bind([1, 2])
    train = FolderSource("train", 0, Dataset.open(make_shapes(tmp_path / "train", 64, 3)), (32, 32), 3, task.target)
    test = FolderSource("test", 0, Dataset.open(make_shapes(tmp_path / "test", 24, 4)), (32, 32), 3, task.target)
    model = task.build_model("unet_small", 3, (32, 32), width=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(120):
        supervised_step(model, task, balanced_batch([train], step, 0, 16), opt)
    preds = predict_all(task, model, test)
    miou = task.quality(preds, all_targets(test))
    print("tiny U-Net mIoU", miou)
    assert miou >= 0.7, miou
    res = task.evaluate(preds, all_targets(test), tmp_path)
    assert res["miou"] == pytest.approx(miou) and res["pixel_accuracy"] > 0.9
    assert res["image_roc_auc_macro"] is not None and res["image_roc_auc_macro"] > 0.8
    assert (tmp_path / "roc.png").is_file() and (tmp_path / "pr.png").is_file()
    losses = task.sample_losses(preds, all_targets(test))
    assert losses.shape == (24,) and (losses >= 0).all() and losses.mean() < 0.5


def test_example_config_is_valid() -> None:
    from simreal.adapt.api import task_options
    from simreal.adapt.config import TrainConfig
    from simreal.config import load_config

    cfg = load_config(TrainConfig, Path(__file__).parents[2] / "configs" / "train" / "segment_dann.yaml")
    assert cfg.task == "segment" and cfg.method.name == "dann"
    task = SegmentTask(2, None, **task_options(cfg))
    assert isinstance(task.build_model(cfg.model.arch, 3, (64, 64)).net.encoder.layer4, torch.nn.Module)
