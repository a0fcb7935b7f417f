"""``simreal.render(...)``: a scene config (tier name, YAML path, SceneConfig or dict) -> a dataset folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from simreal.render.job import RenderSummary
    from simreal.render.spec import SceneConfig

TIERS = ("low", "high", "high_v1")  # high_v1: the first high tier, kept to compare against
Executor = Literal["local", "ray"]


def tier_path(config: str | Path) -> Path:
    """A config path, or the packaged config of a built-in tier ("low", "high", "high_v1")."""
    if str(config) in TIERS:
        return Path(__file__).resolve().parents[1] / "configs" / f"{config}.yaml"
    return Path(config)


def render(
    config: SceneConfig | str | Path | dict[str, Any] = "low",
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

    ``config`` is a built-in tier ("low", "high", "high_v1"), a scene YAML, a SceneConfig or a dict; ``count``,
    ``seed``, ``resolution`` (square) and ``crop`` override it, as do dotted ``overrides``. The output is
    byte-identical for any number of ``workers`` (default: one per core) and on Ray. ``variant`` overrides
    ``render.variant`` (scalar_rgb, llvm_ad_rgb, cuda_ad_rgb); on Ray, cuda_ad_rgb tasks ask for
    ``gpus_per_task`` GPUs (default 1).
    """
    from simreal.config import load_config
    from simreal.errors import ConfigError
    from simreal.render.job import render_dataset
    from simreal.render.spec import SceneConfig

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
    cfg = load_config(SceneConfig, src, ov)
    return render_dataset(cfg, out, workers=workers or os.cpu_count() or 1, executor=executor, address=address,
                          command=command or "simreal.render()", quiet=not progress, gpus_per_task=gpus_per_task)
