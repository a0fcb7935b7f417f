"""SqueezeDet parts: Fire parameter count (closed form), output strides and ConvDet layout, head reset."""

from __future__ import annotations

import pytest
import torch

from simreal.nn.squeezedet import (
    SQUEEZEDET,
    ConvDet,
    Fire,
    ResNetBackbone,
    SqueezeBackbone,
    fire_param_count,
    tiny_config,
)
from simreal.tasks.detect import DetectTask


@pytest.mark.parametrize(("cin", "s", "e1", "e3"), [(96, 16, 64, 64), (512, 64, 256, 256), (7, 3, 5, 2)])
@pytest.mark.parametrize("bn", [False, True])
def test_fire_parameter_count_matches_closed_form(cin: int, s: int, e1: int, e3: int, bn: bool) -> None:
    fire = Fire(cin, s, e1, e3, batch_norm=bn)
    assert sum(p.numel() for p in fire.parameters()) == fire_param_count(cin, s, e1, e3, bn)
    y = fire(torch.rand(2, cin, 9, 7))
    assert y.shape == (2, e1 + e3, 9, 7) and bool((y >= 0).all())


def test_fire_expands_concatenate_1x1_then_3x3() -> None:
    torch.manual_seed(0)
    fire = Fire(4, 2, 3, 5)
    x = torch.rand(1, 4, 6, 6)
    s = torch.relu(fire.squeeze(x))
    assert torch.allclose(fire(x)[:, :3], torch.relu(fire.expand1x1(s)))
    assert torch.allclose(fire(x)[:, 3:], torch.relu(fire.expand3x3(s)))


def test_published_squeezedet_backbone_and_strides() -> None:
    full = SqueezeBackbone(SQUEEZEDET, 3)
    assert full.stride == 16 and full.out_channels == 768
    fires = [m for m in full.modules() if isinstance(m, Fire)]
    assert len(fires) == 10  # fire2 .. fire11
    assert full(torch.rand(1, 3, 64, 96)).shape == (1, 768, 4, 6)
    tiny = SqueezeBackbone(tiny_config(8), 3, batch_norm=True)
    assert tiny.stride == 8 and tiny(torch.rand(2, 3, 48, 32)).shape[2:] == (6, 4)
    s4 = SqueezeBackbone(tiny_config(8, stride=4), 3, batch_norm=True)  # the same layers but one pooling
    assert s4.stride == 4 and s4(torch.rand(2, 3, 48, 32)).shape[2:] == (12, 8)
    assert sum(p.numel() for p in s4.parameters()) == sum(p.numel() for p in tiny.parameters())
    with pytest.raises(ValueError, match="stride must be 4 or 8"):
        tiny_config(8, stride=2)
    res = ResNetBackbone("resnet18")
    assert res.stride == 16 and res(torch.rand(1, 3, 64, 64)).shape == (1, 512, 4, 4)


def test_convdet_layout_and_detector_outputs() -> None:
    head = ConvDet(8, 3, 2)
    assert head(torch.rand(2, 8, 4, 5)).shape == (2, 4 * 5 * 3, 2 + 1 + 4)
    task = DetectTask(2, ["a", "b"], fitted_anchors=[[8, 8], [12, 6], [16, 16]])
    model = task.build_model("squeezedet_tiny", 3, (48, 40), width=8)
    out, feat = model(torch.rand(2, 3, 48, 40))
    assert out["raw"].shape == (2, 6 * 5 * 3, 7) and out["anchors"].shape == (90, 4)
    assert feat.shape == (2, model.feature_dim)
    assert torch.allclose(out["anchors"][:3, :2], torch.tensor([[4.0, 4.0]] * 3))  # first cell centre
    assert torch.allclose(out["anchors"][:3, 2:], torch.tensor([[8.0, 8], [12, 6], [16, 16]]))


def test_reset_head_reinitialises_convdet_only() -> None:
    task = DetectTask(1, ["a"], fitted_anchors=[[8, 8]])
    model = task.build_model("squeezedet_tiny", 3, (32, 32), width=8)
    back = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    with torch.no_grad():
        model.head.conv.weight.fill_(1.0)
        model.head.conv.bias.fill_(1.0)
    model.reset_head()
    assert float(model.head.conv.weight.detach().std()) < 0.01
    assert float(model.head.conv.bias.detach().abs().max()) == 0.0
    assert all(torch.equal(back[k], v) for k, v in model.backbone.state_dict().items())
    assert {id(p) for p in model.head_parameters()} == {id(p) for p in model.head.parameters()}


def test_example_detect_config_validates() -> None:
    from pathlib import Path

    from simreal.adapt.config import TrainConfig
    from simreal.config import load_config

    path = Path(__file__).resolve().parents[2] / "configs/train/detect_dann.yaml"
    cfg = load_config(TrainConfig, path)
    assert cfg.task == "detect" and cfg.method.name == "dann" and cfg.detect.num_anchors == 9


def test_predict_and_per_image_losses_for_iwv() -> None:
    import numpy as np

    torch.manual_seed(0)
    task = DetectTask(2, ["a", "b"], fitted_anchors=[[8, 8], [14, 14]])
    model = task.build_model("squeezedet_tiny", 3, (32, 32), width=8).eval()
    x = torch.rand(3, 3, 32, 32)
    tg = [{"boxes": np.array([[2, 2, 10, 10]], np.float32), "labels": np.array([1]), "ignore": np.array([False])},
          {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64), "ignore": np.zeros(0, bool)},
          {"boxes": np.array([[12, 12, 26, 26]], np.float32), "labels": np.array([0]), "ignore": np.array([False])}]
    preds = [task.predict(model, x[:2]), task.predict(model, x[2:])]
    losses = task.sample_losses(preds, tg)
    assert losses.shape == (3,) and np.isfinite(losses).all() and (losses > 0).all()
    with torch.no_grad():
        out, _ = model(x)
        whole = float(task.loss(out, tg, torch.ones(3, dtype=torch.bool)))
    assert min(losses) <= whole <= max(losses) * 1.5
    assert preds[0]["image_score"].shape == (2,) and preds[0]["feat"].shape == (2, model.feature_dim)
