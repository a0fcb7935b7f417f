"""The model registry and the task registry: names per family, errors listing the choices, metadata that
agrees with the built networks, torchvision-format weights loading into every task's network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simreal.adapt.config import TrainConfig
from simreal.config import validate
from simreal.errors import ConfigError
from simreal.nn.registry import create_model, list_models, model_info
from simreal.tasks.registry import get_task, task_names


def test_families_and_unknown_names() -> None:
    assert list_models("classifier") == ["smallcnn", "resnet18", "resnet34", "resnet50"]
    assert list_models("segmenter") == ["unet_small", "unet_resnet18", "unet_resnet34", "unet_resnet50"]
    assert "squeezedet" in list_models("detector_backbone") and "resnet18" in list_models("detector_backbone")
    with pytest.raises(ConfigError, match=r"model.arch: unknown model 'vgg11' for classifier \(expected one of "
                                          r"smallcnn, resnet18"):
        create_model("vgg11", "classifier", num_classes=2)
    with pytest.raises(ConfigError, match="several families"):
        model_info("resnet18")
    assert set(task_names()) >= {"classify", "segment", "detect", "reid", "instance"}
    assert list_models("instance_segmenter") == ["maskrcnn_resnet18_fpn", "maskrcnn_resnet34_fpn",
                                                 "maskrcnn_resnet50_fpn"]
    with pytest.raises(ConfigError, match="unknown task 'pose'"):
        get_task("pose", 2)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "smallcnn"])
def test_classifier_metadata_matches_the_network(name: str) -> None:
    net = create_model(name, "classifier", num_classes=5, in_channels=3, width=8)
    info = model_info(name, "classifier")
    x = torch.randn(2, 3, 64, 64)
    feat = net.features(x)
    assert feat.shape == (2, net.feature_dim)
    if info.feature_dim is not None:
        assert info.feature_dim == net.feature_dim
    assert info.head == ("fc",) and isinstance(getattr(net, info.head[0]), torch.nn.Linear)


@pytest.mark.parametrize("name", ["resnet18", "squeezedet", "squeezedet_tiny", "squeezedet_tiny_s4"])
def test_detector_backbone_stride(name: str) -> None:
    net = create_model(name, "detector_backbone", in_channels=3, width=8, batch_norm=True).eval()
    info = model_info(name, "detector_backbone")
    y = net(torch.randn(1, 3, 128, 96))
    assert y.shape[1] == net.out_channels and net.stride == 128 // y.shape[2] == 96 // y.shape[3]
    if info.stride is not None:
        assert info.stride == net.stride
    if info.feature_dim is not None:
        assert info.feature_dim == net.out_channels


def test_resnet18_parameter_count_is_torchvisions() -> None:
    net = create_model("resnet18", "classifier", num_classes=1000)
    assert sum(p.numel() for p in net.parameters()) == 11_689_512  # torchvision resnet18()


def _cfg(task: str, arch: str | None, weights: Path | None = None, extra: dict | None = None) -> TrainConfig:
    data = {"task": task, "data": {"domains": [{"path": "x"}], "image_size": [64, 64]},
            "model": {"arch": arch, "weights": str(weights) if weights else None}, **(extra or {})}
    return validate(TrainConfig, data, "cfg")


def test_train_config_resolves_and_validates_architectures() -> None:
    assert _cfg("segment", None).model.arch == "unet_resnet18"
    assert _cfg("classify", None).model.arch == "resnet18"
    with pytest.raises(ConfigError, match=r"model.arch: 'unet_small' is not an architecture for task classify "
                                          r"\(expected one of smallcnn, resnet18, resnet34, resnet50\)"):
        _cfg("classify", "unet_small")
    with pytest.raises(ConfigError, match=r"unknown task 'pose' \(expected one of classify"):
        _cfg("pose", None)
    # ADDA selects by importance-weighted validation unless told otherwise; the others by source validation
    assert _cfg("classify", None, extra={"method": {"name": "adda"}}).selection.policy == "iwv"
    assert _cfg("classify", None, extra={"method": {"name": "dann"}}).selection.policy == "source_val"
    assert _cfg("classify", None, extra={"method": {"name": "adda"}, "selection": {"policy": "last"}}
                ).selection.policy == "last"


@pytest.mark.parametrize(("task", "arch", "where"), [
    ("classify", "resnet18", "backbone."), ("reid", "resnet18", "net.backbone."),
    ("segment", "unet_resnet18", "net.encoder."), ("detect", "resnet18", "backbone.net."),
    ("instance", "maskrcnn_resnet18_fpn", "net.backbone.body."),
])
def test_torchvision_weights_load_into_every_task(tmp_path: Path, task: str, arch: str, where: str) -> None:
    """A torchvision-layout resnet18 file (1000-class head) loads into the task's network; the head is
    skipped where the class count differs or the network has none."""
    from simreal.adapt.api import build_model, task_options

    torch.manual_seed(3)
    tv = create_model("resnet18", "classifier", num_classes=1000).state_dict()
    path = tmp_path / "resnet18-tv.pth"
    torch.save(tv, path)
    extra = {"detect": {"anchors": [[8, 8], [16, 16]]}} if task == "detect" else {}
    cfg = _cfg(task, arch, path, extra)
    kw = task_options(cfg)
    t = get_task(task, 2, ["a", "b"], **({"num_ids": 4} if task == "reid" else {}), **kw)
    model = build_model(cfg, t)
    own = model.state_dict()
    assert torch.equal(own[where + "layer4.1.conv2.weight"], tv["layer4.1.conv2.weight"])
    assert torch.equal(own[where + "bn1.running_var"], tv["bn1.running_var"])
    assert where + "fc.weight" not in own or own[where + "fc.weight"].shape[0] != 1000
