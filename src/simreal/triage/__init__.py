"""Triage of media at scale: select videos and images, sample frames, drop near-duplicates, score them
with trained models, rank, review and export (see docs/triage.md).

The package is also the stage function: ``simreal.triage(config, ...)`` is :func:`run`.

- ``run(config, ...)`` runs or resumes a triage (a YAML path, a dict or a TriageConfig) and returns a
  :class:`simreal.triage.pipeline.TriageResult`;
- ``rank_folder(folder, by=..., threshold=...)`` ranks the elements of a triage folder;
- ``export_reviewed(folder, out)`` turns review marks into a labelled real dataset.

Imports happen on first call, so decoding workers stay light.
"""

from __future__ import annotations

from typing import Any

from simreal._callable import make_callable


def run(*args: Any, **kwargs: Any) -> Any:
    """Run or resume a triage; see :func:`simreal.triage.pipeline.run`."""
    from simreal.triage.pipeline import run as _run

    return _run(*args, **kwargs)


def rank_folder(*args: Any, **kwargs: Any) -> Any:
    """Rank a triage folder's elements; see :func:`simreal.triage.ranking.rank_folder`."""
    from simreal.triage.ranking import rank_folder as _rank

    return _rank(*args, **kwargs)


def export_reviewed(*args: Any, **kwargs: Any) -> Any:
    """Write review marks as a dataset; see :func:`simreal.triage.export.export_reviewed`."""
    from simreal.triage.export import export_reviewed as _export

    return _export(*args, **kwargs)


__all__ = ["export_reviewed", "rank_folder", "run"]

make_callable(__name__, "run")
