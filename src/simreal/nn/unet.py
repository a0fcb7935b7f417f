"""U-Net (Ronneberger et al. 2015) with a ResNet-18/34/50 encoder or a light conv encoder for tiny images.

The encoder returns feature maps at increasing strides (ResNet: 2, 4, 8, 16, 32); the decoder goes back
up one stride at a time (bilinear upsampling, concatenation with the skip, two 3x3 conv+BN+ReLU) and a
final 1x1 conv gives ``num_classes + 1`` logits (class 0 = background) at input resolution. Inputs whose
size is not a multiple of the encoder's total stride are zero-padded and the logits cropped back.
The ResNet encoder keeps torchvision's parameter names under ``encoder.`` (``weights_prefix``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class ResNetEncoder(nn.Module):
    """A torchvision-layout ResNet without its classifier: ``forward`` -> [s2, s4, s8, s16, s32] maps."""

    def __init__(self, arch: str, in_channels: int = 3, base_width: int = 64) -> None:
        super().__init__()
        from simreal.nn import resnet

        net = getattr(resnet, arch)(1, in_channels, base_width)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(net, name))
        self.channels = list(net.stage_channels)
        self.strides = [2, 4, 8, 16, 32]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s0 = self.relu(self.bn1(self.conv1(x)))
        s1 = self.layer1(self.maxpool(s0))
        s2 = self.layer2(s1)
        s3 = self.layer3(s2)
        return [s0, s1, s2, s3, self.layer4(s3)]


class LightEncoder(nn.Module):
    """Tiny images (e.g. 32-64 px): ``depth`` levels of two 3x3 convs, widths w, 2w, 4w, ...; strides 1, 2, 4, ..."""

    def __init__(self, in_channels: int = 3, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(depth)]
        pairs = zip([in_channels] + widths[:-1], widths, strict=True)
        self.blocks = nn.ModuleList(double_conv(cin, cout) for cin, cout in pairs)
        self.channels = widths
        self.strides = [2**i for i in range(depth)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats


class UNet(nn.Module):
    """Encoder + skip-connected decoder; ``forward(x)`` -> logits (B, num_classes + 1, H, W)."""

    def __init__(self, encoder: nn.Module, num_classes: int, decoder_widths: list[int] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        ch, strides = list(encoder.channels), list(encoder.strides)
        self.total_stride = strides[-1]
        widths = decoder_widths or [max(16, c // 2) for c in ch[:-1]]
        ups, cin = [], ch[-1]
        for skip_c, w in zip(reversed(ch[:-1]), reversed(widths), strict=True):
            ups.append(double_conv(cin + skip_c, w))
            cin = w
        self.up_blocks = nn.ModuleList(ups)
        # the shallowest skip is at stride > 1 for ResNet: one more upsampling step to full resolution
        self.final_up = double_conv(cin, max(16, cin // 2)) if strides[0] > 1 else None
        if self.final_up is not None:
            cin = max(16, cin // 2)
        self.decoder_channels = cin
        self.head = nn.Conv2d(cin, num_classes + 1, 1)
        self.feature_dim = ch[-1]

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(x)

    def pooled(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Global average of the bottleneck (deepest) features: (B, feature_dim)."""
        return feats[-1].mean(dim=(2, 3))

    def decode(self, feats: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        x = feats[-1]
        for block, skip in zip(self.up_blocks, reversed(feats[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        if self.final_up is not None:
            x = self.final_up(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.head(x)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad H and W (bottom/right) up to a multiple of the total stride."""
        h, w = x.shape[-2:]
        s = self.total_stride
        ph, pw = (-h) % s, (-w) % s
        return F.pad(x, (0, pw, 0, ph)) if ph or pw else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        xp = self.pad(x)
        return self.decode(self.encode(xp), tuple(xp.shape[-2:]))[..., :h, :w]


def unet_resnet(arch: str, num_classes: int, in_channels: int = 3, base_width: int = 64) -> UNet:
    """U-Net with a ResNet-18/34/50 encoder (``arch`` = "resnet18" | "resnet34" | "resnet50"; ``base_width``
    64 = torchvision's layout)."""
    return UNet(ResNetEncoder(arch, in_channels, base_width), num_classes)


def unet_small(num_classes: int, in_channels: int = 3, width: int = 16, depth: int = 4) -> UNet:
    """Light U-Net for tiny images: strides 1..2**(depth-1), widths ``width`` .. ``width * 2**(depth-1)``."""
    enc = LightEncoder(in_channels, width, depth)
    return UNet(enc, num_classes, decoder_widths=list(enc.channels[:-1]))
