"""dlib's HOG face detector and its 5-point landmark model (public domain), found without downloads.

The 5-point model ships in the PyPI package ``face-recognition-models``; it is located without
importing that package (whose ``__init__`` needs ``pkg_resources``). Only the 5-point model is
ever loaded: the 68-point model in the same package was trained on data that forbids commercial
use. ``SIMREAL_FACE_LANDMARKS`` may name another copy of the 5-point file.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from simreal.faces.errors import FacesError

FIVE_POINT_FILE = "shape_predictor_5_face_landmarks.dat"
LANDMARKS_ENV = "SIMREAL_FACE_LANDMARKS"
INSTALL_HINT = "install the faces extra: pip install 'simreal[faces]' (dlib-bin, face-recognition-models, av)"


def import_dlib() -> Any:
    """The ``dlib`` module, or a one-line error saying how to install it."""
    try:
        import dlib
    except ImportError:
        raise FacesError(f"dlib is not installed: {INSTALL_HINT}") from None
    return dlib


def landmark_model_path() -> Path:
    """Path of dlib's 5-point landmark model (``SIMREAL_FACE_LANDMARKS`` or face-recognition-models)."""
    env = os.environ.get(LANDMARKS_ENV)
    if env:
        p = Path(env)
        where = f"{LANDMARKS_ENV}={env}"
    else:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise FacesError(f"dlib's 5-point landmark model not found: {INSTALL_HINT}")
        p = Path(list(spec.submodule_search_locations)[0]) / "models" / FIVE_POINT_FILE
        where = str(p)
    if "68" in p.name:
        raise FacesError(f"{where}: the 68-point model is not used (its training data forbid commercial use); "
                         f"give the 5-point model {FIVE_POINT_FILE}")
    if not p.is_file():
        raise FacesError(f"{where}: 5-point landmark model file not found")
    return p


@lru_cache(maxsize=1)
def hog_detector() -> Any:
    """dlib's frontal-face HOG detector (one per process)."""
    return import_dlib().get_frontal_face_detector()


@lru_cache(maxsize=2)
def shape_predictor(path: str | None = None) -> Any:
    """dlib's 5-point shape predictor (one per process and file)."""
    dlib = import_dlib()
    p = Path(path) if path else landmark_model_path()
    try:
        return dlib.shape_predictor(str(p))
    except RuntimeError as exc:
        raise FacesError(f"{p}: not a dlib shape predictor file ({exc})") from None
