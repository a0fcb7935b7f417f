from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from simreal.errors import WeightsError
from simreal.nn.resnet import resnet18, resnet50
from simreal.nn.weights import load_into, load_state_dict_file, load_weights, map_torchvision_keys
from simreal.tasks.classify import ClassifyTask


def _n(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_resnet_parameter_counts_match_torchvision() -> None:
    assert _n(resnet18(1000)) == 11_689_512
    assert _n(resnet50(1000)) == 25_557_032


def test_torchvision_state_dict_loads_into_classifier(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tv = resnet18(1000)
    state = {"module." + k: v for k, v in tv.state_dict().items()}  # a DataParallel-style torchvision file
    torch.save(state, tmp_path / "r18.pth")
    model = ClassifyTask(5).build_model("resnet18", 3, (64, 64))
    own = map_torchvision_keys(load_state_dict_file(tmp_path / "r18.pth"), "backbone.")
    load_into(model, own, "r18.pth", skip_prefixes=("backbone.fc.",), allow_missing=("backbone.fc.",))
    assert torch.equal(model.backbone.conv1.weight, tv.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].bn2.running_mean, tv.layer4[1].bn2.running_mean)


def test_checkpoint_round_trip_safetensors(tmp_path: Path) -> None:
    m = ClassifyTask(3).build_model("smallcnn", 1, (8, 8), width=4)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "m.safetensors"))
    m2 = ClassifyTask(3).build_model("smallcnn", 1, (8, 8), width=4)
    load_weights(m2, tmp_path / "m.safetensors")
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])


def test_weights_that_do_not_fit(tmp_path: Path) -> None:
    m = ClassifyTask(3).build_model("smallcnn", 1, (8, 8), width=4)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "m.safetensors"))
    other = ClassifyTask(3).build_model("smallcnn", 1, (8, 8), width=8)
    with pytest.raises(WeightsError, match="shape"):
        load_weights(other, tmp_path / "m.safetensors")
    (tmp_path / "junk.pt").write_bytes(b"not a file")
    with pytest.raises(WeightsError, match="cannot read"):
        load_state_dict_file(tmp_path / "junk.pt")
    with pytest.raises(WeightsError, match="not found"):
        load_state_dict_file(tmp_path / "missing.safetensors")
