"""The anny model cache: where it lives, whether it is built, and building it once per machine.

anny parses ~1,400 MakeHuman target files on first use and stores the result (about 880 MB of
safetensors; 2-5 minutes on 2 cores). simreal keeps that cache under its own folder:

- ``$SIMREAL_ANNY_CACHE`` if set, else ``$SIMREAL_CACHE_DIR/anny``, else ``~/.cache/simreal/anny``.

A cache is *ready* when ``ready.json`` (written last) names the installed anny version. Building
happens in a temporary sibling folder that is renamed into place, under a file lock, so a killed
build never leaves a half-written cache and two processes never build at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from simreal.errors import AssetError

CACHE_ENV = "SIMREAL_ANNY_CACHE"
ROOT_ENV = "SIMREAL_CACHE_DIR"
READY = "ready.json"

# The one model configuration simreal uses (every argument is part of anny's cache key).
MODEL_KWARGS: dict[str, str] = {
    "rig": "anny", "topology": "anny", "facial_actions": "all", "phenotypes": "all", "local_changes": "none",
}


def anny_cache_dir() -> Path:
    """The anny cache folder (see the module docstring for the environment variables)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    root = os.environ.get(ROOT_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "simreal"
    return base / "anny"


def anny_version() -> str | None:
    """The installed anny version, or None when anny is not installed."""
    import importlib.metadata

    try:
        return importlib.metadata.version("anny")
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_ready(path: Path | None = None) -> bool:
    """Whether the cache at ``path`` (default: :func:`anny_cache_dir`) was built by this anny version."""
    path = anny_cache_dir() if path is None else path
    try:
        info = json.loads((path / READY).read_text())
    except (OSError, ValueError):
        return False
    return info.get("anny") == anny_version() and info.get("model") == MODEL_KWARGS


def _require_anny() -> str:
    version = anny_version()
    if version is None:
        raise AssetError("anny is not installed: people rendering needs the 'people' extra "
                         "(pip install 'simreal[people]', or `make venv`)")
    return version


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_cache(log: bool = True) -> Path:
    """Build the cache if it is not ready (a no-op otherwise) and return its folder.

    Raises :class:`AssetError` with one line when anny is missing or the folder cannot be written."""
    version = _require_anny()
    target = anny_cache_dir()
    if cache_ready(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = target.parent / f".{target.name}.lock"
        lock.touch(exist_ok=True)
    except OSError as exc:
        raise AssetError(f"anny cache {target}: not built and cannot be built here ({exc.strerror}: {exc.filename}); "
                         f"set {CACHE_ENV} to a writable folder") from None
    with _lock(lock):
        if cache_ready(target):  # another process built it while we waited
            return target
        tmp = target.parent / f".{target.name}.building-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        if log:
            print(f"simreal: building the anny body-model cache in {target} (once per machine; a few minutes)",
                  flush=True)
        try:
            tmp.mkdir(parents=True)
            _construct(tmp)
            (tmp / READY).write_text(json.dumps({"anny": version, "model": MODEL_KWARGS,
                                                 "seconds": round(time.perf_counter() - t0, 1)}))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except OSError as exc:
            raise AssetError(f"anny cache {target}: building failed ({exc}); "
                             f"set {CACHE_ENV} to a writable folder with ~1 GB free") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if log:
            print(f"simreal: anny cache ready in {time.perf_counter() - t0:.0f}s", flush=True)
    return target


def _construct(folder: Path):  # noqa: ANN202 - returns an anny.Anny
    """Instantiate the model with anny's cache pointed at ``folder`` (builds it when empty)."""
    import warnings

    import anny.paths
    import torch

    anny.paths.set_anny_cache_path(folder)
    import anny

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return anny.Anny(**MODEL_KWARGS, skinning_method="lbs").to(dtype=torch.float32)


def require_cache(build: bool = True) -> Path:
    """The ready cache folder; builds it when missing and ``build`` is true, else raises AssetError."""
    _require_anny()
    if cache_ready():
        return anny_cache_dir()
    if not build:
        raise AssetError(f"anny cache {anny_cache_dir()}: not built; run `simreal people cache` "
                         f"(or `make anny-cache`) once, or set {CACHE_ENV}")
    return build_cache()


def main() -> None:  # ``python -m simreal.render.people.anny_cache`` (used by ``make anny-cache``)
    import sys

    from simreal.errors import SimrealError

    try:
        path = build_cache()
    except SimrealError as exc:
        print(f"simreal: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(path)


if __name__ == "__main__":  # pragma: no cover
    main()
