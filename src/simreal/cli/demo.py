"""``simreal demo``: the main job on embedded defaults: render a small annotated dataset with a
preview, then run the digits sim-to-real benchmark and print its table."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Folder for everything the demo writes."),
    count: int = typer.Option(48, "--count", "-n", help="Images to render."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-w", help="Parallel render workers."),
    digits_seeds: int = typer.Option(3, "--digits-seeds", min=0, help="Seeds for the digits table (0 skips it)."),
    digits_steps: int = typer.Option(1200, "--digits-steps", min=1, help="Training steps per digits model."),
) -> None:
    """Render a low-fidelity canister dataset (stats + preview grid), then the digits sim-to-real table."""
    import simreal
    from simreal.datasets.contract import Dataset
    from simreal.datasets.inspect import dataset_stats, format_stats, preview_grid

    s = simreal.render("low", out / "render_low", count=count, workers=workers, command="simreal demo")
    ds = Dataset.open(s.out)
    typer.echo(format_stats(dataset_stats(ds)))
    grid = preview_grid(ds, out / "render_low_preview.png", n=16)
    typer.echo(f"rendered {s.rendered} images in {s.seconds:.1f}s ({s.steady_rate:.2f} img/s after start-up); "
               f"preview: {grid}")
    if digits_seeds:
        from simreal.cli.bench import digits_cmd

        typer.echo(f"\ndigits sim-to-real benchmark ({digits_seeds} seeds):")
        digits_cmd(out=out / "digits", seeds=digits_seeds, steps=digits_steps, per_class=500, k_real=5,
                   selection="last")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
