"""Tiny render configs and helpers shared by the render end-to-end tests."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 7,
    "count": 6,
    "resolution": [40, 32],
    "objects": [
        {"category": "canister", "asset": {"kind": "canister", "canister": {"segments": 24}}, "size": [0.9, 1.1]},
        {"category": "cube", "asset": {"kind": "primitive", "shape": "cube"}, "count": [0, 1], "spread": 0.8},
    ],
    "material": {"textures": {"probability": 0.5, "size": 16}},
    "camera": {"radius": [2.5, 3.0]},
    "distractors": {"count": [1, 2]},
    "negatives": 0.2,
    "render": {"spp": 2, "max_depth": 2},
}


def write_config(folder: Path, **changes: Any) -> Path:
    cfg = json.loads(json.dumps(TINY))
    cfg.update(changes)
    path = folder / "scene.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def simreal(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console script in a subprocess."""
    exe = Path(sys.executable).with_name("simreal")
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"simreal {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def folder_digest(root: Path) -> dict[str, str]:
    """sha256 of every image and mask, and of annotations.json."""
    out = {}
    for sub in ("images", "masks"):
        for f in sorted((root / sub).iterdir()):
            out[f"{sub}/{f.name}"] = hashlib.sha256(f.read_bytes()).hexdigest()
    out["annotations.json"] = hashlib.sha256((root / "annotations.json").read_bytes()).hexdigest()
    return out
