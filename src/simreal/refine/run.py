"""The refiner run folder: ``run.json`` (what kind of run, channels, datasets), ``config.yaml`` (resolved),
``checkpoints/``, ``metrics.jsonl``, ``samples/``, ``log.txt``, ``report.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from simreal.config import validate
from simreal.errors import ConfigError, RunError
from simreal.refine.checkpoint import latest_checkpoint, load_checkpoint
from simreal.refine.config import RefinerConfig
from simreal.refine.models import RefinerModel, build_model

RUN_JSON = "run.json"
RUN_KIND = "refine"


def read_run(run: str | Path) -> dict[str, Any]:
    """``run.json`` of a refiner run; RunError if the folder is missing or holds another kind of run."""
    root = Path(run)
    if not root.is_dir():
        raise RunError(f"{root}: run folder not found")
    path = root / RUN_JSON
    if not path.is_file():
        raise RunError(f"{root}: not a refiner run folder (no {RUN_JSON})")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None
    if not isinstance(info, dict) or info.get("kind") != RUN_KIND:
        kind = info.get("kind") if isinstance(info, dict) else None
        raise RunError(
            f"{root}: a {kind or 'non-refiner'} run, expected a refiner run (simreal refine train)"
        )
    return info


def read_run_config(run: str | Path) -> RefinerConfig:
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise RunError(f"{path}: run config not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RunError(f"{path}: invalid YAML ({exc})") from None
    try:
        return validate(RefinerConfig, data, str(path))
    except ConfigError as exc:
        raise RunError(str(exc)) from None


def inference_config(cfg: RefinerConfig) -> RefinerConfig:
    """The config with training-only extras (perceptual extractors) switched off."""
    data = cfg.model_dump(mode="json")
    data["loss"]["perceptual"] = {"extractor": "none"}
    return RefinerConfig.model_validate(data)


def load_refiner(run: str | Path) -> tuple[RefinerModel, RefinerConfig, dict[str, Any], dict[str, Any]]:
    """The refiner of a run at its latest checkpoint, in eval mode: (model, config, run info, ckpt meta)."""
    root = Path(run)
    info = read_run(root)
    cfg = read_run_config(root)
    if info.get("model") != cfg.model:
        raise RunError(f"{root}: run.json says {info.get('model')} but config.yaml says {cfg.model}")
    found = latest_checkpoint(root)
    if found is None:
        raise RunError(f"{root}: no finished checkpoint yet (train first)")
    model = build_model(inference_config(cfg), int(info["channels"]))
    gen = ("G_A", "att_A") if cfg.model == "cyclegan" else ("G",)
    meta = load_checkpoint(model, found[0], optimizers=False, nets=gen)
    model.eval()
    return model, cfg, info, meta
