"""``simreal people``: the anny body-model cache and Market-1501 export of people datasets."""

from __future__ import annotations

import typer

app = typer.Typer(help="Synthetic people: the anny body-model cache, dataset export.", no_args_is_help=True)


@app.command("cache")
def cache() -> None:
    """Build the anny body-model cache once per machine (~880 MB, a few minutes); a no-op when ready.

    Location: $SIMREAL_ANNY_CACHE, else $SIMREAL_CACHE_DIR/anny, else ~/.cache/simreal/anny."""
    from simreal.render.people.anny_cache import build_cache

    typer.echo(build_cache())


@app.command("market")
def market(
    dataset: str = typer.Argument(..., help="A people (re-id) dataset folder."),
    out: str = typer.Argument(..., help="Empty or new folder for the Market-1501 layout."),
    test_fraction: float = typer.Option(0.5, "--test-fraction", min=0.0, max=1.0,
                                        help="Share of identities held out for query/gallery."),
) -> None:
    """Export a re-id dataset in the Market-1501 layout and naming (0002_c1s1_000451_03.jpg)."""
    from simreal.datasets.contract import open_dataset
    from simreal.datasets.reid_layouts import export_market1501

    counts = export_market1501(open_dataset(dataset), out, test_fraction)
    typer.echo(f"{out}: {counts['train']} train, {counts['query']} query, {counts['gallery']} gallery images")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="people")
