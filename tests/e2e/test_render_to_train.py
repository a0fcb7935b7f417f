"""Across stages: a rendered dataset (targets + negatives) trains a target-vs-background classifier
that is evaluated on a real-style folder with background/ and canister/ sub-folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from simreal.cli.main import main
from simreal.datasets import Dataset

from .render_helpers import write_config


def test_rendered_negatives_form_the_background_class(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, count=10, negatives=0.4, objects=[
        {"category": "canister", "asset": {"kind": "canister", "canister": {"segments": 24}}}])
    syn = tmp_path / "syn"
    assert main(["render", "--config", str(cfg), "--out", str(syn), "--workers", "1", "-q"]) == 0
    ds = Dataset.open(syn)
    labels = [ds.label(r) for r in ds.images]
    assert 0 in labels and 1 in labels
    real = tmp_path / "real"  # a real-style folder: one sub-folder per class
    for rec in ds.images:
        sub = real / ("background" if ds.label(rec) == 0 else "canister")
        sub.mkdir(parents=True, exist_ok=True)
        shutil.copy(ds.image_path(rec), sub / Path(rec["file_name"]).name)
    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text(f"""task: classify
data:
  image_size: [32, 32]
  domains:
    - {{path: {syn}, name: synthetic, role: source}}
    - {{path: {real}, name: real, role: target, labelled: false}}
model: {{arch: smallcnn, width: 8}}
method: {{name: dann}}
optim: {{steps: 6, batch_per_domain: 4}}
selection: {{policy: last}}
checkpoint_every: 3
""")
    run = tmp_path / "run"
    assert main(["train", "--config", str(train_cfg), "--out", str(run), "--quiet", "--device", "cpu"]) == 0
    assert main(["eval", "--run", str(run), "--data", str(real), "--device", "cpu"]) == 0
    metrics = json.loads(next(run.rglob("metrics.json")).read_text())
    assert set(metrics["per_class_accuracy"]) == {"background", "canister"}


def test_rendered_boxes_and_masks_train_detection_and_segmentation(tmp_path: Path) -> None:
    """The renderer's COCO boxes, `ignore` flags and 16-bit masks feed the detect and segment tasks."""
    cfg = write_config(tmp_path, count=8, resolution=[64, 64], negatives=0.0, objects=[
        {"category": "canister", "asset": {"kind": "canister", "canister": {"segments": 24}}}])
    syn = tmp_path / "syn"
    assert main(["render", "--config", str(cfg), "--out", str(syn), "--workers", "1", "-q"]) == 0
    for task, arch, extra in (("detect", "squeezedet_tiny", "detect: {num_anchors: 3}\n"),
                              ("segment", "unet_small", "")):
        train_cfg = tmp_path / f"{task}.yaml"
        train_cfg.write_text(f"""task: {task}
data:
  image_size: [64, 64]
  domains:
    - {{path: {syn}, name: synthetic, role: source}}
model: {{arch: {arch}}}
method: {{name: source_only}}
optim: {{steps: 4, batch_per_domain: 4}}
selection: {{policy: last}}
checkpoint_every: 2
{extra}""")
        run = tmp_path / f"run_{task}"
        assert main(["train", "--config", str(train_cfg), "--out", str(run), "--quiet", "--device", "cpu"]) == 0
        assert main(["eval", "--run", str(run), "--data", str(syn), "--device", "cpu"]) == 0
        metrics = json.loads(next(run.rglob("metrics.json")).read_text())
        assert ("mAP" in metrics) if task == "detect" else ("miou" in metrics)
