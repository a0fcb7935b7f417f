"""Loading weights from local files: safetensors or ``torch.load(weights_only=True)``, with
torchvision key mapping ("module." prefixes, nested "state_dict"/"model" keys, a prefix for wrapped
backbones) and errors that say which keys or shapes do not fit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from simreal.errors import WeightsError


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat dict of tensors from a ``.safetensors`` file or a torch file (weights_only=True).

    Checkpoints that nest the weights under ``state_dict`` or ``model`` are unwrapped.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(p))
        else:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad weights file
        first = (str(exc).splitlines() or [""])[0][:200]
        raise WeightsError(f"{p}: cannot read weights ({type(exc).__name__}: {first})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{p}: expected a state dict (name -> tensor)")
    return {str(k): v for k, v in obj.items()}


def map_torchvision_keys(state: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Strip DataParallel ``module.`` prefixes and put torchvision names under ``prefix``
    (e.g. ``"backbone."`` for a ResNet used as an encoder)."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        while k.startswith("module."):
            k = k[len("module."):]
        out[prefix + k] = v
    return out


def load_into(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "weights", skip_prefixes: tuple[str, ...] = (),
    allow_missing: tuple[str, ...] = (),
) -> list[str]:
    """Copy ``state`` into ``model``. Keys starting with ``skip_prefixes`` are ignored (e.g. a 1000-class
    ``fc.`` head); model keys starting with ``allow_missing`` may be absent. Anything else that does not
    fit raises WeightsError naming the first offending keys. Returns the keys that were skipped."""
    own = model.state_dict()
    skipped = [k for k in state if k.startswith(skip_prefixes)] if skip_prefixes else []
    state = {k: v for k, v in state.items() if k not in skipped}
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state and not k.startswith(allow_missing) and
               not k.endswith("num_batches_tracked")]
    if unexpected or missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise WeightsError(f"{source}: weights do not fit the model: " + "; ".join(parts))
    for k, v in state.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise WeightsError(
                f"{source}: weights do not fit the model: {k} has shape {tuple(v.shape)}, "
                f"model expects {tuple(own[k].shape)}"
            )
    model.load_state_dict(state, strict=False)
    return skipped


def load_weights(model: nn.Module, path: str | Path, prefix: str = "", skip_prefixes: tuple[str, ...] = (),
                 allow_missing: tuple[str, ...] = ()) -> list[str]:
    """Load a local weights file (torchvision or simreal format) into ``model``."""
    state = map_torchvision_keys(load_state_dict_file(path), prefix)
    return load_into(model, state, str(path), skip_prefixes, allow_missing)
