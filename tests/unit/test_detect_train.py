"""A tiny SqueezeDet learns coloured squares on noise (held-out F1@0.5 >= 0.8); DANN and ADDA on the
detector run and log discriminator accuracy; a dataset without boxes is one DatasetError line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simreal.adapt.api import evaluate, train
from simreal.datasets.contract import DatasetWriter
from simreal.errors import DatasetError

CATS = [{"id": 1, "name": "red"}, {"id": 2, "name": "green"}]
COLOURS = {1: (0.9, 0.1, 0.1), 2: (0.1, 0.85, 0.1)}


def write_squares(root: Path, n: int, seed: int, size: int = 64, shift: float = 0.0, boxes: bool = True,
                  ignore_every: int = 0) -> Path:
    """``n`` noise images with 0-2 coloured squares (red/green, 12-22 px) and their COCO boxes.
    ``shift`` brightens the background (a second domain); ``ignore_every`` flags every k-th box ignored."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, root.name, "synthetic", CATS)
    images, anns = [], []
    for i in range(n):
        img = np.clip(rng.normal(0.45 + shift, 0.12, (size, size, 3)), 0, 1)
        placed: list[tuple[int, int, int]] = []
        for _ in range(int(rng.choice([0, 1, 1, 2]))):
            s = int(rng.integers(12, 23))
            for _try in range(20):
                x, y = (int(v) for v in rng.integers(0, size - s, 2))
                if all(x + s <= px or px + ps <= x or y + s <= py or py + ps <= y for px, py, ps in placed):
                    break
            else:
                continue
            placed.append((x, y, s))
            cid = int(rng.integers(1, 3))
            img[y:y + s, x:x + s] = np.clip(np.array(COLOURS[cid]) + rng.normal(0, 0.05, (s, s, 3)), 0, 1)
            ann = {"image_id": i + 1, "category_id": cid, "bbox": [x, y, s, s], "area": float(s * s), "iscrowd": 0}
            if ignore_every and (len(anns) + 1) % ignore_every == 0:
                ann["ignore"] = True
            anns.append(ann)
        buf = io.BytesIO()
        Image.fromarray((img * 255).astype(np.uint8)).save(buf, format="PNG")
        rel = w.write_file(f"images/{i:04d}.png", buf.getvalue())
        images.append({"id": i + 1, "file_name": rel, "width": size, "height": size})
    w.finalize(images, anns if boxes else [])
    return root


def det_config(tmp: Path, domains: str, method: str = "source_only", steps: int = 400, extra: str = "") -> Path:
    cfg = tmp / f"det_{method}.yaml"
    cfg.write_text(f"""task: detect
seed: 0
data:
  image_size: [48, 48]
  channels: 3
  source_val_fraction: 0.1
  domains:
{domains}
model: {{arch: squeezedet_tiny, width: 16}}
method: {{name: {method}, alpha: 0.1, schedule: constant, disc_hidden: [16], adda_steps: 10}}
optim: {{steps: {steps}, batch_per_domain: 16, lr: 0.003, lr_schedule: cosine, weight_decay: 0.0001}}
selection: {{policy: source_val, eval_every: 100}}
checkpoint_every: 100
detect: {{num_anchors: 3, score_threshold: 0.3}}
{extra}""")
    return cfg


@pytest.fixture(scope="module")
def squares(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("squares")
    return {"train": write_squares(t / "train", 400, 1), "test": write_squares(t / "test", 40, 2),
            "real": write_squares(t / "real", 40, 3, shift=0.15),
            "nobox": write_squares(t / "nobox", 4, 4, boxes=False)}


def test_tiny_detector_learns_squares(tmp_path: Path, squares: dict[str, Path]) -> None:
    torch.set_num_threads(1)  # a tiny net: more threads only add contention
    cfg = det_config(tmp_path, f"    - {{path: {squares['train']}, name: syn, role: source}}")
    summary = train(cfg, tmp_path / "run", progress=False).summary
    assert summary["source_val_quality"] >= 0.6
    meta = json.loads((tmp_path / "run/checkpoints/final.json").read_text())
    assert len(meta["task_state"]["fitted_anchors"]) == 3
    res = evaluate(tmp_path / "run", squares["test"]).metrics
    print("held-out", {k: res[k] for k in ("precision", "recall", "f1", "mAP", "AP50", "image_roc_auc")})
    assert res["f1"] >= 0.8 and res["AP50"] >= 0.8
    assert res["image_roc_auc"] is not None and res["image_roc_auc"] >= 0.9
    assert set(res["per_class"]) == {"red", "green"}
    dets = json.loads((tmp_path / "run/eval/test/detections.json").read_text())
    assert dets and max(d["bbox"][0] + d["bbox"][2] for d in dets) > 48  # original 64 px coordinates
    # the F1 sweep agrees with the operating point's figures and its best entry is the reported best
    at = {r["threshold"]: r for r in res["f1_sweep"]}
    assert at[0.3]["f1"] == pytest.approx(res["f1"]) and at[0.3]["precision"] == pytest.approx(res["precision"])
    assert res["best_f1"] == max(r["f1"] for r in res["f1_sweep"]) == at[res["best_f1_threshold"]]["f1"]
    assert [r["recall"] for r in res["f1_sweep"]] == sorted((r["recall"] for r in res["f1_sweep"]), reverse=True)
    assert "Score threshold sweep" in (tmp_path / "run/eval/test/report.md").read_text()


def test_dataset_without_boxes_is_one_error_line(tmp_path: Path, squares: dict[str, Path]) -> None:
    cfg = det_config(tmp_path, f"    - {{path: {squares['nobox']}, name: syn, role: source}}", steps=2)
    with pytest.raises(DatasetError, match="no bounding boxes for task 'detect'") as exc:
        train(cfg, tmp_path / "run", progress=False)
    assert "\n" not in str(exc.value) and str(squares["nobox"]) in str(exc.value)


@pytest.mark.parametrize("method", ["dann", "adda"])
def test_adaptation_on_detector_runs_and_logs_discriminator(tmp_path: Path, squares: dict[str, Path],
                                                            method: str) -> None:
    torch.set_num_threads(1)
    doms = (f"    - {{path: {squares['train']}, name: syn, role: source}}\n"
            f"    - {{path: {squares['real']}, name: real, role: target, labelled: false}}")
    cfg = det_config(tmp_path, doms, method, steps=20, extra="")
    train(cfg, tmp_path / "run", overrides={"selection.eval_every": 10, "optim.batch_per_domain": 4}, progress=False)
    recs = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    accs = [r for r in recs if "disc_acc/0" in r and "disc_acc/1" in r]
    assert accs and all(0.0 <= r["disc_acc/1"] <= 1.0 for r in accs)
    if method == "dann":
        assert all(np.isfinite(r["domain_loss"]) and np.isfinite(r["task_loss"]) for r in accs)
