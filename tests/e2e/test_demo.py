"""`simreal demo --size tiny`: every step of the loop runs, is wired to the previous one, and the
held-out photos never reach training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from simreal.cli.main import main
from simreal.datasets.contract import Dataset
from simreal.demo import HELD_OUT, photo_sets

pytestmark = pytest.mark.slow


def test_photo_sets_are_disjoint_and_hold_out_the_named_photos() -> None:
    a, b = photo_sets()
    assert {p.name for p in b} == set(HELD_OUT)
    assert not {p.name for p in a} & {p.name for p in b} and len(a) >= 8


def test_tiny_demo_walks_the_whole_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--size", "tiny", "-o", str(out), "-q", "--workers", "2", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    for step in range(1, 7):
        assert f"[{step}/6]" in text
    summary = json.loads((out / "summary.json").read_text())
    fig = summary["figures"]
    # held-out photos: never a background of the low renders, never in the real training domain
    low = Dataset.open(out / "render_low")
    photos = {r["params"]["background"].get("file") for r in low.images} - {None}
    assert not photos & set(HELD_OUT)
    real_train = Dataset.open(out / "real_train")
    assert not {r["photo"] for r in real_train.images} & set(HELD_OUT)
    assert {r["photo"] for r in Dataset.open(out / "real_heldout").images} <= set(HELD_OUT)
    # wiring: the trainer saw refined low renders, high renders and the unlabelled real crops
    cfg = yaml.safe_load((out / "train_run" / "config.yaml").read_text())
    paths = {d["name"]: (d["path"], d["role"]) for d in cfg["data"]["domains"]}
    assert paths == {"low_refined": (str(out / "render_low_refined"), "source"),
                     "high": (str(out / "render_high"), "source"), "real": (str(out / "real_train"), "target")}
    assert cfg["method"]["name"] == "dann"
    assert Dataset.open(out / "render_low_refined").domain == "refined"
    # figures are measured, not placeholders
    assert 0.0 <= fig["canister_iou_high_test"] <= 1.0 and 0.0 <= fig["false_positive_pixels_real"] <= 1.0
    metrics = json.loads((out / "eval_real_heldout" / "metrics.json").read_text())
    assert fig["false_positive_pixels_real"] == pytest.approx(1 - metrics["pixel_accuracy"])
    spans = json.loads((out / "videos" / "spans.json").read_text())
    assert sorted(fig["triage_order"]) == sorted(spans) and any(spans.values())
    assert summary["view"] == f"simreal view {out / 'triage'}" and summary["view"] in text
    for p in summary["pictures"].values():
        assert Path(p).exists()
