"""Feature pyramid network (Lin et al. 2017) on a ResNet, in torchvision's layout.

* :class:`FrozenBatchNorm2d`: BatchNorm with fixed statistics and affine values, all buffers (the
  torchvision detection backbones use it with pretrained weights); :func:`freeze_batchnorm` swaps it
  in for every ``BatchNorm2d`` of a module.
* :class:`FeaturePyramidNetwork`: 1x1 laterals (``inner_blocks.i.0``) and 3x3 outputs
  (``layer_blocks.i.0``), nearest-neighbour top-down path, plus torchvision's ``LastLevelMaxPool``
  (``pool`` = ``max_pool2d(P_last, 1, 2)``).
* :class:`BackboneWithFPN`: ``body`` (a torchvision-layout ResNet without ``avgpool``/``fc``) and
  ``fpn``; ``forward`` returns the stage outputs and the pyramid.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with frozen statistics and affine parameters (buffers, not parameters)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):  # type: ignore[no-untyped-def]
        state_dict.pop(prefix + "num_batches_tracked", None)  # a BatchNorm2d state dict loads as well
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def freeze_batchnorm(module: nn.Module, eps: float = 1e-5) -> nn.Module:
    """Replace every BatchNorm2d under ``module`` by a FrozenBatchNorm2d holding its current values."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps)
            with torch.no_grad():
                frozen.weight.copy_(child.weight)
                frozen.bias.copy_(child.bias)
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child, eps)
    return module


def _conv_block(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2))


class FeaturePyramidNetwork(nn.Module):
    """FPN over ``in_channels_list`` (shallow to deep) -> ``out_channels`` maps, plus ``pool``."""

    def __init__(self, in_channels_list: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.inner_blocks = nn.ModuleList(_conv_block(c, out_channels, 1) for c in in_channels_list)
        self.layer_blocks = nn.ModuleList(_conv_block(out_channels, out_channels, 3) for _ in in_channels_list)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, x: OrderedDict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        names, feats = list(x.keys()), list(x.values())
        last = self.inner_blocks[-1](feats[-1])
        results = [self.layer_blocks[-1](last)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.inner_blocks[i](feats[i])
            last = lateral + F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            results.insert(0, self.layer_blocks[i](last))
        out = OrderedDict(zip(names, results, strict=True))
        out["pool"] = F.max_pool2d(results[-1], 1, 2, 0)
        return out


class BackboneWithFPN(nn.Module):
    """``body`` (ResNet stages) + ``fpn`` over the stages in ``returned_layers`` (1..4 = layer1..layer4).

    ``forward(x)`` -> (the four stage outputs [C2, C3, C4, C5], the pyramid: FPN maps named '0', '1',
    ... for the returned stages, shallow to deep, then 'pool')."""

    def __init__(self, body: nn.Module, returned_layers: Sequence[int], out_channels: int) -> None:
        super().__init__()
        for unused in ("avgpool", "fc"):
            if hasattr(body, unused):
                delattr(body, unused)
        self.body = body
        self.returned_layers = [int(i) for i in returned_layers]
        stage_ch = body.stage_channels  # [stem, layer1, ..., layer4]
        self.fpn = FeaturePyramidNetwork([stage_ch[i] for i in self.returned_layers], out_channels)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], OrderedDict[str, torch.Tensor]]:
        stages = self.body.stages(x)[1:]
        picked = OrderedDict((str(j), stages[i - 1]) for j, i in enumerate(self.returned_layers))
        return stages, self.fpn(picked)
