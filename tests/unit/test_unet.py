"""U-Net: logits at input resolution for any size, ResNet encoder loads torchvision-format weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simreal.nn.resnet import resnet18
from simreal.nn.unet import unet_resnet, unet_small


@pytest.mark.parametrize("hw", [(32, 32), (37, 50), (64, 48)])
def test_output_shape_any_size(hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    for net in (unet_small(3, 3, 8), unet_resnet("resnet18", 3)):
        net.eval()
        with torch.no_grad():
            y = net(torch.randn(2, 3, *hw))
        assert tuple(y.shape) == (2, 4, *hw)


def test_small_unet_one_channel_and_depth() -> None:
    net = unet_small(1, 1, 4, depth=3).eval()
    assert net.total_stride == 4
    with torch.no_grad():
        assert tuple(net(torch.randn(1, 1, 30, 18)).shape) == (1, 2, 30, 18)


def test_fully_convolutional_translation() -> None:
    """Away from borders, shifting the input by the total stride shifts the logits by the same amount."""
    torch.manual_seed(0)
    net = unet_small(2, 3, 8, depth=3).eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        a = net(x)
        b = net(torch.roll(x, shifts=(8, 8), dims=(2, 3)))
    torch.testing.assert_close(a[..., 32:56, 32:56], b[..., 40:64, 40:64], atol=1e-4, rtol=1e-4)


def test_resnet_encoder_loads_torchvision_state_dict(tmp_path: Path) -> None:
    """A torchvision-format ResNet-18 file (with 'module.' prefixes and a 1000-class fc) loads into the encoder."""
    from simreal.adapt.api import build_model
    from simreal.adapt.config import TrainConfig
    from simreal.tasks.segment import SegmentTask

    torch.manual_seed(1)
    src = resnet18(1000)
    with torch.no_grad():
        src.layer3[0].conv1.weight.normal_()
        src.bn1.running_mean.uniform_()
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, path)
    cfg = TrainConfig.model_validate({"task": "segment", "data": {"domains": [{"path": "x"}]},
                                      "model": {"arch": "unet_resnet18", "weights": str(path)}})
    model = build_model(cfg, SegmentTask(2))
    enc = model.net.encoder
    torch.testing.assert_close(enc.layer3[0].conv1.weight, src.layer3[0].conv1.weight)
    torch.testing.assert_close(enc.bn1.running_mean, src.bn1.running_mean)
    torch.testing.assert_close(enc.conv1.weight, src.conv1.weight)
    # a file that does not fit is one clear error
    from simreal.errors import WeightsError

    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(64, 1, 7, 7)}, bad)
    cfg2 = cfg.model_copy(update={"model": cfg.model.model_copy(update={"weights": str(bad)})})
    with pytest.raises(WeightsError, match="weights do not fit"):
        build_model(cfg2, SegmentTask(2))
