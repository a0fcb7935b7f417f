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


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="people")
