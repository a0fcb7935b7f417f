"""Errors raised on bad input. The CLI prints ``str(err)`` as one line and exits 2."""

from __future__ import annotations

import sys


class SimrealError(Exception):
    """Base class: bad input named precisely (file, key or element) with what was expected."""

    exit_code = 2


class ConfigError(SimrealError):
    """A config file or value is invalid."""


class DatasetError(SimrealError):
    """A dataset folder, image or annotation is missing or invalid."""


class AssetError(SimrealError):
    """A mesh, texture, background or LUT is missing or unreadable."""


class WeightsError(SimrealError):
    """A weights or checkpoint file is missing or does not fit the model."""


class RunError(SimrealError):
    """A run folder is missing, from another model, or inconsistent."""


def warn(message: str) -> None:
    """One line on stderr for something the user should know that is not an error (the run goes on)."""
    print(f"simreal: warning: {message}", file=sys.stderr)
