"""Triage of media at scale: select videos and images, sample frames, drop near-duplicates, score them
with trained models, rank, review and export (see docs/triage.md).

- ``run(config, ...)`` runs or resumes a triage (a YAML path, a dict or a TriageConfig);
- ``rank_folder(folder, by=..., threshold=...)`` ranks the elements of a triage folder;
- ``export_reviewed(folder, out)`` turns review marks into a labelled real dataset.
"""

from simreal.triage.export import export_reviewed
from simreal.triage.pipeline import TriageResult, run
from simreal.triage.ranking import rank_folder

__all__ = ["TriageResult", "export_reviewed", "rank_folder", "run"]
