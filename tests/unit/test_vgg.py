"""VGG16 features: torchvision key layout, named layers, loading from a local file."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from simreal.errors import WeightsError
from simreal.nn.vgg import LAYER_NAMES, VGG16Features, load_vgg16


def test_layer_names_follow_torchvision_indices() -> None:
    assert len(LAYER_NAMES) == 31
    assert LAYER_NAMES[4] == "pool1" and LAYER_NAMES[9] == "pool2" and LAYER_NAMES[30] == "pool5"
    assert LAYER_NAMES[28] == "conv5_3"
    keys = set(VGG16Features().state_dict())
    assert "features.28.weight" in keys and "features.0.bias" in keys and len(keys) == 26


def test_named_layers_shapes() -> None:
    feats = VGG16Features(["pool2", "relu3_1", "pool5"])(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 128, 16, 16), (1, 256, 16, 16), (1, 512, 2, 2)]


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "bare"])
def test_load_torchvision_format(tmp_path, fmt: str) -> None:
    torch.manual_seed(0)
    ref = VGG16Features(["pool2"])
    sd = dict(ref.state_dict())
    path = tmp_path / f"vgg16.{'safetensors' if fmt == 'safetensors' else 'pth'}"
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif fmt == "bare":
        torch.save({k.removeprefix("features."): v for k, v in sd.items()}, path)
    else:
        sd["classifier.6.weight"] = torch.zeros(1000, 4096)
        torch.save(sd, path)
    model = load_vgg16(path, ["pool2"])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.allclose(model(x)[0], ref(x)[0])


def test_errors(tmp_path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_vgg16(tmp_path / "none.pth")
    with pytest.raises(WeightsError, match="unknown VGG16 layer"):
        VGG16Features(["pool9"])
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "short.pth")
    with pytest.raises(WeightsError, match="missing"):
        load_vgg16(tmp_path / "short.pth")
