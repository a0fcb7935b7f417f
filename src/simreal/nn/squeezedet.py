"""SqueezeDet-style one-stage detector parts in plain torch (Wu et al. 2017, "SqueezeDet").

* :class:`Fire`: squeeze 1x1 -> ReLU -> (expand 1x1 || expand 3x3) -> ReLU, concatenated.
* :class:`SqueezeBackbone`: a SqueezeNet-like stack from a layer list; :data:`SQUEEZEDET` is the
  published SqueezeDet configuration (conv1 64@3x3/2, fire2..fire11, output stride 16),
  :func:`tiny_config` a narrow, output-stride-8 variant for 32-128 px images.
* :class:`ResNetBackbone`: ResNet-18/34/50 (torchvision parameter names under ``net.``) with the
  last stage at stride 1, so its output stride is 16.
* :class:`ConvDet`: a 3x3 convolution predicting, per grid cell and per anchor, C class scores,
  1 confidence and 4 box deltas.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# ("conv", out, kernel, stride) | ("pool",) | ("fire", squeeze, expand1x1, expand3x3)
Layer = tuple

SQUEEZEDET: list[Layer] = [
    ("conv", 64, 3, 2), ("pool",),
    ("fire", 16, 64, 64), ("fire", 16, 64, 64), ("pool",),
    ("fire", 32, 128, 128), ("fire", 32, 128, 128), ("pool",),
    ("fire", 48, 192, 192), ("fire", 48, 192, 192), ("fire", 64, 256, 256), ("fire", 64, 256, 256),
    ("fire", 96, 384, 384), ("fire", 96, 384, 384),
]


def tiny_config(width: int = 16, stride: int = 8) -> list[Layer]:
    """A narrow SqueezeDet for small images: output stride 8 (or 4, without the second pooling, for
    objects smaller than 8 pixels), channels scaled by ``width``."""
    if stride not in (4, 8):
        raise ValueError(f"tiny_config: stride must be 4 or 8, got {stride}")
    w = max(4, int(width))
    s = max(2, w // 4)
    return [("conv", w, 3, 2), ("fire", s, w, w), ("pool",),
            ("fire", 2 * s, 2 * w, 2 * w), *([("pool",)] if stride == 8 else []),
            ("fire", 3 * s, 3 * w, 3 * w), ("fire", 3 * s, 3 * w, 3 * w)]


class Fire(nn.Module):
    """SqueezeNet Fire module; output channels = ``e1 + e3``."""

    def __init__(self, cin: int, squeeze: int, e1: int, e3: int, batch_norm: bool = False) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1, bias=not batch_norm)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1, bias=not batch_norm)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1, bias=not batch_norm)
        self.bn_s = nn.BatchNorm2d(squeeze) if batch_norm else nn.Identity()
        self.bn_e = nn.BatchNorm2d(e1 + e3) if batch_norm else nn.Identity()
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = e1 + e3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.relu(self.bn_s(self.squeeze(x)))
        return self.relu(self.bn_e(torch.cat([self.expand1x1(s), self.expand3x3(s)], 1)))


def fire_param_count(cin: int, squeeze: int, e1: int, e3: int, batch_norm: bool = False) -> int:
    """Closed-form parameter count of :class:`Fire` (BatchNorm: weight + bias per channel)."""
    if batch_norm:
        return cin * squeeze + squeeze * e1 + 9 * squeeze * e3 + 2 * squeeze + 2 * (e1 + e3)
    return cin * squeeze + squeeze + squeeze * e1 + e1 + 9 * squeeze * e3 + e3


class SqueezeBackbone(nn.Module):
    """A SqueezeNet-like feature extractor built from a layer list (see :data:`SQUEEZEDET`)."""

    def __init__(self, layers: Sequence[Layer], in_channels: int = 3, batch_norm: bool = False) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c, stride = in_channels, 1
        for spec in layers:
            if spec[0] == "conv":
                _, cout, k, st = spec
                mods += [nn.Conv2d(c, cout, k, stride=st, padding=k // 2, bias=not batch_norm)]
                mods += [nn.BatchNorm2d(cout)] if batch_norm else []
                mods += [nn.ReLU(inplace=True)]
                c, stride = cout, stride * st
            elif spec[0] == "pool":
                mods.append(nn.MaxPool2d(3, stride=2, padding=1))
                stride *= 2
            elif spec[0] == "fire":
                fire = Fire(c, spec[1], spec[2], spec[3], batch_norm)
                mods.append(fire)
                c = fire.out_channels
            else:
                raise ValueError(f"unknown layer {spec!r}")
        self.body = nn.Sequential(*mods)
        self.out_channels, self.stride = c, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResNetBackbone(nn.Module):
    """A torchvision-layout ResNet whose last stage runs at stride 1 (output stride 16).

    Parameter names are torchvision's under ``net.``; the unused ``fc`` has one output so that a
    torchvision 1000-class head is skipped by the weight loader."""

    def __init__(self, arch: str = "resnet18", in_channels: int = 3) -> None:
        super().__init__()
        from simreal.nn import resnet

        self.net = getattr(resnet, arch)(1, in_channels)
        first = self.net.layer4[0]
        for m in (getattr(first, "conv1", None), getattr(first, "conv2", None)):
            if m is not None and m.stride == (2, 2):
                m.stride = (1, 1)
        if first.downsample is not None:
            first.downsample[0].stride = (1, 1)
        self.out_channels, self.stride = int(self.net.feature_dim), 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.stages(x)[-1]


class ConvDet(nn.Module):
    """3x3 convolution -> (B, H*W*K, C + 1 + 4): per anchor C class logits, 1 confidence logit and
    4 box deltas; anchors are ordered (row, column, anchor)."""

    def __init__(self, cin: int, num_anchors: int, num_classes: int) -> None:
        super().__init__()
        self.num_anchors, self.num_classes = num_anchors, num_classes
        self.conv = nn.Conv2d(cin, num_anchors * (num_classes + 5), 3, padding=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.conv.weight, std=0.001)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        y = self.conv(x).permute(0, 2, 3, 1)
        return y.reshape(b, h * w * self.num_anchors, self.num_classes + 5)
