"""The refiner run folder (kind ``refine`` in :mod:`simreal.runtime.runstore`): ``run.json`` (model,
channels, datasets, iterations per epoch), ``config.yaml``, ``checkpoints/``, ``metrics.jsonl``,
``samples/``, ``log.txt``, ``report.md``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simreal.errors import ConfigError, RunError, SimrealError
from simreal.refine.config import RefinerConfig
from simreal.refine.models import RefinerModel, build_model
from simreal.runtime.device import resolve_device
from simreal.runtime.runstore import Checkpoint, RunStore

RUN_KIND = "refine"


def open_run(run: str | Path) -> RunStore:
    """A refiner run folder; RunError if it is missing or holds another kind of run."""
    return RunStore.open(run, RUN_KIND)


def inference_config(cfg: RefinerConfig) -> RefinerConfig:
    """The config with training-only extras (perceptual extractors) switched off."""
    data = cfg.model_dump(mode="json")
    data["loss"]["perceptual"] = {"extractor": "none"}
    return RefinerConfig.model_validate(data)


def generator_names(cfg: RefinerConfig) -> tuple[str, ...]:
    """The networks that translate synthetic images (what inference needs)."""
    return ("G_A", "att_A") if cfg.model == "cyclegan" else ("G",)


def load_refiner(run: str | Path, checkpoint: Checkpoint | None = None, device: str | None = "cpu"
                 ) -> tuple[RefinerModel, RefinerConfig, dict[str, Any], dict[str, Any]]:
    """The refiner of a run at ``checkpoint`` (default its latest), in eval mode on ``device`` (checkpoints
    are device-agnostic): (model, config, run info, checkpoint metadata)."""
    dev = resolve_device(device, "--device")
    store = open_run(run)
    cfg = store.config(RefinerConfig)
    if store.info.get("model") != cfg.model:
        raise RunError(f"{store.root}: run.json says {store.info.get('model')} but config.yaml says {cfg.model}")
    found = checkpoint or store.latest_checkpoint()
    if found is None:
        raise RunError(f"{store.root}: no finished checkpoint yet (train first)")
    model = build_model(inference_config(cfg), int(store.info["channels"]))
    store.load_checkpoint(found, {n: m for n, m in model.named_children() if n in generator_names(cfg)})
    model.to(dev)
    model.eval()
    return model, cfg, store.info, {**found.meta, "checkpoint": found.path.name}


def host_refine_fn(model: RefinerModel) -> Callable[[Tensor], Tensor]:
    """Host images in [-1, 1] -> refined host images, through ``model`` on its device, without gradients."""
    dev = next(model.parameters()).device

    def fn(x: Tensor) -> Tensor:
        with torch.no_grad():
            return model.refine(x.to(dev, non_blocking=True)).float().cpu()

    return fn


def import_generator(weights: str | Path, out: str | Path,
                     config: RefinerConfig | str | Path | dict[str, Any] | None = None, channels: int = 3) -> Path:
    """Make a refiner run in ``out`` from the A->B generator weights of the reference implementations
    (pytorch-CycleGAN-and-pix2pix ``latest_net_G_A.pth``, CUT ``latest_net_G.pth``; torch or safetensors
    files, loaded without pickle), so ``simreal refine apply/eval --run out`` use them. The config must
    describe the same generator (``net.*``); instance-norm running statistics of 2018 checkpoints are
    dropped as the reference loader does. Returns the checkpoint written."""
    from simreal.config import load_config
    from simreal.nn.gan import patch_instance_norm_keys
    from simreal.nn.weights import load_into, load_state_dict_file, map_torchvision_keys

    cfg = load_config(RefinerConfig, config, None)
    model = build_model(inference_config(cfg), channels)
    name = generator_names(cfg)[0]
    net = getattr(model, name)
    state = patch_instance_norm_keys(map_torchvision_keys(load_state_dict_file(weights)), net)
    load_into(net, state, str(weights))
    store, _ = RunStore.prepare(out, RUN_KIND, cfg, info={"model": cfg.model, "channels": channels,
                                                           "imported_from": str(weights)})
    if store.latest_checkpoint() is not None:
        raise RunError(f"{out}: run already has checkpoints; import into a new folder")
    ck = store.save_checkpoint(0, {name: net}, meta={"epoch": 0, "iteration": 0, "model": cfg.model,
                                                     "channels": channels, "imported_from": str(weights)})
    return ck.path


def image_refiner(run: str | Path, channels: int, where: str = "refiner") -> Callable[[np.ndarray], np.ndarray]:
    """A function refining one uint8 image (H, W) or (H, W, C) with the latest checkpoint of ``run`` (whole
    image, no gradients); ``channels`` must be the run's. ``where`` names the config key in errors."""
    from simreal.refine.data import to_tensor, to_uint8

    try:
        model, _, info, _ = load_refiner(run)
    except SimrealError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if int(info["channels"]) != channels:
        raise ConfigError(f"{where}: refiner {run} refines {info['channels']}-channel images, the data has "
                          f"{channels}")

    fn = host_refine_fn(model)

    def refine(img: np.ndarray) -> np.ndarray:
        return to_uint8(fn(to_tensor(img)[None])[0])

    return refine

