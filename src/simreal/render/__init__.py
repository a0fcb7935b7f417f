"""Synthetic data engine: scene spec, randomizers, assets, backends, annotation, post-effects.

The package is also the stage function: ``simreal.render(config, out, ...)`` is
:func:`simreal.render.api.render` (imported on first call, so render workers stay light).
"""

from __future__ import annotations

from typing import Any

from simreal._callable import make_callable


def render(*args: Any, **kwargs: Any) -> Any:
    """Render a dataset; see :func:`simreal.render.api.render`."""
    from simreal.render.api import render as _render

    return _render(*args, **kwargs)


make_callable(__name__, "render")
