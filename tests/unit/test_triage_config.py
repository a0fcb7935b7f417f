"""Triage config: validation errors name the key; mtriage configs translate (or say in one line what
does not); stage keys are content addresses that change exactly when a stage or its inputs change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from simreal.errors import ConfigError
from simreal.triage.config import load_triage_config
from simreal.triage.pipeline import stage_keys
from simreal.triage.scoring import InputSpec, ModelInfo


def _cfg(tmp: Path, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"folder": str(tmp / "out"), "select": {"name": "Local", "config": {"paths": [str(tmp)]}},
                            "analyse": [{"name": "Frames", "config": {"fps": 1}}]}
    base.update(over)
    return base


@pytest.mark.parametrize("patch, needle", [
    ({"analyse": [{"name": "Frames", "config": {"fsp": 1}}]}, "analyse[0].Frames.config.fsp: unknown key"),
    ({"analyse": [{"name": "Frames", "config": {"fps": 0}}]}, "analyse[0].Frames.config.fps"),
    ({"analyse": [{"name": "Frames", "config": {"fps": -2}}]}, "greater than 0"),
    ({"workers": "two"}, "workers"),
    ({"colour": "red"}, "colour: unknown key"),
    ({"analyse": [{"name": "Score", "config": {"run": "r"}}, {"name": "Frames"}]}, "cannot follow"),
    ({"analyse": [{"name": "Sharpen"}]}, "analyse[0]"),
    ({"select": None}, "exactly one of select or elements_in"),
    ({"analyse": [{"name": "Score", "config": {"run": "a", "weights": "b"}}]}, "exactly one of run"),
    ({"analyse": [{"name": "Score", "config": {"weights": "b.pth"}}]}, "label list"),
    ({"analyse": [{"name": "Frames", "config": {"start": 5, "end": 2}}]}, "end (2.0) must be after start"),
])
def test_bad_config_names_the_key(tmp_path: Path, patch: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_triage_config(_cfg(tmp_path, **patch))
    msg = str(err.value)
    assert needle in msg and "\n" not in msg


def test_relative_paths_are_taken_from_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "cfgs").mkdir()
    p = tmp_path / "cfgs" / "t.yaml"
    p.write_text(yaml.safe_dump({"folder": "out", "select": {"name": "Local", "config": {"paths": ["../media"]}},
                                 "analyse": [{"name": "Frames"}, {"name": "Score", "config": {"run": "runs/x"}}]}))
    cfg = load_triage_config(p)
    assert cfg.folder == str(tmp_path / "cfgs" / "out")
    assert cfg.select.config.paths == [str(tmp_path / "media")]  # type: ignore[union-attr]
    assert cfg.models[0].run == str(tmp_path / "cfgs" / "runs" / "x")


def test_mtriage_tutorial_3c_translates(tmp_path: Path) -> None:
    """docs/tutorial/3/3c.yaml of mtriage, with the one key it needs here (a local weights file)."""
    labels = tmp_path / "imagenet.txt"
    labels.write_text("tank\nrifle\nmilitary uniform\nbanana\n")
    raw = yaml.safe_load(f"""
folder: media/demo_official/3c
select:
  name: Youtube
  config:
    search_term: tear gas + mexico
    uploaded_before: "2018-11-30T00:00:00Z"
    uploaded_after: "2018-11-15T00:00:00Z"
    daily: true
analyse:
  - name: Frames
  - name: ImageDedup
    config:
      threshold: 3
      method: dhash
  - name: KerasPretrained
    config:
      in_parallel: false
      model: ResNet50
      weights: {tmp_path / "resnet50.pth"}
      labels_file: {labels}
      labels:
        - tank
        - rifle
        - military uniform
