"""The ``simreal`` console script: registers every command group and turns SimrealError into
one line on stderr and exit code 2."""

from __future__ import annotations

import sys

import typer

from simreal import __version__
from simreal.errors import SimrealError

app = typer.Typer(
    name="simreal",
    help="Synthetic data, sim-to-real refinement, domain adaptation and evaluation for computer vision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"simreal {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """simreal: render, refine, train/adapt, evaluate."""


def _register() -> None:
    # Each command group lives in its own module with a ``register(app)`` function.
    from simreal.cli import bench, dataset, demo, metrics, refine, render, train, triage, view

    for module in (render, dataset, demo, refine, metrics, train, bench, triage, view):
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; bad input becomes one line on stderr and exit 2."""
    try:
        app(args=argv, standalone_mode=True)
    except SimrealError as exc:
        print(f"simreal: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("simreal: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
