"""Options shared by every command, so they are spelled and mean the same everywhere."""

from __future__ import annotations

import typer

QUIET_HELP = "No progress bar (the log file in the output folder is still written)."
SET_HELP = "Override a config key (YAML value), e.g. --set optim.steps=200; repeatable."


def quiet_option() -> bool:
    """``-q/--quiet``: hide progress bars."""
    return typer.Option(False, "--quiet", "-q", help=QUIET_HELP)


def set_option(example: str = "optim.steps=200") -> list[str]:
    """``--set KEY=VALUE`` dotted-key config overrides."""
    return typer.Option([], "--set", metavar="KEY=VALUE",
                        help=f"Override a config key (YAML value), e.g. --set {example}; repeatable.")


def device_option() -> str | None:
    """``--device auto|cpu|cuda|cuda:N|mps`` (None: the config's ``device``, auto by default)."""
    from simreal.runtime.device import DEVICE_HELP

    return typer.Option(None, "--device", help=DEVICE_HELP + " Default: the config's device (auto).")
