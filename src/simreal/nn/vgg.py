"""VGG16 feature stack in plain torch with torchvision's layer indices (``features.N.weight``), so a
torchvision ``vgg16`` state dict loads by name. Layers are addressed as conv1_1 … relu5_3, pool1 … pool5."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from simreal.errors import WeightsError

_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names() -> list[str]:
    names: list[str] = []
    block, conv = 1, 1
    for v in _CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


LAYER_NAMES = _layer_names()


class VGG16Features(nn.Module):
    """torchvision ``vgg16().features`` (31 modules). Input: images in [-1, 1]; they are mapped to
    [0, 1] and ImageNet-normalised inside. :meth:`forward` returns the named layers' activations."""

    def __init__(self, layers: Sequence[str] = ("pool5",)) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c = 3
        for v in _CFG:
            if v == "M":
                mods.append(nn.MaxPool2d(2, 2))
            else:
                mods += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                c = int(v)
        self.features = nn.Sequential(*mods)
        unknown = [name for name in layers if name not in LAYER_NAMES]
        if unknown:
            raise WeightsError(
                f"unknown VGG16 layer(s) {unknown}; expected names like {LAYER_NAMES[:5]}, pool5"
            )
        self.layers = list(layers)
        self._idx = {LAYER_NAMES.index(n): n for n in self.layers}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = ((x + 1) / 2 - self.mean) / self.std
        out: dict[str, Tensor] = {}
        last = max(self._idx)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._idx:
                out[self._idx[i]] = x
            if i == last:
                break
        return [out[n] for n in self.layers]


def load_torch_state_dict(path: str | Path, what: str) -> dict[str, Tensor]:
    """A state dict from a ``.safetensors`` file or a torch pickle (``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(
            f"{p}: {what} weights file not found (weights are never downloaded; "
            "pass the local path of the file)"
        )
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{p}: cannot read {what} weights ({exc.__class__.__name__}: {exc})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise WeightsError(f"{p}: expected a state dict of tensors for {what}")
    return sd


def fit_state_dict(
    model: nn.Module, sd: dict[str, Tensor], source: str, what: str, ignore_prefixes: Sequence[str] = ()
) -> None:
    """Load ``sd`` into ``model`` strictly (keys and shapes), ignoring ``ignore_prefixes`` and
    ``num_batches_tracked``; a WeightsError names the first missing/unexpected/mis-shaped key."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    sd = {
        k: v
        for k, v in sd.items()
        if not k.endswith("num_batches_tracked") and not any(k.startswith(p) for p in ignore_prefixes)
    }
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise WeightsError(
            f"{source}: not a {what} state dict ({len(missing)} keys missing, "
            f"{len(unexpected)} unexpected; {detail})"
        )
    for k, v in own.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise WeightsError(
                f"{source}: {what} key {k} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}"
            )
    model.load_state_dict(sd, strict=False)


def load_vgg16(path: str | Path, layers: Sequence[str] = ("pool5",)) -> VGG16Features:
    """VGG16 features from a torchvision-format file (``features.N.*`` keys; ``classifier.*`` ignored)
    or a bare features state dict (``N.*``)."""
    model = VGG16Features(layers)
    sd = load_torch_state_dict(path, "VGG16")
    if not any(k.startswith("features.") for k in sd):
        sd = {f"features.{k}": v for k, v in sd.items()}
    fit_state_dict(model, sd, str(path), "torchvision VGG16", ignore_prefixes=("classifier.",))
    model.eval()
    return model
