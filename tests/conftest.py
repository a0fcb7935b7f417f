"""Shared fixtures: everything makes its own tiny data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")


@pytest.fixture(scope="session")
def anny_ready() -> None:
    """The anny body-model cache, built at most once per machine (``make test`` builds it first via
    ``make anny-cache``; this builds it when tests are run directly on a fresh machine)."""
    from simreal.render.people.anny_cache import require_cache

    require_cache(build=True)
