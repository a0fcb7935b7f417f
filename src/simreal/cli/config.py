"""``simreal config``: the JSON schema of a stage config and the generated config reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import typer

config_app = typer.Typer(help="Config schemas and the config reference.", no_args_is_help=True)


ConfigName = Literal["render", "refine", "train", "triage", "anonymize", "audit", "faces_extract", "faces_render",
                     "faces_words"]


@config_app.command("schema")
def schema_cmd(name: ConfigName = typer.Argument(
        ..., help="render, refine, train, triage, anonymize, audit, faces_extract, faces_render or "
                  "faces_words.")) -> None:
    """Print the JSON schema of a stage config (every key, type, default and description)."""
    from simreal.config_reference import schema

    typer.echo(json.dumps(schema(name), indent=2))


@config_app.command("docs")
def docs_cmd(out: Path | None = typer.Option(None, "--out", "-o", help="Write here (default: print).")) -> None:
    """The config reference in Markdown (docs/config.md is generated with --out docs/config.md)."""
    from simreal.config_reference import markdown
    from simreal.runtime.io import atomic_write_text

    text = markdown()
    if out is None:
        typer.echo(text)
    else:
        atomic_write_text(out, text)
        typer.echo(str(out))


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
