"""``simreal view FOLDER``: the review viewer of a triage folder."""

from __future__ import annotations

from pathlib import Path

import typer


def view_cmd(
    folder: Path = typer.Argument(..., help="A triage folder (simreal triage run's output)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only)."),
    port: int = typer.Option(8765, "--port", "-p", help="Port to listen on."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
    no_sources: bool = typer.Option(False, "--no-sources",
                                    help="Do not play media files that live outside the folder."),
) -> None:
    """Review triage results: timelines per video, live threshold, rankings, frames with boxes, review marks."""
    from simreal.viewer import serve

    serve(folder, host=host, port=port, open_browser=open_browser, serve_sources=not no_sources)


def register(app: typer.Typer) -> None:
    app.command("view")(view_cmd)
