"""The one model registry: ``create_model(name, family=..., **kw)`` and the metadata every stage
needs without building the network.

Families and their builder keywords:

* ``classifier``: ``num_classes, in_channels, width`` -> a network with ``features(x)`` (pooled
  (B, D) features), a linear head ``fc`` and ``feature_dim``. ResNets keep torchvision's names.
* ``segmenter``: ``num_classes, in_channels, width`` -> a :class:`simreal.nn.unet.UNet`.
* ``detector_backbone``: ``in_channels, width, batch_norm`` -> a feature map extractor with
  ``out_channels`` and ``stride``.
* ``instance_segmenter``: ``num_classes, in_channels, base_width, config`` -> a
  :class:`simreal.nn.maskrcnn.MaskRCNN` (``num_classes`` object classes, plus background; ``config``
  a :class:`simreal.nn.maskrcnn_config.MaskRCNNConfig` or its fields).

ResNet-based builders take ``base_width`` (stem/layer1 channels, 64 = torchvision's layout).
* ``generator`` / ``discriminator``: image-to-image networks of the refiners.

Metadata (:class:`ModelInfo`): ``feature_dim`` (None where it depends on ``width``), ``stride`` of
the last feature map, ``head`` (the class-count-dependent module names, skipped when torchvision
weights of another class count are loaded), ``torchvision_prefix`` (where torchvision's parameter
names sit inside the network; None when the network has no torchvision layout) and ``key_map``
(``"module:function"`` renaming the keys of a torchvision state dict first, e.g. legacy names) and
``optional`` (module names a weights file may lack, e.g. the detection heads of an ImageNet backbone file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simreal.registry import Registry

MODELS = Registry("model")


@dataclass(frozen=True)
class ModelInfo:
    """What a stage may know about a registered network without building it."""

    name: str
    family: str
    description: str
    feature_dim: int | None
    stride: int | None
    head: tuple[str, ...]
    torchvision_prefix: str | None
    key_map: str | None = None
    optional: tuple[str, ...] = ()


def register_model(name: str, family: str, *, description: str = "", feature_dim: int | None = None,
                   stride: int | None = None, head: str | tuple[str, ...] | None = None,
                   torchvision_prefix: str | None = None, key_map: str | None = None,
                   optional: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a builder under ``name`` in ``family`` (for models users add)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        MODELS.register(name, fn, family=family, description=description, feature_dim=feature_dim, stride=stride,
                        head=head, torchvision_prefix=torchvision_prefix, key_map=key_map, optional=optional)
        return fn

    return deco


def create_model(name: str, family: str | None = None, *, where: str = "model.arch", **kw: Any) -> Any:
    """Build the network ``name`` (of ``family``); unknown names raise ConfigError listing the choices."""
    return MODELS.build(name, family, where, **kw)


def model_info(name: str, family: str | None = None, where: str = "model.arch") -> ModelInfo:
    e = MODELS.get(name, family, where)
    m = e.meta
    head = m.get("head")
    heads = (head,) if isinstance(head, str) else tuple(head or ())
    return ModelInfo(e.name, e.family, e.description, m.get("feature_dim"), m.get("stride"), heads,
                     m.get("torchvision_prefix"), m.get("key_map"), tuple(m.get("optional") or ()))


def list_models(family: str | None = None) -> list[str]:
    return MODELS.names(family)


# --------------------------------------------------------------------------- builders (imports on use)
def _classifier_resnet(arch: str) -> Callable[..., Any]:
    def build(num_classes: int, in_channels: int = 3, width: int = 32, base_width: int = 64) -> Any:
        from simreal.nn import resnet

        return getattr(resnet, arch)(num_classes, in_channels, base_width)

    return build


def _smallcnn(num_classes: int, in_channels: int = 3, width: int = 32, base_width: int = 64) -> Any:
    from simreal.nn.smallcnn import SmallCNN

    return SmallCNN(num_classes, in_channels, width)


def _unet_resnet(arch: str) -> Callable[..., Any]:
    def build(num_classes: int, in_channels: int = 3, width: int = 16, base_width: int = 64) -> Any:
        from simreal.nn.unet import unet_resnet

        return unet_resnet(arch, num_classes, in_channels, base_width)

    return build


def _unet_small(num_classes: int, in_channels: int = 3, width: int = 16, base_width: int = 64) -> Any:
    from simreal.nn.unet import unet_small

    return unet_small(num_classes, in_channels, width)


def _det_resnet(arch: str) -> Callable[..., Any]:
    def build(in_channels: int = 3, width: int = 16, batch_norm: bool = True) -> Any:
        from simreal.nn.squeezedet import ResNetBackbone

        return ResNetBackbone(arch, in_channels)

    return build


def _squeezedet(tiny_stride: int | None) -> Callable[..., Any]:
    def build(in_channels: int = 3, width: int = 16, batch_norm: bool = True) -> Any:
        from simreal.nn.squeezedet import SQUEEZEDET, SqueezeBackbone, tiny_config

        layers = SQUEEZEDET if tiny_stride is None else tiny_config(width, tiny_stride)
        return SqueezeBackbone(layers, in_channels, batch_norm)

    return build


def _maskrcnn(arch: str) -> Callable[..., Any]:
    def build(num_classes: int, in_channels: int = 3, width: int = 16, base_width: int = 64,
              config: Any = None) -> Any:
        from simreal.nn.maskrcnn import build_maskrcnn

        return build_maskrcnn(arch, num_classes, in_channels, base_width, config)

    return build


def _generator(kind: str) -> Callable[..., Any]:
    def build(in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9, unet_downs: int = 7,
              dropout: bool = False, skip: bool = False) -> Any:
        from simreal.nn.gan import build_generator

        return build_generator(kind, in_channels, out_channels, ngf, n_blocks, unet_downs, dropout, skip)

    return build


def _patchgan(in_channels: int = 3, ndf: int = 64, n_layers: int = 3) -> Any:
    from simreal.nn.gan import NLayerDiscriminator

    return NLayerDiscriminator(in_channels, ndf, n_layers)


_RESNET_DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
MODELS.register("smallcnn", _smallcnn, family="classifier", description="3-stage CNN for small images",
                stride=4, head="fc")
for _arch, _dim in _RESNET_DIMS.items():
    MODELS.register(_arch, _classifier_resnet(_arch), family="classifier", description=f"torchvision-layout {_arch}",
                    feature_dim=_dim, stride=32, head="fc", torchvision_prefix="")
MODELS.register("unet_small", _unet_small, family="segmenter", description="U-Net with a light conv encoder",
                stride=16)
for _arch, _dim in _RESNET_DIMS.items():
    MODELS.register(f"unet_{_arch}", _unet_resnet(_arch), family="segmenter",
                    description=f"U-Net with a torchvision-layout {_arch} encoder", feature_dim=_dim, stride=32,
                    head="fc", torchvision_prefix="encoder.")
MODELS.register("squeezedet_tiny", _squeezedet(8), family="detector_backbone",
                description="a small SqueezeDet-style Fire backbone (width-scaled)", stride=8)
MODELS.register("squeezedet_tiny_s4", _squeezedet(4), family="detector_backbone",
                description="squeezedet_tiny at output stride 4, for objects of a few pixels (heads from a ceiling "
                            "fisheye)", stride=4)
MODELS.register("squeezedet", _squeezedet(None), family="detector_backbone",
                description="the SqueezeDet backbone (Wu et al. 2017)", feature_dim=768, stride=16)
for _arch, _dim in _RESNET_DIMS.items():
    MODELS.register(_arch, _det_resnet(_arch), family="detector_backbone",
                    description=f"torchvision-layout {_arch}, last stage at stride 1 (output stride 16)",
                    feature_dim=_dim, stride=16, head="fc", torchvision_prefix="net.")
for _arch, _dim in _RESNET_DIMS.items():
    MODELS.register(f"maskrcnn_{_arch}_fpn", _maskrcnn(_arch), family="instance_segmenter",
                    description=f"Mask R-CNN, torchvision layout, {_arch} + FPN backbone", feature_dim=_dim, stride=32,
                    head=("roi_heads.box_predictor", "roi_heads.mask_predictor.mask_fcn_logits"),
                    torchvision_prefix="", key_map="simreal.nn.maskrcnn:torchvision_to_simreal",
                    optional=("backbone.fpn", "rpn", "roi_heads"))
MODELS.register("resnet", _generator("resnet"), family="generator",
                description="CycleGAN ResNet generator (n_blocks residual blocks)")
MODELS.register("unet", _generator("unet"), family="generator", description="pix2pix U-Net generator")
MODELS.register("patchgan", _patchgan, family="discriminator", description="PatchGAN (n_layers 3 = 70x70)")