""")
    notes: list[str] = []
    cfg = load_triage_config(raw, warn=notes.append)
    assert cfg.select is not None and cfg.select.name == "Search"
    sc = cfg.select.config
    assert sc.query == "tear gas + mexico" and str(sc.uploaded_after) == "2018-11-15"  # type: ignore[union-attr]
    assert str(sc.uploaded_before) == "2018-11-30"  # type: ignore[union-attr]
    assert cfg.dedup is not None and cfg.dedup.method == "dhash" and cfg.dedup.threshold == 3
    (m,) = cfg.models
    assert m.arch == "resnet50" and m.keep == ["tank", "rifle", "military uniform"]
    assert any("daily: ignored" in n for n in notes) and any("in_parallel: ignored" in n for n in notes)


@pytest.mark.parametrize("raw, needle", [
    ({"select": {"name": "Twitter", "config": {}}}, "mtriage selector 'Twitter' has no simreal equivalent"),
    ({"analyse": [{"name": "ConvertAudio"}]}, "mtriage analyser 'ConvertAudio' has no simreal equivalent"),
    ({"analyse": [{"name": "KerasPretrained", "config": {"model": "ResNet50", "labels": ["tank"]}}]},
     "needs a local torchvision-format ImageNet weights file"),
    ({"analyse": [{"name": "KerasPretrained", "config": {"model": "VGG19", "weights": "w.pth"}}]},
     "'VGG19' is not available"),
    ({"select": None, "elements_in": ["Youtube/Frames"]}, "give the selector name ('Youtube')"),
    ({"phase": "select"}, "legacy single-phase"),
])
def test_mtriage_parts_that_do_not_map_get_one_line(tmp_path: Path, raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_triage_config(_cfg(tmp_path, **raw))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_mtriage_3b_elements_in_and_local_source(tmp_path: Path) -> None:
    cfg = load_triage_config({"folder": "f", "elements_in": ["Youtube"], "analyse": [{"name": "Frames"}]})
    assert cfg.elements_in == ["Search"]
    cfg = load_triage_config({"folder": "f", "select": {"name": "Local", "config": {"source": "data/images",
                                                                                     "aggregate": True}},
                              "analyse": {"name": "Frames", "config": {"fps": "0.5"}}}, warn=lambda s: None)
    assert cfg.select.config.paths == [str(Path.cwd() / "data/images")]  # type: ignore[union-attr]
    assert cfg.frames.fps == 0.5


def _model(name: str, key: str) -> ModelInfo:
    return ModelInfo(name, "run", "/r", "classify", ["a", "b"], [0, 1], InputSpec((8, 8), 3), key)


def test_stage_keys_change_exactly_with_their_inputs(tmp_path: Path) -> None:
    def keys(fps: float = 1.0, thr: int = 3, mkey: str = "m1", order: bool = False):  # noqa: ANN202
        d = _cfg(tmp_path, analyse=[{"name": "Frames", "config": {"fps": fps}},
                                    {"name": "Dedup", "config": {"threshold": thr}},
                                    {"name": "Score", "config": {"run": "r"}}], workers=3 if order else 1)
        return stage_keys(load_triage_config(d), [_model("m", mkey)])

    a = keys()
    assert keys(order=True).__dict__ == a.__dict__  # execution settings are not part of any key
    b = keys(fps=0.5)
    assert b.frames != a.frames and b.dedup != a.dedup and b.scores["m"] != a.scores["m"] and b.chain != a.chain
    c = keys(thr=5)
    assert c.frames == a.frames and c.dedup != a.dedup and c.scores["m"] != a.scores["m"]
    d = keys(mkey="m2")
    assert d.frames == a.frames and d.dedup == a.dedup and d.scores["m"] != a.scores["m"] and d.chain != a.chain


@pytest.mark.parametrize("name", ["local_videos.yaml", "youtube_search.yaml"])
def test_shipped_example_configs_validate(name: str) -> None:
    p = Path(__file__).resolve().parents[2] / "configs" / "triage" / name
    cfg = load_triage_config(p, warn=lambda s: None)
    assert cfg.models and Path(cfg.folder).is_absolute()
