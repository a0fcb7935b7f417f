"""A small name -> builder registry with metadata, used for models (:mod:`simreal.nn.registry`) and
tasks (:mod:`simreal.tasks.registry`).

Entries are registered with a builder that is imported on first use (``"package.module:attr"``) or a
callable, so listing names and reading metadata never imports torch: configs validate their choices
against a registry without loading any network code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simreal.errors import ConfigError


def resolve(target: str) -> Any:
    """The attribute named by ``"package.module:attr"`` (imported on use)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Entry:
    """One registered name: its family (a group of interchangeable entries), builder and metadata."""

    name: str
    family: str
    target: str | Callable[..., Any]
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[..., Any]:
        """The builder (imported on first use when registered as ``"module:attr"``)."""
        if callable(self.target):
            return self.target
        return resolve(self.target)


class Registry:
    """Names grouped by family; the same name may exist in several families (e.g. ``resnet18`` as a
    classifier and as a detector backbone)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[tuple[str, str], Entry] = {}

    def register(self, name: str, target: str | Callable[..., Any], *, family: str = "", description: str = "",
                 **meta: Any) -> Entry:
        """Add (or replace) ``name`` in ``family``."""
        entry = Entry(name, family, target, description, dict(meta))
        self._entries[(family, name)] = entry
        return entry

    def names(self, family: str | None = None) -> list[str]:
        """Registered names (of one family), in registration order, without repeats."""
        out = [n for (f, n) in self._entries if family is None or f == family]
        return list(dict.fromkeys(out))

    def families(self) -> list[str]:
        return list(dict.fromkeys(f for f, _ in self._entries))

    def get(self, name: str, family: str | None = None, where: str | None = None) -> Entry:
        """The entry called ``name``; ConfigError (naming ``where`` and the allowed names) otherwise."""
        label = where or self.what
        if family is not None:
            entry = self._entries.get((family, name))
            if entry is None:
                raise ConfigError(f"{label}: unknown {self.what} {name!r}"
                                  f"{f' for {family}' if family else ''} (expected one of "
                                  f"{', '.join(self.names(family))})")
            return entry
        found = [e for (f, n), e in self._entries.items() if n == name]
        if not found:
            raise ConfigError(f"{label}: unknown {self.what} {name!r} (expected one of {', '.join(self.names())})")
        if len(found) > 1:
            raise ConfigError(f"{label}: {self.what} {name!r} exists in several families "
                              f"({', '.join(e.family for e in found)}); name the family")
        return found[0]

    def build(self, name: str, family: str | None = None, where: str | None = None, **kw: Any) -> Any:
        """Call the builder of ``name`` with ``kw``."""
        return self.get(name, family, where).load()(**kw)
