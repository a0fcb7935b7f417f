"""``simreal.render(...)``: a scene config (tier name, YAML path, SceneConfig or dict) -> a dataset folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from simreal.render.job import RenderSummary
    from simreal.render.people.spec import PeopleConfig
    from simreal.render.spec import SceneConfig

TIERS = ("low", "high", "high_v1")  # high_v1: the first high tier, kept to compare against
Executor = Literal["local", "ray"]


def tier_path(config: str | Path) -> Path:
    """A config path, or the packaged config of a built-in tier ("low", "high", "high_v1")."""
    if str(config) in TIERS:
        return Path(__file__).resolve().parents[1] / "configs" / f"{config}.yaml"
    return Path(config)


# ``type:`` of a render config -> (module, class); anything else is a scene config
CONFIG_KINDS: dict[str, tuple[str, str]] = {
    "people": ("simreal.render.people.spec", "PeopleConfig"),
    "people_scene": ("simreal.render.people.scene_spec", "PeopleSceneConfig"),
}


def config_kind(config: Any) -> type:
    """The config class of a render config: ``type: people`` selects the people re-id crops config,
    ``type: people_scene`` the ceiling-fisheye people scenes, anything else the scene config."""
    import importlib

    from simreal.config import StrictModel, read_yaml
    from simreal.render.spec import SceneConfig

    if isinstance(config, StrictModel):
        return type(config)
    data = read_yaml(config) if isinstance(config, (str, Path)) and Path(config).is_file() else config
    kind = data.get("type") if isinstance(data, dict) else None
    if isinstance(kind, str) and kind in CONFIG_KINDS:
        module, name = CONFIG_KINDS[kind]
        return getattr(importlib.import_module(module), name)
    return SceneConfig


def load_render_config(config: Any, overrides: dict[str, Any] | None = None) -> Any:
    """A validated render config (scene or people, see :func:`config_kind`) from a path, dict or object."""
    from simreal.config import load_config
    from simreal.errors import ConfigError

    kind = config_kind(config)
    if "crop.enabled" in (overrides or {}) and "crop" not in kind.model_fields:
        raise ConfigError(f"--crop: a {kind.__name__} has no crop mode (its images are crops or whole scenes already)")
    return load_config(kind, config, overrides)


def render(
    config: SceneConfig | PeopleConfig | str | Path | dict[str, Any] = "low",
    out: str | Path = "data/render",
    *,
    count: int | None = None,
    seed: int | None = None,
    resolution: int | None = None,
    crop: bool = False,
    overrides: dict[str, Any] | None = None,
    workers: int | None = None,
    executor: Executor = "local",
    address: str | None = None,
    progress: bool = True,
    command: str | None = None,
    variant: str | None = None,
    gpus_per_task: float | None = None,
) -> RenderSummary:
    """Render an annotated synthetic dataset into ``out`` (resuming whatever is already there).

    ``config`` is a built-in tier ("low", "high", "high_v1"), a YAML, a SceneConfig/PeopleConfig or a dict (a
    people config says ``type: people`` or ``type: people_scene``: ``count`` characters × ``views`` crops, or
    ``count`` fisheye scenes); ``count``,
    ``seed``, ``resolution`` (square) and ``crop`` override it, as do dotted ``overrides``. The output is
    byte-identical for any number of ``workers`` (default: one per core) and on Ray. ``variant`` overrides
    ``render.variant`` (scalar_rgb, llvm_ad_rgb, cuda_ad_rgb); on Ray, cuda_ad_rgb tasks ask for
    ``gpus_per_task`` GPUs (default 1).
    """
    from simreal.errors import ConfigError
    from simreal.render.job import render_dataset

    if executor not in ("local", "ray"):
        raise ConfigError(f"executor: {executor!r} is not an executor (expected local or ray)")
    ov: dict[str, Any] = dict(overrides or {})
    if count is not None:
        ov["count"] = count
    if seed is not None:
        ov["seed"] = seed
    if resolution is not None:
        ov["resolution"] = [resolution, resolution]
    if crop:
        ov["crop.enabled"] = True
    if variant is not None:
        ov["render.variant"] = variant
    src = tier_path(config) if isinstance(config, (str, Path)) else config
    cfg = load_render_config(src, ov)
    return render_dataset(cfg, out, workers=workers or os.cpu_count() or 1, executor=executor, address=address,
                          command=command or "simreal.render()", quiet=not progress, gpus_per_task=gpus_per_task)
