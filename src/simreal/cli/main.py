"""The ``simreal`` console script: registers every command group and turns SimrealError into
one line on stderr and exit code 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from simreal import __version__
from simreal.errors import SimrealError
from simreal.runtime.distributed import ERROR_DIR_ENV
from simreal.runtime.io import atomic_write_text

app = typer.Typer(
    name="simreal",
    help="Synthetic data, sim-to-real refinement, domain adaptation and evaluation for computer vision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # paragraphs re-flow (the default mode keeps source line breaks)
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
    from simreal.cli import (
        anonymize,
        bench,
        config,
        dataset,
        demo,
        faces,
        metrics,
        people,
        refine,
        render,
        train,
        triage,
        view,
    )

    for module in (render, dataset, demo, refine, metrics, train, bench, config, people, faces, triage, view,
                   anonymize):
        module.register(app)


_register()


def _usage_error_types() -> tuple[type[BaseException], ...]:
    # typer raises its (vendored) click's UsageError for bad options; BadParameter is one of them
    return tuple(c for c in typer.BadParameter.__mro__ if c.__name__ in ("UsageError", "ClickException"))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; bad input (a SimrealError or a command-line usage error) becomes one line
    on stderr and exit 2."""
    from simreal.cli import common

    usage = _usage_error_types()
    common.ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = app(args=argv, prog_name="simreal", standalone_mode=False)
    except SimrealError as exc:
        line = f"simreal: error: {exc}"
        errors, rank = os.environ.get(ERROR_DIR_ENV), os.environ.get("RANK", "")
        if errors and rank:  # a worker of `--nproc N`: the launcher prints one rank's line
            atomic_write_text(Path(errors) / f"rank{int(rank)}.txt", line)
        elif rank in ("", "0"):  # one line per job: rank 0 speaks for a torchrun job
            print(line, file=sys.stderr)
        return exc.exit_code
    except RuntimeError as exc:
        if type(exc).__name__ not in ("DistBackendError", "DistNetworkError", "DistError"):
            raise
        # a torchrun worker whose peer stopped: one line (the launcher names the rank that failed)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"simreal: error: rank {os.environ.get('RANK', '?')}: lost contact with the other processes "
              f"({first[:200]})", file=sys.stderr)
        return 1
    except usage as exc:
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
        print(f"simreal: error: {where}{message} (see --help)", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        print("simreal: interrupted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("simreal: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
