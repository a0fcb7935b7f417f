"""``simreal demo``: the whole loop on embedded defaults (:func:`simreal.demo.run_demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from simreal.cli.common import device_option, quiet_option


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Folder for everything the demo writes."),
    size: Literal["full", "tiny"] = typer.Option(
        "full", "--size", help="full: about 10 minutes on 2 cores; tiny: a smoke run of every step."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1,
                                       help="Parallel render and decoding workers (default: one per core)."),
    device: str | None = device_option(None),
    quiet: bool = quiet_option(),
) -> None:
    """Render (low and high tiers) -> refine toward real photos -> 3-domain DANN -> evaluate on held-out
    renders and real photos -> triage generated videos; prints where everything is and a summary."""
    from simreal.demo import run_demo

    run_demo(out, size, workers=workers, progress=not quiet, echo=typer.echo, device=device)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
