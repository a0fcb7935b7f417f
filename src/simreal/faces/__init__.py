"""Faces: expressions of one person who cannot speak, from video to voice (docs/faces.md).

- ``extract_faces(inputs, out, cfg)`` -> :class:`~simreal.faces.extract.ExtractSummary`: videos, images or a
  camera -> dlib HOG faces -> 5-point aligned chips, a dataset in the contract
- ``render_faces(cfg, out)`` -> :class:`~simreal.faces.render.FaceRenderSummary`: labelled anny faces through
  the same detector and aligner
- ``Session`` + ``run_session``: live detect -> align -> classify -> gestures -> hold -> speak
- ``ReviewState`` + ``review.serve``: the therapist's page (labels -> test set, words editing)
- ``load_words`` / ``WordsConfig``: the per-child words file

Everything is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "extract_faces": "simreal.faces.extract", "ExtractConfig": "simreal.faces.extract",
    "render_faces": "simreal.faces.render", "FaceRenderConfig": "simreal.faces.render",
    "Session": "simreal.faces.live", "run_session": "simreal.faces.live",
    "ReviewState": "simreal.faces.review", "load_words": "simreal.faces.words", "WordsConfig": "simreal.faces.words",
    "FaceDetector": "simreal.faces.detect", "align_face": "simreal.faces.align",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simreal.faces' has no attribute {name!r}")
