"""simreal: synthetic data, sim-to-real refinement and domain adaptation for computer vision.

One function per stage (each takes a config object, a YAML path or a dict, and returns a small result
object); the ``simreal`` command is a thin layer over exactly these:

* ``simreal.render(config, out, ...)`` -> :class:`simreal.render.job.RenderSummary`
* ``simreal.refine(source, target, out, config)`` -> :class:`simreal.refine.fit.RefineResult`;
  ``simreal.refine.apply(run, source, out)`` and ``simreal.refine.evaluate(run, ...)``
* ``simreal.train(config, out)`` -> :class:`simreal.adapt.api.TrainResult`
* ``simreal.evaluate(run, data)`` -> :class:`simreal.adapt.api.EvalResult`
* ``simreal.anonymize(data, out, private_label=...)`` -> :class:`simreal.privacy.fit.AnonymizeResult`;
  ``simreal.anonymize.apply(run, data, out)``, ``.audit(original, anonymized, ...)``, ``.sweep(...)``
* ``simreal.load_run(run)`` -> :class:`simreal.adapt.api.LoadedRun` (config, task, model, metadata)
* ``simreal.triage(config, ...)`` -> :class:`simreal.triage.pipeline.TriageResult`;
  ``simreal.triage.rank_folder(folder, ...)`` and ``simreal.triage.export_reviewed(folder, out)``

Everything is imported on first use: ``import simreal`` stays fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("simreal")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from simreal import privacy as anonymize
    from simreal import refine, render, triage
    from simreal.adapt.api import evaluate, load_run, train

__all__ = ["__version__", "anonymize", "evaluate", "load_run", "refine", "render", "train", "triage"]

_LAZY = {
    "render": ("simreal.render", None),
    "refine": ("simreal.refine", None),
    "anonymize": ("simreal.privacy", None),
    "train": ("simreal.adapt.api", "train"),
    "evaluate": ("simreal.adapt.api", "evaluate"),
    "load_run": ("simreal.adapt.api", "load_run"),
    "faces": ("simreal.faces", None),
    "triage": ("simreal.triage", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'simreal' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
