"""Mask R-CNN as a whole: torchvision's parameter counts and state-dict layout, the torchvision key mapping
round trip (legacy COCO_V1 names, ``module.`` prefixes, heads of another class count), loss and
detection invariants (empty ground truth, unlabelled images, no detections)."""

from __future__ import annotations

from pathlib import Path

import torch

from simreal.adapt.api import build_model
from simreal.adapt.config import TrainConfig
from simreal.nn.maskrcnn import build_maskrcnn, simreal_to_torchvision_legacy, torchvision_to_simreal
from simreal.tasks.instance import InstanceTask

SMALL = {"fpn_channels": 32, "anchor_sizes": [[8.0], [16.0], [32.0], [64.0], [128.0]], "representation_size": 64,
         "mask_layers": [32, 32], "mask_dim_reduced": 32, "rpn_pre_nms_top_n_test": 200, "rpn_post_nms_top_n_test": 50,
         "rpn_pre_nms_top_n_train": 200, "rpn_post_nms_top_n_train": 100, "box_batch_size_per_image": 32,
         "rpn_batch_size_per_image": 64, "box_detections_per_img": 20}


def _count(m: torch.nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad or not trainable)


def test_resnet50_fpn_matches_torchvision_parameter_counts_and_keys() -> None:
    coco = build_maskrcnn("resnet50", 90, config={"frozen_bn": True, "trainable_backbone_layers": 3})
    assert _count(coco) == 44_401_393  # torchvision MaskRCNN_ResNet50_FPN_Weights.COCO_V1 metadata
    assert _count(coco, trainable=True) == 44_178_993  # conv1 and layer1 frozen
    keys = list(coco.state_dict())
    assert len(keys) == 307
    for k in ("backbone.body.layer4.2.bn3.running_var", "backbone.fpn.inner_blocks.3.0.weight",
              "backbone.fpn.layer_blocks.0.0.bias", "rpn.head.conv.0.0.weight", "rpn.head.cls_logits.weight",
              "rpn.head.bbox_pred.bias", "roi_heads.box_head.fc6.weight", "roi_heads.box_head.fc7.bias",
              "roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.bbox_pred.weight",
              "roi_heads.mask_head.3.0.weight", "roi_heads.mask_predictor.conv5_mask.weight",
              "roi_heads.mask_predictor.mask_fcn_logits.bias"):
        assert k in keys, k
    assert not any(k.endswith("num_batches_tracked") for k in keys)
    sd = coco.state_dict()
    assert sd["roi_heads.box_head.fc6.weight"].shape == (1024, 256 * 7 * 7)
    assert sd["roi_heads.box_predictor.bbox_pred.weight"].shape == (91 * 4, 1024)
    assert sd["roi_heads.mask_predictor.mask_fcn_logits.weight"].shape == (91, 256, 1, 1)
    assert _count(build_maskrcnn("resnet50", 90)) == 44_454_513  # BatchNorm2d: affine values are parameters


def test_legacy_torchvision_keys_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = build_maskrcnn("resnet18", 4, base_width=8, config={**SMALL, "frozen_bn": True}).eval()
    legacy = simreal_to_torchvision_legacy(src.state_dict())
    assert "rpn.head.conv.weight" in legacy and "roi_heads.mask_head.mask_fcn2.weight" in legacy
    assert "backbone.fpn.inner_blocks.0.weight" in legacy
    back = torchvision_to_simreal({f"module.{k}": v for k, v in legacy.items()})
    assert back.keys() == src.state_dict().keys()
    dst = build_maskrcnn("resnet18", 4, base_width=8, config={**SMALL, "frozen_bn": True}).eval()
    dst.load_state_dict(back)
    x = torch.rand(2, 3, 64, 64)
    a, b = src(x), dst(x)
    for da, db in zip(a, b, strict=True):
        assert torch.equal(da["boxes"], db["boxes"]) and torch.equal(da["masks"], db["masks"])


