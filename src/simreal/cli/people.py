"""``simreal people``: the anny body-model cache and Market-1501 export of people datasets."""

from __future__ import annotations

import typer

from simreal.cli.common import quiet_option, set_option
from simreal.errors import ConfigError

app = typer.Typer(help="Synthetic people: the anny body-model cache, dataset export, procedural room photos.",
                  no_args_is_help=True)


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


@app.command("rooms")
def rooms(
    out: str = typer.Argument(..., help="Folder for the room photos and their furniture JSON."),
    config: str = typer.Option(..., "--config", "-c", help="A people-scene config (type: people_scene): its "
                               "background.rooms, camera and resolution are used."),
    count: int | None = typer.Option(None, "--count", "-n", min=1, help="Number of rooms (overrides "
                                     "background.rooms.count)."),
    set_: list[str] = set_option("background.rooms.width=[6,9]"),
    quiet: bool = quiet_option(),
) -> None:
    """Render procedural rooms as ceiling-fisheye photos with furniture JSON (room_0000.png + .json), a
    photo set that background.photo_folder reads like real photos."""
    from simreal.config import parse_overrides
    from simreal.render.api import load_render_config
    from simreal.render.people.room import export_rooms
    from simreal.render.people.scene_spec import PeopleSceneConfig

    overrides = parse_overrides(set_)
    if count is not None:
        overrides["background.rooms.count"] = count
    cfg = load_render_config(config, overrides)
    if not isinstance(cfg, PeopleSceneConfig):
        raise ConfigError(f"{config}: expected a people-scene config (type: people_scene)")
    n = export_rooms(cfg, out, quiet=quiet)
    typer.echo(f"{out}: {n} rooms written ({cfg.background.rooms.count - n} already there)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="people")
