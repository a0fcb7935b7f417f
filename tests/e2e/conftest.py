"""Fixtures shared by end-to-end test modules."""

from .faces_fixtures import adda_run, media, rendered, target_chips  # noqa: F401
