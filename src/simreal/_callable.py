"""Stage subpackages that are also functions: ``simreal.render(...)`` renders and ``simreal.render.job``
is still the module. A package calls :func:`make_callable` at the end of its ``__init__``."""

from __future__ import annotations

import sys
import types
from typing import Any


def make_callable(module_name: str, function: str) -> None:
    """Calling the module ``module_name`` calls its attribute ``function`` (looked up at call time)."""

    class _StageModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(self, function)(*args, **kwargs)

    sys.modules[module_name].__class__ = _StageModule