def test_torchvision_file_loads_through_the_train_config_without_foreign_heads(tmp_path: Path) -> None:
    """model.weights: a legacy-named torchvision file of another class count loads; its predictors are skipped."""
    torch.manual_seed(1)
    donor = build_maskrcnn("resnet18", 6, base_width=8, config=SMALL)
    path = tmp_path / "maskrcnn_coco_legacy.pth"
    torch.save({"model": simreal_to_torchvision_legacy(donor.state_dict())}, path)
    cfg = TrainConfig(task="instance", data={"domains": [{"path": str(tmp_path)}], "image_size": [64, 64]},
                      model={"arch": "maskrcnn_resnet18_fpn", "base_width": 8, "weights": str(path)}, instance=SMALL)
    task = InstanceTask(2, ["a", "b"], **cfg.instance.model_dump())
    model = build_model(cfg, task)
    got, want = model.state_dict(), donor.state_dict()
    assert torch.equal(got["net.backbone.body.layer3.1.conv2.weight"], want["backbone.body.layer3.1.conv2.weight"])
    assert torch.equal(got["net.roi_heads.mask_head.1.0.weight"], want["roi_heads.mask_head.1.0.weight"])
    assert torch.equal(got["net.rpn.head.conv.0.0.bias"], want["rpn.head.conv.0.0.bias"])
    assert got["net.roi_heads.box_predictor.cls_score.weight"].shape == (3, 64)  # its own 2 + 1 classes
    assert torch.equal(got["net.roi_heads.mask_predictor.conv5_mask.weight"],
                       want["roi_heads.mask_predictor.conv5_mask.weight"])  # same shape: loaded


def test_example_configs_validate_and_build() -> None:
    from simreal.config import load_config

    root = Path(__file__).resolve().parents[2] / "configs/train"
    cpu = load_config(TrainConfig, root / "instance_cpu.yaml")
    assert cpu.task == "instance" and [lv.name for lv in cpu.method.levels or []] == ["layer4", "p3", "p4", "roi"]
    ref = load_config(TrainConfig, root / "instance_r50.yaml")
    assert ref.model.arch == "maskrcnn_resnet50_fpn" and ref.instance.frozen_bn
    assert ref.instance.rpn_post_nms_top_n_train == 2000 and ref.instance.anchor_sizes[0] == [32.0]  # reference
    task = InstanceTask(3, ["a", "b", "c"], **cpu.instance.model_dump())
    model = build_model(cpu, task)
    n = _count(model)
    assert 1_000_000 < n < 3_000_000, n  # the CPU-sized model
    from simreal.adapt.multilevel import resolve_levels

    assert set(resolve_levels(cpu.method, model)) == {"layer4", "p3", "p4", "roi"}


def test_loss_and_detection_invariants() -> None:
    torch.manual_seed(0)
    m = build_maskrcnn("resnet18", 3, base_width=8, config=SMALL)
    x = torch.rand(3, 3, 64, 64)
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 10:30, 12:40] = 1
    targets = [{"boxes": torch.tensor([[12.0, 10.0, 40.0, 30.0]]), "labels": torch.tensor([2]), "masks": masks},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
                "masks": torch.zeros(0, 64, 64, dtype=torch.uint8)},  # a labelled negative image
               None]  # unlabelled
    losses = m(x, targets, torch.Generator().manual_seed(0))
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}
    assert all(bool(torch.isfinite(v)) for v in losses.values())
    assert float(losses["loss_mask"].detach()) > 0.1  # the one positive image has mask targets
    assert m.roi_heads.last_roi_image_index.unique().tolist() == [0, 1, 2]  # the unlabelled image's RoIs too
    sum(losses.values()).backward()
    assert m.backbone.body.layer1[0].conv1.weight.grad is not None
    m.zero_grad()
    unl = m(x, [None, None, None])  # nothing labelled: zero losses that still backpropagate
    assert all(float(v) == 0.0 for v in unl.values())
    sum(unl.values()).backward()
    m.eval()
    m.roi_heads.score_thresh = 1.1  # nothing can pass: zero detections, well-formed outputs
    dets = m(x)
    assert [tuple(d["masks"].shape) for d in dets] == [(0, 28, 28)] * 3 and all(len(d["boxes"]) == 0 for d in dets)
