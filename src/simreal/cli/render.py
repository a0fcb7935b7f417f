"""``simreal render``: annotated synthetic images from a scene config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from simreal.config import load_config
from simreal.render.spec import SceneConfig

TIERS = ("low", "high")


def config_path(config: str) -> Path:
    """A config path, or the name of a built-in tier config ("low", "high")."""
    if config in TIERS:
        return Path(__file__).resolve().parents[1] / "configs" / f"{config}.yaml"
    return Path(config)


def load_render_config(path: Path, overrides: dict[str, object]) -> object:
    """A scene config, or a people config when the YAML says ``type: people``."""
    from simreal.config import read_yaml

    data = read_yaml(path) if path.is_file() else None
    if isinstance(data, dict) and data.get("type") == "people":
        from simreal.render.people.spec import PeopleConfig

        return load_config(PeopleConfig, path, overrides)
    return load_config(SceneConfig, path, overrides)


def render(
    config: str = typer.Option("low", "--config", "-c", help="Scene config YAML, or a built-in tier: low | high."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write (or resume)."),
    count: int | None = typer.Option(None, "--count", "-n", help="Number of samples (overrides the config)."),
    seed: int | None = typer.Option(None, "--seed", help="Root seed (overrides the config)."),
    resolution: int | None = typer.Option(None, "--resolution", "-r", help="Square resolution in pixels."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-w", help="Parallel workers (one core each)."),
    executor: str = typer.Option("local", "--executor", help="local (process pool) or ray."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (default: local Ray)."),
    crop: bool = typer.Option(False, "--crop", help="Write object-centred crops instead of full images."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render an annotated synthetic dataset (COCO + 16-bit instance masks) with domain randomization.

    Every image is reproducible from (seed, index); the output is byte-identical for any number of
    workers. Re-running the same command resumes: only missing images are rendered.
    """
    from simreal.render.job import render_dataset

    overrides: dict[str, object] = {}
    if count is not None:
        overrides["count"] = count
    if seed is not None:
        overrides["seed"] = seed
    if resolution is not None:
        overrides["resolution"] = [resolution, resolution]
    if crop:
        overrides["crop.enabled"] = True
    cfg = load_render_config(config_path(config), overrides)
    s = render_dataset(cfg, out, workers=workers, executor=executor, address=address,
                       command=" ".join(["simreal", *sys.argv[1:]]), quiet=quiet)
    typer.echo(
        f"{s.out}: {s.images} images, {s.annotations} annotations "
        f"({s.rendered} rendered, {s.skipped} already done, {s.failed} failed) in {s.seconds:.1f}s"
    )
    if s.failed:
        typer.echo(f"simreal: {s.failed} samples failed (first: {s.first_error}); see {s.out / 'render.log'}; "
                   "run the same command again to retry them", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("render")(render)
