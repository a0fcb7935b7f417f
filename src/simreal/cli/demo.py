"""``simreal demo``: the main job on embedded defaults (render a small dataset, preview it)."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Folder for everything the demo writes."),
    count: int = typer.Option(48, "--count", "-n", help="Images to render."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-w", help="Parallel workers."),
) -> None:
    """Render a small low-fidelity canister dataset, print its stats and write a preview grid."""
    from simreal.cli.render import config_path
    from simreal.config import load_config
    from simreal.datasets.contract import Dataset
    from simreal.datasets.inspect import dataset_stats, format_stats, preview_grid
    from simreal.render.job import render_dataset
    from simreal.render.spec import SceneConfig

    cfg = load_config(SceneConfig, config_path("low"), {"count": count})
    s = render_dataset(cfg, out / "render_low", workers=workers, command="simreal demo")
    ds = Dataset.open(s.out)
    typer.echo(format_stats(dataset_stats(ds)))
    grid = preview_grid(ds, out / "render_low_preview.png", n=16)
    typer.echo(f"rendered {s.rendered} images in {s.seconds:.1f}s ({s.rendered / max(s.seconds, 1e-9):.2f} img/s); "
               f"preview: {grid}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
