"""``simreal dataset``: inspect dataset folders."""

from __future__ import annotations

import json
from pathlib import Path

import typer

dataset_app = typer.Typer(help="Inspect dataset folders (stats, preview).", no_args_is_help=True)


@dataset_app.command("stats")
def stats(
    path: Path = typer.Argument(..., help="Dataset folder (or image folder)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Counts, per-category counts, box-size and visibility histograms."""
    from simreal.datasets.contract import Dataset
    from simreal.datasets.inspect import dataset_stats, format_stats

    s = dataset_stats(Dataset.open(path))
    typer.echo(json.dumps(s, indent=2) if as_json else format_stats(s))


@dataset_app.command("preview")
def preview(
    path: Path = typer.Argument(..., help="Dataset folder (or image folder)."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    n: int = typer.Option(16, "--n", help="Number of images."),
    tile: int = typer.Option(192, "--tile", help="Tile size in pixels."),
    raw: bool = typer.Option(False, "--raw", help="Images only, no masks or boxes (a contact sheet)."),
) -> None:
    """A grid of images with masks tinted, visible boxes (solid) and amodal boxes (dashed)."""
    from simreal.datasets.contract import Dataset
    from simreal.datasets.inspect import preview_grid

    typer.echo(str(preview_grid(Dataset.open(path), out, n=n, tile=tile, raw=raw)))


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
