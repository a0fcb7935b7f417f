"""The faces stage's error: bad input named precisely; the CLI prints one line and exits 2."""

from __future__ import annotations

from simreal.errors import SimrealError


class FacesError(SimrealError):
    """A faces input (video, camera, words file, model file, speech engine) is missing or invalid."""
