"""Refiner checkpoints: ``checkpoints/epoch_NNNN.safetensors`` (networks, optimiser moments, image pools,
feature means) plus ``epoch_NNNN.json`` (epoch, iteration, config, optimiser hyper-parameters). The JSON
is written after the tensors, so a checkpoint without it is unfinished and ignored."""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from simreal.errors import RunError, WeightsError
from simreal.refine.models import RefinerModel
from simreal.runtime.io import atomic_path, atomic_write_json

CKPT_RE = re.compile(r"^epoch_(\d{4,})\.json$")


def _net_children(model: RefinerModel) -> dict[str, torch.nn.Module]:
    return {n: m for n, m in model.named_children() if any(True for _ in m.parameters())}


def model_tensors(model: RefinerModel) -> dict[str, torch.Tensor]:
    """Every network's state dict under ``net.<name>.``, optimiser state under ``opt.<name>.``."""
    out: dict[str, torch.Tensor] = {}
    for name, net in _net_children(model).items():
        for k, v in net.state_dict().items():
            out[f"net.{name}.{k}"] = v.detach().clone().contiguous()
    for oname, opt in model.optimizers.items():
        for idx, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                t = v if isinstance(v, torch.Tensor) else torch.tensor(v)
                out[f"opt.{oname}.{idx}.{k}"] = t.detach().clone().contiguous()
    for k, v in model.extra_tensors().items():
        out[f"extra.{k}"] = v.detach().clone().contiguous()
    return out


def save_checkpoint(run: Path, model: RefinerModel, meta: dict[str, Any], keep: int = 3) -> Path:
    """Write checkpoint ``epoch_{meta['epoch']:04d}`` atomically and prune old ones beyond ``keep``."""
    folder = run / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"epoch_{int(meta['epoch']):04d}"
    with atomic_path(folder / f"{stem}.safetensors") as tmp:
        save_file(model_tensors(model), str(tmp), metadata={"kind": "simreal.refine", "model": model.kind})
    doc = dict(meta)
    doc.update(
        {
            "kind": "refine",
            "model": model.kind,
            "tensors": f"{stem}.safetensors",
            "optim_param_groups": {
                n: [{k: v for k, v in g.items() if k != "params"} for g in o.state_dict()["param_groups"]]
                for n, o in model.optimizers.items()
            },
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    atomic_write_json(folder / f"{stem}.json", doc)
    for old in list_checkpoints(run)[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return folder / f"{stem}.json"


def list_checkpoints(run: Path) -> list[Path]:
    """Finished checkpoints' JSON files, oldest first."""
    folder = run / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if CKPT_RE.match(p.name) and p.with_suffix(".safetensors").is_file()]
    return sorted(found, key=lambda p: int(CKPT_RE.match(p.name).group(1)))  # type: ignore[union-attr]


def read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: unreadable checkpoint metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != "refine":
        raise RunError(f"{path}: not a refiner checkpoint")
    return meta


def latest_checkpoint(run: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest finished checkpoint and its metadata, or None."""
    found = list_checkpoints(run)
    if not found:
        return None
    return found[-1], read_meta(found[-1])


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: unreadable checkpoint tensors ({exc})") from None


def load_checkpoint(
    model: RefinerModel, json_path: Path, optimizers: bool = True, nets: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (all networks, or only ``nets``); returns its metadata."""
    meta = read_meta(json_path)
    if meta.get("model") != model.kind:
        raise RunError(f"{json_path}: checkpoint of a {meta.get('model')} refiner, expected {model.kind}")
    tpath = json_path.with_suffix(".safetensors")
    tensors = load_tensors(tpath)
    children = _net_children(model)
    for name, net in children.items():
        if nets is not None and name not in nets:
            continue
        prefix = f"net.{name}."
        sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        own = net.state_dict()
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        bad = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or bad:
            raise WeightsError(
                f"{tpath}: network {name} does not fit the configured model "
                f"(missing {missing[:2]}, unexpected {unexpected[:2]}, mis-shaped {bad[:2]})"
            )
        net.load_state_dict(sd)
    if optimizers:
        for oname, opt in model.optimizers.items():
            prefix = f"opt.{oname}."
            state: dict[int, dict[str, torch.Tensor]] = {}
            for k, v in tensors.items():
                if k.startswith(prefix):
                    idx, key = k[len(prefix) :].split(".", 1)
                    state.setdefault(int(idx), {})[key] = v
            sd = opt.state_dict()
            sd["state"] = state
            try:
                opt.load_state_dict(sd)
            except (ValueError, KeyError) as exc:
                raise WeightsError(f"{tpath}: optimiser {oname} state does not fit ({exc})") from None
        model.load_extra_tensors(
            {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
        )
    return meta
